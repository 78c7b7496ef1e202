"""Tests for the GLUE task table and looking tasks up by name (bam_tf.glue_tasks, bam_tf.task_set.GLUE)."""

import numpy as np
import pytest

from bam_tf.glue_tasks import TASKS
from bam_tf.task_set import GLUE, glue_task
from bam_tf.task import Task

_METRICS = {"mcc", "accuracy", "f1", "pearson", "spearman"}
_ALL_NAMES = ["CoLA", "SST-2", "MRPC", "STS-B", "QQP", "MNLI", "MNLI-mm", "QNLI", "RTE", "WNLI", "AX"]


def test_the_table_has_every_task_keyed_by_name():
    assert list(TASKS) == _ALL_NAMES
    assert all(key == task.name for key, task in TASKS.items())


@pytest.mark.parametrize("task", TASKS.values(), ids=lambda t: t.name)
def test_task_is_self_consistent(task: Task):
    assert task.is_regression == (task.labels == ())
    assert task.num_outputs == (1 if task.is_regression else len(task.labels))
    assert len(set(task.labels)) == len(task.labels)
    assert task.metrics and set(task.metrics) <= _METRICS
    assert task.splits and set(task.splits) <= {"train", "dev", "test"}
    assert set(task.tfds_splits) == set(task.splits)
    assert task.tfds_name.startswith("glue/")
    assert task.submission_file.endswith(".tsv")
    for split, layout in task.splits.items():
        used = [c for c in (layout.text_a_column, layout.text_b_column, layout.label_column) if c is not None]
        assert len(set(used)) == len(used), split
        assert all(0 <= c < layout.num_columns for c in used), split
        if layout.id_column is not None:
            assert 0 <= layout.id_column < layout.num_columns
        assert (layout.text_b_column is not None) == task.is_pair, split
        # Test files are unlabeled; train/dev are labeled (AX has only a test split).
        assert (layout.label_column is None) == (split == "test"), split
    head = TASKS[task.head]
    assert head.trainable
    assert (head.labels, head.is_regression) == (task.labels, task.is_regression)


def test_heads_and_trainability():
    assert [t.name for t in TASKS.values() if not t.trainable] == ["MNLI-mm", "AX"]
    assert glue_task("MNLI-mm").head == glue_task("AX").head == "MNLI"
    assert "train" not in glue_task("MNLI-mm").splits and list(glue_task("AX").splits) == ["test"]


def test_submission_files_are_the_official_names():
    assert sorted(t.submission_file for t in TASKS.values()) == sorted(
        ["CoLA.tsv", "SST-2.tsv", "MRPC.tsv", "STS-B.tsv", "QQP.tsv", "MNLI-m.tsv", "MNLI-mm.tsv",
         "QNLI.tsv", "RTE.tsv", "WNLI.tsv", "AX.tsv"])


@pytest.mark.parametrize("name,labels", [
    ("CoLA", ("0", "1")), ("SST-2", ("0", "1")), ("MRPC", ("0", "1")), ("QQP", ("0", "1")),
    ("MNLI", ("entailment", "neutral", "contradiction")), ("QNLI", ("entailment", "not_entailment")),
    ("RTE", ("entailment", "not_entailment")), ("WNLI", ("0", "1")),
    ("AX", ("entailment", "neutral", "contradiction")), ("STS-B", ()),
])
def test_label_orders_follow_tfds(name, labels):
    assert glue_task(name).labels == labels


def test_metrics_and_symmetry():
    metrics = {t.name: t.metrics for t in TASKS.values()}
    assert metrics["CoLA"] == ("mcc",) and metrics["AX"] == ("mcc",)
    assert metrics["MRPC"] == metrics["QQP"] == ("f1", "accuracy")
    assert metrics["STS-B"] == ("pearson", "spearman")
    assert [t.name for t in TASKS.values() if t.symmetric] == ["MRPC", "STS-B"]


