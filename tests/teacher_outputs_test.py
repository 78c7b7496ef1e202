"""Tests for bam_tf.teacher_outputs: the .npz round trip, atomic writes, and every alignment check."""

import dataclasses
import os

import numpy as np
import pytest

from bam_tf import teacher_outputs as teacher_outputs_lib
from bam_tf.glue_reader import TaskData
from bam_tf.task_set import glue_task
from bam_tf.teacher_outputs import (TeacherOutputs, TeacherOutputsError, align_teacher_outputs,
                                    load_teacher_outputs, save_teacher_outputs)

RTE = glue_task("RTE")
STSB = glue_task("STS-B")


def _rte_data(n=4, text_a=None):
    return TaskData(task=RTE, split="train", ids=[f"train-{i}" for i in range(n)],
                    text_a=text_a or [f"premise {i}" for i in range(n)],
                    text_b=[f"hypothesis {i}" for i in range(n)],
                    labels=np.arange(n, dtype=np.int32) % 2, official_index=[str(i) for i in range(n)],
                    source="/data/RTE/train.tsv")


def _outputs_for(data, outputs=None):
    n = len(data)
    if outputs is None:
        outputs = np.stack([np.arange(n, dtype=np.float32), -np.arange(n, dtype=np.float32)], axis=1)
    return TeacherOutputs(data.task.name, np.asarray(data.ids), np.asarray(outputs, np.float32),
                          data.fingerprint())


# ---- save / load -----------------------------------------------------------------------------------

def test_save_load_round_trip(tmp_path):
    data = _rte_data()
    original = _outputs_for(data)
    path = str(tmp_path / "teacher_outputs" / "RTE.npz")  # the folder is created on the way
    save_teacher_outputs(path, original)
    loaded = load_teacher_outputs(path)
    assert loaded.task_name == "RTE"
    assert loaded.example_ids.tolist() == data.ids
    assert loaded.outputs.dtype == np.float32
    np.testing.assert_array_equal(loaded.outputs, original.outputs)
    assert loaded.data_fingerprint == data.fingerprint()
    # and the loaded file aligns with the data it was computed on
    np.testing.assert_array_equal(align_teacher_outputs(loaded, data, path), original.outputs)


def test_save_leaves_no_temporary_files_and_overwrites(tmp_path):
    data = _rte_data()
    path = str(tmp_path / "RTE.npz")
    save_teacher_outputs(path, _outputs_for(data))
    save_teacher_outputs(path, _outputs_for(data, np.ones((4, 2))))
    assert sorted(os.listdir(tmp_path)) == ["RTE.npz"]
    np.testing.assert_array_equal(load_teacher_outputs(path).outputs, np.ones((4, 2)))


def test_failed_write_leaves_neither_a_temporary_nor_a_partial_file(tmp_path, monkeypatch):
    def broken_savez(f, **arrays):
        f.write(b"half a file")
        raise OSError("disk full")

    monkeypatch.setattr(teacher_outputs_lib.np, "savez", broken_savez)
    with pytest.raises(OSError, match="disk full"):
        save_teacher_outputs(str(tmp_path / "RTE.npz"), _outputs_for(_rte_data()))
    assert os.listdir(tmp_path) == []


def test_failed_overwrite_keeps_the_previous_file(tmp_path, monkeypatch):
    path = str(tmp_path / "RTE.npz")
    save_teacher_outputs(path, _outputs_for(_rte_data()))
    monkeypatch.setattr(teacher_outputs_lib.np, "savez",
                        lambda f, **arrays: (_ for _ in ()).throw(OSError("disk full")))
    with pytest.raises(OSError):
        save_teacher_outputs(path, _outputs_for(_rte_data(), np.ones((4, 2))))
    assert os.listdir(tmp_path) == ["RTE.npz"]
    np.testing.assert_array_equal(load_teacher_outputs(path).outputs[:, 0], [0, 1, 2, 3])


def test_load_missing_file_names_the_path(tmp_path):
    path = str(tmp_path / "nothing.npz")
    with pytest.raises(TeacherOutputsError, match="nothing.npz: no teacher outputs here"):
        load_teacher_outputs(path)


def test_load_foreign_files_name_the_path(tmp_path):
    not_npz = tmp_path / "garbage.npz"
    not_npz.write_bytes(b"this is not a zip file")
    with pytest.raises(TeacherOutputsError, match="garbage.npz: not a bam_tf teacher-outputs file"):
        load_teacher_outputs(str(not_npz))
    other_npz = tmp_path / "other.npz"
    np.savez(other_npz, something=np.zeros(3))
    with pytest.raises(TeacherOutputsError, match="other.npz: not a bam_tf teacher-outputs file"):
        load_teacher_outputs(str(other_npz))
    for name, cut in (("empty.npz", 0), ("truncated.npz", 100)):  # what a crash in the middle of a copy leaves
        np.savez(tmp_path / name, something=np.zeros(300))
        (tmp_path / name).write_bytes((tmp_path / name).read_bytes()[:cut])
        with pytest.raises(TeacherOutputsError, match=f"{name}: not a bam_tf teacher-outputs file .*delete it"):
            load_teacher_outputs(str(tmp_path / name))
    future = tmp_path / "future.npz"
    np.savez(future, format_version=np.int32(99))
    with pytest.raises(TeacherOutputsError, match="future.npz: format version 99, expected one of 1, 2"):
        load_teacher_outputs(str(future))


def _save_format_1(path, teacher):
    """A file as bam_tf wrote it before format 2 (STS-B scores on the 0–5 label scale)."""
    np.savez(path, format_version=np.int32(1), task_name=np.str_(teacher.task_name),
             example_ids=np.asarray(teacher.example_ids, dtype=str), outputs=teacher.outputs,
             data_fingerprint=np.str_(teacher.data_fingerprint))


