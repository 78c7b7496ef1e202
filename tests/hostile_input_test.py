"""Hostile and broken input through the real CLI (run in-process, tests/support.run_train_in_process): a clear
message naming the culprit, a non-zero exit, and nothing half-written. Each case is listed in BUILD.md's table."""

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

from bam_tf.glue_reader import read_split
from bam_tf.task_set import glue_task
from bam_tf.run_lock import LOCK_FILE

from support import run_train_in_process

RTE_HEADER = "index\tsentence1\tsentence2\tlabel\n"
TINY = ["--backbone=random:layers=1,hidden=16,heads=2,intermediate=32", "--max_seq_length=32",
        "--teacher_batch_size=4", "--train_batch_size=4", "--teacher_epochs=1", "--num_train_epochs=1",
        "--tasks=RTE"]


def _rte_rows(n, label="entailment"):
    return "".join(f"{i}\tA man sleeps number {i}.\tSomeone sleeps.\t{label}\n" for i in range(n))


def _write_glue(root):
    """A small well-formed GLUE folder holding RTE only."""
    rte = root / "glue" / "RTE"
    rte.mkdir(parents=True)
    (rte / "train.tsv").write_text(RTE_HEADER + _rte_rows(8) + _rte_rows(8, "not_entailment"))
    (rte / "dev.tsv").write_text(RTE_HEADER + _rte_rows(4) + _rte_rows(4, "not_entailment"))
    return root / "glue"


@pytest.fixture
def glue(tmp_path):
    return _write_glue(tmp_path)


def run_cli(*flags):
    return run_train_in_process(*flags)


def _fails_clearly(result, *fragments):
    assert result.returncode != 0, result.stdout[-2000:]
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    for fragment in fragments:
        assert fragment in result.stderr, (fragment, result.stderr[-3000:])


def _written(model_dir):
    """What a run wrote, apart from the lock it holds while it runs (bam_tf.run_lock)."""
    if not os.path.isdir(model_dir):
        return []
    return sorted(name for name in os.listdir(model_dir) if name != LOCK_FILE)


@pytest.mark.parametrize("case, edit, fragments", [
    ("missing glue dir", lambda g: shutil.rmtree(g), ["GLUE data directory does not exist"]),
    ("missing split", lambda g: os.remove(g / "RTE" / "dev.tsv"), ["dev.tsv", "missing dev file for RTE",
                                                                   "files present: train.tsv"]),
    ("unreadable split", lambda g: (os.remove(g / "RTE" / "train.tsv"), os.mkdir(g / "RTE" / "train.tsv")),
     ["train.tsv", "cannot read file"]),
    ("wrong column count", lambda g: (g / "RTE" / "train.tsv").write_text(RTE_HEADER + _rte_rows(3) + "3\tonly two\n"),
     ["train.tsv:5:", "expected 4 columns, found 2"]),
    ("unknown label", lambda g: (g / "RTE" / "dev.tsv").write_text(RTE_HEADER + _rte_rows(2) + _rte_rows(1, "maybe")),
     ["dev.tsv:4:", "unknown RTE label 'maybe'"]),
    ("empty file", lambda g: (g / "RTE" / "train.tsv").write_text(""), ["train.tsv", "file is empty"]),
])
def test_bad_glue_data(glue, tmp_path, case, edit, fragments):
    edit(glue)
    model_dir = tmp_path / "run"
    result = run_cli(f"--model_dir={model_dir}", f"--glue_dir={glue}", *TINY)
    _fails_clearly(result, *fragments)
    assert not model_dir.exists()  # data is read before anything is written, and the lock is not left behind


@pytest.mark.parametrize("mode, fragment", [("predict", "no trained teacher for RTE"),
                                             ("student", "teacher_outputs"),
                                             ("evaluate", "student")])
def test_a_stage_without_its_inputs_in_a_new_model_dir_leaves_no_folder(glue, tmp_path, mode, fragment):
    model_dir = tmp_path / "run"
    result = run_cli(f"--model_dir={model_dir}", f"--glue_dir={glue}", f"--mode={mode}", *TINY)
    _fails_clearly(result, fragment)
    assert not model_dir.exists(), _written(model_dir)  # no config.json or flags.txt left behind either


def test_a_stage_without_its_inputs_keeps_an_existing_run_folder(glue, tmp_path):
    model_dir = tmp_path / "run"
    model_dir.mkdir()
    (model_dir / "notes.txt").write_text("mine")
    result = run_cli(f"--model_dir={model_dir}", f"--glue_dir={glue}", "--mode=predict", *TINY)
    _fails_clearly(result, "no trained teacher for RTE")
    assert _written(model_dir) == ["notes.txt"]