def test_mnli_and_qqp_layouts_follow_download_glue_data():
    mnli, mm = glue_task("MNLI"), glue_task("MNLI-mm")
    assert mnli.splits["train"].num_columns == 12 and mnli.splits["train"].label_column == 11
    assert mnli.splits["dev"].filename == "dev_matched.tsv" and mnli.splits["dev"].num_columns == 16
    assert mnli.splits["dev"].label_column == 15 and mnli.splits["test"].num_columns == 10
    assert mm.directory == "MNLI" and mm.splits["dev"].filename == "dev_mismatched.tsv"
    assert mm.splits["test"].filename == "test_mismatched.tsv"
    assert mnli.tfds_splits["dev"] == "validation_matched"
    assert mm.tfds_name == "glue/mnli" and mm.tfds_splits["dev"] == "validation_mismatched"
    qqp = glue_task("QQP")
    assert (qqp.splits["train"].num_columns, qqp.splits["train"].label_column) == (6, 5)
    assert (qqp.splits["test"].num_columns, qqp.splits["test"].text_a_column) == (3, 1)
    assert glue_task("AX").directory == "diagnostic"


@pytest.mark.parametrize("alias,name", [
    ("sst-2", "SST-2"), ("sst2", "SST-2"), ("SST_2", "SST-2"), ("stsb", "STS-B"), ("sts-b", "STS-B"),
    ("COLA", "CoLA"), ("mnli-mm", "MNLI-mm"), ("mnli_mm", "MNLI-mm"), ("mnli-m", "MNLI"),
    ("ax", "AX"), ("diagnostic", "AX"), (" rte ", "RTE"),
])
def test_get_task_aliases(alias, name):
    assert glue_task(alias).name == name


def test_get_task_unknown_lists_valid_names():
    with pytest.raises(ValueError, match="Unknown GLUE task 'squad'") as e:
        glue_task("squad")
    assert all(name in str(e.value) for name in _ALL_NAMES)


def test_parse_list():
    assert [t.name for t in GLUE.parse_list("rte,mrpc, sts-b")] == ["RTE", "MRPC", "STS-B"]
    assert [t.name for t in GLUE.parse_list("cola,")] == ["CoLA"]


@pytest.mark.parametrize("text,message", [
    ("rte,RTE", "RTE is listed more than once"),
    ("sst2,sst-2", "SST-2 is listed more than once"),
    ("rte,foo", "Unknown GLUE task 'foo'"),
    ("", "No tasks given"),
    (" , ", "No tasks given"),
])
def test_parse_list_rejects(text, message):
    with pytest.raises(ValueError, match=message):
        GLUE.parse_list(text)


def test_tasks_are_hashable_and_immutable():
    task = glue_task("rte")
    assert {task: 1}[glue_task("RTE")] == 1
    with pytest.raises(TypeError):
        task.splits["train"] = task.splits["dev"]  # type: ignore[index]


def test_regression_targets_are_scaled_to_the_unit_interval_and_back():
    stsb = glue_task("STS-B")
    assert stsb.label_range == (0.0, 5.0)
    targets = stsb.training_targets(np.array([0.0, 1.2, 2.5, 5.0]))
    np.testing.assert_allclose(targets, [0.0, 0.24, 0.5, 1.0], rtol=1e-6)  # label / 5, as the original
    assert targets.dtype == np.float32
    np.testing.assert_allclose(stsb.label_scale(targets), [0.0, 1.2, 2.5, 5.0], rtol=1e-6)
    # class ids pass through unchanged
    rte = glue_task("RTE")
    assert rte.label_range is None
    np.testing.assert_array_equal(rte.training_targets(np.array([0, 1, 1])), [0.0, 1.0, 1.0])
    assert all(t.label_range is None for t in TASKS.values() if not t.is_regression)


def test_dev_tasks_of_a_head():
    from bam_tf.task_set import GLUE

    assert [t.name for t in GLUE.dev_tasks(glue_task("MNLI"))] == ["MNLI", "MNLI-mm"]  # AX has no dev split
    for name in ("CoLA", "SST-2", "MRPC", "STS-B", "QQP", "QNLI", "RTE", "WNLI"):
        assert GLUE.dev_tasks(glue_task(name)) == [glue_task(name)]


def test_task_slug_is_the_export_signature_name():
    from bam_tf.export import signature_name
    from bam_tf.task import task_slug

    assert [task_slug(t) for t in ("STS-B", "SST-2", "MNLI-mm", "RTE")] == ["sts_b", "sst_2", "mnli_mm", "rte"]
    assert all(signature_name(name) == task_slug(name) for name in TASKS)
