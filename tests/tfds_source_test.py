"""Tests for the TFDS source; everything runs offline against mocked TFDS data."""

import pathlib
import signal
import subprocess
import sys
import tempfile
import time

import numpy as np
import pytest

from bam_tf.glue_reader import GlueDataError
from bam_tf.glue_tasks import TASKS
from bam_tf.task_set import glue_task
from bam_tf.tfds_source import load_tfds_split

tfds = pytest.importorskip("tensorflow_datasets")
tf = pytest.importorskip("tensorflow")

_TIME_LIMIT_S = 120


@pytest.fixture(autouse=True)
def _never_download(monkeypatch, tmp_path):
    """A download attempt would retry for minutes without network; make it fail at once, and cap time."""
    # tfds.builder on data not prepared leaves an empty tempfile.mkdtemp() folder behind (its
    # DatasetInfo.initialize_from_bucket); keep those inside the test's own folder, not in /tmp.
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    from tensorflow_datasets.core.download import download_manager
    from tensorflow_datasets.core.utils import gcs_utils

    def refuse(*args, **kwargs):
        raise AssertionError("tests must never download")

    for method in ("download", "download_and_extract", "extract"):
        monkeypatch.setattr(download_manager.DownloadManager, method, refuse)
    monkeypatch.setattr(gcs_utils, "_is_gcs_disabled", True)

    def timeout(signum, frame):
        raise TimeoutError(f"TFDS test exceeded {_TIME_LIMIT_S}s")

    previous = signal.signal(signal.SIGALRM, timeout)
    signal.alarm(_TIME_LIMIT_S)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, previous)


def test_mocked_rte(tmp_path):
    with tfds.testing.mock_data(num_examples=7):
        data = load_tfds_split(glue_task("rte"), "train", data_dir=str(tmp_path))
    assert len(data) == 7 and data.split == "train"
    assert data.ids == [f"train-{i}" for i in range(7)]
    assert all(isinstance(t, str) for t in data.text_a + data.text_b)
    assert data.labels.dtype == np.int32 and set(data.labels.tolist()) <= {0, 1}
    indices = [int(i) for i in data.official_index]
    assert indices == sorted(indices)  # rows come back in source-file order
    assert data.source == "tfds:glue/rte:train"


def test_mocked_stsb(tmp_path):
    with tfds.testing.mock_data(num_examples=4):
        data = load_tfds_split(glue_task("STS-B"), "dev", data_dir=str(tmp_path), max_examples=3)
    assert len(data) == 3 and data.ids == ["dev-0", "dev-1", "dev-2"]
    assert data.labels.dtype == np.float32 and data.text_b is not None
    assert data.source == "tfds:glue/stsb:validation"


@pytest.mark.parametrize("task", TASKS.values(), ids=lambda t: t.name)
def test_every_task_maps_its_features(task, tmp_path):
    split = next(iter(task.tfds_splits))
    with tfds.testing.mock_data(num_examples=2):
        data = load_tfds_split(task, split, data_dir=str(tmp_path))
    assert len(data) == 2 and (data.text_b is not None) == task.is_pair


@pytest.mark.parametrize("task", [t for t in TASKS.values() if not t.is_regression], ids=lambda t: t.name)
def test_label_order_matches_tfds(task, tmp_path):
    names = tfds.builder(task.tfds_name, data_dir=str(tmp_path)).info.features["label"].names
    if task.labels == ("0", "1"):
        assert len(names) == 2  # TFDS names the classes, e.g. ["unacceptable", "acceptable"]
    else:
        assert tuple(names) == task.labels


def _fake_rte(labels, idx):
    def as_dataset(self, *args, **kwargs):
        return tf.data.Dataset.from_tensor_slices({
            "sentence1": [f"premise {i}".encode() for i in idx],
            "sentence2": [f"hypothesis {i}" for i in idx],
            "label": np.asarray(labels, np.int64),
            "idx": np.asarray(idx, np.int32),
        })
    return as_dataset