def test_a_new_run_that_wrote_something_keeps_its_records_and_a_users_files(glue, tmp_path, monkeypatch):
    """Only a run that wrote nothing but its records removes them, and never a file that was there before."""
    from bam_tf.pipeline import BamPipeline
    from bam_tf.user_errors import MissingInputError

    def writes_then_fails(self, *args, **kwargs):
        os.makedirs(self.layout.teacher_outputs_dir, exist_ok=True)
        with open(os.path.join(self.layout.teacher_outputs_dir, "half.txt"), "w") as f:
            f.write("written by a stage")
        raise MissingInputError("stopped after writing")

    model_dir = tmp_path / "run"
    (model_dir / "teacher_outputs").mkdir(parents=True)  # a folder there before, written into by the stage
    monkeypatch.setattr(BamPipeline, "write_teacher_outputs", writes_then_fails)
    _fails_clearly(run_cli(f"--model_dir={model_dir}", f"--glue_dir={glue}", "--mode=predict", *TINY),
                   "stopped after writing")
    assert _written(model_dir) == ["config.json", "flags.txt", "teacher_outputs"]
    other = tmp_path / "other"
    other.mkdir()
    (other / "flags.txt").write_text("--tasks=RTE\n")  # the user's, there before: overwritten, not removed
    _fails_clearly(run_cli(f"--model_dir={other}", f"--glue_dir={glue}", "--mode=evaluate", *TINY), "student")
    assert _written(other) == ["flags.txt"]


@pytest.fixture(scope="module")
def run_with_teacher_outputs(tmp_path_factory):
    root = tmp_path_factory.mktemp("teacher_run")
    glue, model_dir = _write_glue(root), root / "run"
    result = run_cli(f"--model_dir={model_dir}", f"--glue_dir={glue}", "--mode=teachers", *TINY)
    assert result.returncode == 0, result.stderr[-3000:]
    result = run_cli(f"--model_dir={model_dir}", f"--glue_dir={glue}", "--mode=predict", *TINY)
    assert result.returncode == 0, result.stderr[-3000:]
    return glue, model_dir


def test_crlf_line_ends_are_read_like_lf(run_with_teacher_outputs, tmp_path):
    lf_glue, lf_run = run_with_teacher_outputs
    crlf_glue = tmp_path / "glue"
    shutil.copytree(lf_glue, crlf_glue)
    for name in ("train.tsv", "dev.tsv"):
        path = crlf_glue / "RTE" / name
        path.write_bytes(path.read_bytes().replace(b"\n", b"\r\n"))
        assert path.read_bytes().count(b"\r\n") == path.read_bytes().count(b"\n") > 1
    # The reader gives the LF version's rows exactly: same texts (no stray "\r"), labels and ids.
    for split in ("train", "dev"):
        lf, crlf = read_split(lf_glue, glue_task("RTE"), split), read_split(crlf_glue, glue_task("RTE"), split)
        assert (crlf.ids, crlf.text_a, crlf.text_b, crlf.official_index) == (lf.ids, lf.text_a, lf.text_b,
                                                                             lf.official_index)
        np.testing.assert_array_equal(crlf.labels, lf.labels)
        assert crlf.fingerprint() == lf.fingerprint()
    assert crlf.text_a[:2] == ["A man sleeps number 0.", "A man sleeps number 1."]
    assert crlf.text_b[0] == "Someone sleeps." and crlf.labels.tolist() == [0] * 4 + [1] * 4  # entailment first
    # Through the CLI: a student distilled from teacher outputs computed on the LF files accepts them, which
    # it does only when the training data it reads has the same fingerprint (bam_tf.teacher_outputs).
    model_dir = tmp_path / "run"
    (model_dir / "teacher_outputs").mkdir(parents=True)
    shutil.copy(lf_run / "teacher_outputs" / "RTE.npz", model_dir / "teacher_outputs" / "RTE.npz")
    result = run_cli(f"--model_dir={model_dir}", f"--glue_dir={crlf_glue}", "--mode=student", *TINY)
    assert result.returncode == 0, result.stderr[-3000:]
    with open(model_dir / "student" / "training_summary.json", encoding="utf-8") as f:
        assert json.load(f)["train_examples"] == {"RTE": 16}
    with open(model_dir / "student" / "dev_results.json", encoding="utf-8") as f:
        assert list(json.load(f)["tasks"]) == ["RTE"]


def test_a_teacher_copied_into_a_run_of_other_teacher_flags_is_refused(run_with_teacher_outputs, tmp_path):
    glue, trained = run_with_teacher_outputs
    model_dir = tmp_path / "copy"
    shutil.copytree(trained / "teachers", model_dir / "teachers")
    result = run_cli(f"--model_dir={model_dir}", f"--glue_dir={glue}", "--mode=teachers", "--teacher_learning_rate=1e-3",
                     *TINY)
    _fails_clearly(result, str(model_dir / "teachers" / "RTE"),
                   "was trained with other flags (--teacher_learning_rate: 5e-05 → 0.001); delete it")
    assert _written(model_dir) == ["teachers"]  # the failed new run left no records of flags it never used
    result = run_cli(f"--model_dir={model_dir}", f"--glue_dir={glue}", "--mode=predict", "--teacher_learning_rate=1e-3",
                     *TINY)  # predicting from the copy without --mode=teachers is checked the same way
    _fails_clearly(result, "was trained with other flags (--teacher_learning_rate: 5e-05 → 0.001)")
    assert _written(model_dir) == ["teachers"]
    weights = next((model_dir / "teachers" / "RTE").rglob("*.weights.h5")).read_bytes()
    result = run_cli(f"--model_dir={model_dir}", f"--glue_dir={glue}", "--mode=teachers", "--learning_rate=3e-4",
                     *TINY)  # a student flag: the teachers never read it, so the copy is kept as it is
    assert result.returncode == 0, result.stderr[-2000:]
    assert next((model_dir / "teachers" / "RTE").rglob("*.weights.h5")).read_bytes() == weights
    assert _written(model_dir) == ["config.json", "flags.txt", "teachers"]