def _stsb_data():
    return TaskData(task=STSB, split="train", ids=["train-0", "train-1"], text_a=["a", "b"], text_b=["c", "d"],
                    labels=np.array([1.5, 4.0], np.float32), official_index=["0", "1"], source="sts.tsv")


def test_format_1_regression_outputs_on_the_old_scale_are_refused(tmp_path):
    data = _stsb_data()
    path = str(tmp_path / "STS-B.npz")
    _save_format_1(path, TeacherOutputs("STS-B", np.asarray(data.ids), np.array([[1.4], [4.1]], np.float32),
                                        data.fingerprint()))
    loaded = load_teacher_outputs(path)
    assert loaded.format_version == 1
    with pytest.raises(TeacherOutputsError, match=r"STS-B.npz: format 1 holds STS-B scores on the label scale "
                                                  r"0–5; students now train on scores scaled to \[0, 1\]"):
        align_teacher_outputs(loaded, data, path)
    # written now (format 2), the same task's outputs are accepted
    save_teacher_outputs(path, TeacherOutputs("STS-B", np.asarray(data.ids), np.array([[0.28], [0.82]], np.float32),
                                              data.fingerprint()))
    np.testing.assert_allclose(align_teacher_outputs(load_teacher_outputs(path), data, path), [[0.28], [0.82]])


def test_format_1_classification_logits_are_still_read(tmp_path):
    data = _rte_data()
    path = str(tmp_path / "RTE.npz")
    _save_format_1(path, _outputs_for(data))
    np.testing.assert_array_equal(align_teacher_outputs(load_teacher_outputs(path), data, path),
                                  _outputs_for(data).outputs)


def test_load_refuses_pickled_arrays(tmp_path):
    pickled = tmp_path / "pickled.npz"
    np.savez(pickled, format_version=np.int32(1), task_name=np.str_("RTE"),
             example_ids=np.array([{"a": 1}], dtype=object), outputs=np.zeros((1, 2), np.float32),
             data_fingerprint=np.str_("x"))
    with pytest.raises(TeacherOutputsError, match="pickled.npz"):
        load_teacher_outputs(str(pickled))


# ---- alignment ---------------------------------------------------------------------------------

SOURCE = "/models/run/teacher_outputs/RTE.npz"


def test_align_restores_data_order_from_shuffled_ids():
    data = _rte_data(5)
    # rows stored in the order train-3, train-0, train-4, train-1, train-2; row k holds [10·i, i] for id i
    order = [3, 0, 4, 1, 2]
    stored = TeacherOutputs("RTE", np.array([f"train-{i}" for i in order]),
                            np.array([[10.0 * i, float(i)] for i in order], np.float32), data.fingerprint())
    aligned = align_teacher_outputs(stored, data, SOURCE)
    np.testing.assert_array_equal(aligned, [[0, 0], [10, 1], [20, 2], [30, 3], [40, 4]])


def test_align_regression_outputs():
    data = TaskData(task=STSB, split="train", ids=["train-0", "train-1"], text_a=["a", "b"], text_b=["c", "d"],
                    labels=np.array([1.5, 4.0], np.float32), official_index=["0", "1"], source="sts.tsv")
    stored = TeacherOutputs("STS-B", np.array(["train-1", "train-0"]), np.array([[4.2], [1.1]], np.float32),
                            data.fingerprint())
    np.testing.assert_array_equal(align_teacher_outputs(stored, data, SOURCE), np.array([[1.1], [4.2]], np.float32))


def _expect_error(teacher, data, *fragments):
    with pytest.raises(TeacherOutputsError) as info:
        align_teacher_outputs(teacher, data, SOURCE)
    message = str(info.value)
    assert message.startswith(SOURCE + ":"), message
    for fragment in fragments:
        assert fragment in message, message


def test_align_rejects_wrong_task():
    data = _rte_data()
    _expect_error(dataclasses.replace(_outputs_for(data), task_name="MRPC"), data, "for task MRPC, not RTE")


def test_align_rejects_wrong_width():
    data = _rte_data()
    _expect_error(_outputs_for(data, np.zeros((4, 3))), data, "shape (4, 3)", "[num_examples, 2]")
    _expect_error(dataclasses.replace(_outputs_for(data), outputs=np.zeros(4, np.float32)), data, "shape (4,)")


def test_align_rejects_count_mismatch():
    data = _rte_data(4)
    fewer = _outputs_for(_rte_data(3))
    fewer = dataclasses.replace(fewer, data_fingerprint=data.fingerprint())
    _expect_error(fewer, data, "3 teacher outputs for 4 training examples of RTE")


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_align_rejects_non_finite_rows(bad):
    data = _rte_data()
    values = np.zeros((4, 2), np.float32)
    values[2, 1] = bad
    _expect_error(_outputs_for(data, values), data, "1 rows hold NaN or infinity", "train-2")


def test_align_rejects_missing_ids():
    data = _rte_data()
    teacher = _outputs_for(data)
    teacher.example_ids = np.array(["train-0", "train-1", "train-2", "train-99"])
    _expect_error(teacher, data, "no teacher output for 1 example ids", "train-3")


def test_align_rejects_outputs_computed_on_other_data():
    data = _rte_data()
    teacher = _outputs_for(data)  # fingerprint of the original texts
    changed = _rte_data(text_a=["premise 0", "premise 1", "a different premise", "premise 3"])
    assert changed.ids == data.ids  # same ids, same count: only the fingerprint can tell
    _expect_error(teacher, changed, "computed on different RTE training data", data.fingerprint()[:12])