def test_rows_are_sorted_by_idx_and_test_labels_dropped(tmp_path):
    with tfds.testing.mock_data(as_dataset_fn=_fake_rte([-1, -1, -1], [2, 0, 1])):
        data = load_tfds_split(glue_task("RTE"), "test", data_dir=str(tmp_path))
    assert data.labels is None
    assert data.text_a == ["premise 0", "premise 1", "premise 2"]
    assert data.text_b == ["hypothesis 0", "hypothesis 1", "hypothesis 2"]
    assert data.ids == ["test-0", "test-1", "test-2"] and data.official_index == ["0", "1", "2"]
    with tfds.testing.mock_data(as_dataset_fn=_fake_rte([1, 0, 1], [5, 9, 3])):
        first = load_tfds_split(glue_task("RTE"), "train", data_dir=str(tmp_path), max_examples=2)
    assert first.official_index == ["3", "5"] and first.labels.tolist() == [1, 1]


def test_mixed_unlabeled_examples_are_an_error(tmp_path):
    with tfds.testing.mock_data(as_dataset_fn=_fake_rte([0, -1], [0, 1])):
        with pytest.raises(GlueDataError, match="mixes labeled and unlabeled"):
            load_tfds_split(glue_task("RTE"), "train", data_dir=str(tmp_path))


def test_unprepared_data_dir_fails_fast(tmp_path):
    data_dir = str(tmp_path / "empty")
    start = time.monotonic()
    with pytest.raises(GlueDataError) as e:
        load_tfds_split(glue_task("RTE"), "train", data_dir=data_dir)
    assert time.monotonic() - start < 30
    message = str(e.value)
    assert message.startswith(f"{data_dir}: ")
    assert "glue/rte" in message and "tfds build" in message and "--data_source=tsv" in message


def test_split_the_task_does_not_have():
    with pytest.raises(ValueError, match="MNLI-mm has no 'train' split"):
        load_tfds_split(glue_task("MNLI-mm"), "train")


def test_module_import_does_not_import_tfds():
    code = "import sys, bam_tf.tfds_source; assert 'tensorflow_datasets' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True, timeout=300, cwd=pathlib.Path(__file__).parents[1])


def test_download_on_an_offline_machine_names_the_dataset_and_the_manual_way(tmp_path, monkeypatch):
    from bam_tf import tfds_source

    probed = []
    monkeypatch.setattr(tfds_source, "host_reachable", lambda url, timeout_s=10.0: probed.append(url) or False)
    data_dir = str(tmp_path / "empty")
    started = time.monotonic()
    with pytest.raises(GlueDataError) as e:
        load_tfds_split(glue_task("RTE"), "train", data_dir=data_dir, download=True)
    assert time.monotonic() - started < 30
    assert probed == ["https://dl.fbaipublicfiles.com/glue/data/RTE.zip"]
    message = str(e.value)
    assert message.startswith(f"{data_dir}: cannot download TFDS dataset glue/rte: dl.fbaipublicfiles.com is "
                              "unreachable")
    assert "tfds build glue/rte" in message and "--data_source=tsv" in message


def test_download_prepares_a_missing_dataset_then_reads_it(tmp_path, monkeypatch):
    """download=True calls the builder's download_and_prepare (mocked: no network) before loading."""
    from bam_tf import tfds_source

    monkeypatch.setattr(tfds_source, "host_reachable", lambda url, timeout_s=10.0: True)
    prepared = []
    with tfds.testing.mock_data(num_examples=3):  # mock_data patches the builder; patch on top of it
        monkeypatch.setattr(tfds.core.DatasetBuilder, "is_prepared", lambda self: bool(prepared))
        monkeypatch.setattr(tfds.core.DatasetBuilder, "download_and_prepare",
                            lambda self, *a, **k: prepared.append(self.name))
        data = load_tfds_split(glue_task("RTE"), "train", data_dir=str(tmp_path), download=True)
    assert prepared == ["glue"] and len(data) == 3


def test_an_unprepared_dataset_suggests_tfds_download(tmp_path):
    with pytest.raises(GlueDataError, match="add --tfds_download to download it"):
        load_tfds_split(glue_task("RTE"), "train", data_dir=str(tmp_path / "none"))


def test_host_reachable_is_false_for_a_closed_local_port():
    from bam_tf.tfds_source import host_reachable

    import socket
    with socket.socket() as s:  # bind, then close: nothing listens on that port any more
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    assert host_reachable(f"http://127.0.0.1:{port}/x.zip", timeout_s=2.0) is False