def _rewrite_outputs(path, **changes):
    with np.load(path) as npz:
        values = {name: npz[name] for name in npz.files}
    values.update(changes)
    np.savez(path, **values)


@pytest.mark.parametrize("case, change, fragment", [
    ("other dataset", lambda v: {"data_fingerprint": np.str_("0" * 64)}, "computed on different RTE training data"),
    ("missing ids", lambda v: {"example_ids": np.array([f"x-{i}" for i in range(len(v["example_ids"]))])},
     "no teacher output for 16 example ids"),
    ("wrong width", lambda v: {"outputs": np.zeros((len(v["outputs"]), 3), np.float32)}, "[num_examples, 2]"),
    ("NaN", lambda v: {"outputs": np.where(np.arange(len(v["outputs"]))[:, None] == 3, np.nan, v["outputs"])},
     "1 rows hold NaN or infinity"),
])
def test_broken_teacher_outputs_stop_the_student_before_training(run_with_teacher_outputs, case, change,
                                                                 fragment):
    glue, model_dir = run_with_teacher_outputs
    path = model_dir / "teacher_outputs" / "RTE.npz"
    original = path.read_bytes()
    try:
        with np.load(path) as npz:
            _rewrite_outputs(path, **change(npz))
        result = run_cli(f"--model_dir={model_dir}", f"--glue_dir={glue}", "--mode=student", *TINY)
    finally:
        path.write_bytes(original)
    _fails_clearly(result, str(path), fragment)
    assert not (model_dir / "student").exists() and not (model_dir / "checkpoints" / "student").exists()


def test_a_corrupted_checkpoint_names_itself(glue, tmp_path):
    model_dir = tmp_path / "run"
    checkpoints = model_dir / "checkpoints" / "student"
    checkpoints.mkdir(parents=True)
    (checkpoints / "checkpoint").write_text('model_checkpoint_path: "ckpt-3"\nall_model_checkpoint_paths: "ckpt-3"\n')
    (checkpoints / "ckpt-3.index").write_bytes(b"not a checkpoint")
    (checkpoints / "ckpt-3.data-00000-of-00001").write_bytes(b"\0" * 64)
    result = run_cli(f"--model_dir={model_dir}", f"--glue_dir={glue}", "--mode=student", "--nodistill", *TINY)
    _fails_clearly(result, "ckpt-3: cannot restore this checkpoint", "Delete")
    assert "student" not in _written(model_dir)


def test_a_backbone_path_that_is_not_a_model(glue, tmp_path):
    not_a_model = tmp_path / "weights"
    not_a_model.mkdir()
    (not_a_model / "notes.txt").write_text("hello")
    result = run_cli(f"--model_dir={tmp_path / 'run'}", f"--glue_dir={glue}", f"--backbone={not_a_model}",
                     "--tasks=RTE")
    _fails_clearly(result, str(not_a_model), "neither metadata.json")


@pytest.mark.parametrize("line, fragment", [
    ("--learning_rat=1e-4", "learning_rat"),
    ("--train_batch_size=many", "train_batch_size"),
    ("--train_batch_size=0", "--train_batch_size must be positive"),
    ("--task_mixing=sometimes", "task_mixing"),
    ("--tasks=RTE,FOO", "FOO"),
])
def test_bad_flagfiles(tmp_path, glue, line, fragment):
    flagfile = tmp_path / "bad.flags"
    flagfile.write_text(f"--model_dir={tmp_path / 'run'}\n--glue_dir={glue}\n{line}\n")
    result = run_cli(f"--flagfile={flagfile}")
    assert result.returncode != 0
    assert fragment in result.stderr, result.stderr[-2000:]
    assert "error: " in result.stderr and "FATAL" not in result.stderr  # one style for every flag problem
    assert not (tmp_path / "run").exists()


def test_a_batch_that_does_not_split_over_the_replicas(glue, tmp_path):
    # A new process: the two logical CPUs must be configured before TensorFlow starts. 16 examples in
    # batches of 9: 18 slots, which do not reshape into slices of 4 (the log line must not try).
    result = subprocess.run([sys.executable, "-m", "bam_tf.train", f"--model_dir={tmp_path / 'run'}",
                             f"--glue_dir={glue}", *TINY, "--teacher_batch_size=9", "--strategy=mirrored",
                             "--cpu_replicas=2"], capture_output=True, text=True, timeout=300)
    _fails_clearly(result, "batch size 9 does not split evenly over 2 replicas")
