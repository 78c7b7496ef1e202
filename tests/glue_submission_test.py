"""bam_tf.glue_submission and tools/glue_submission.py on the real GLUE test files with a tiny untrained model.

The GLUE folder given to the tool links only RTE and STS-B of $GLUE_DIR, so which tasks are missing, and
why, does not depend on what else $GLUE_DIR holds.
"""

import csv
import os
import subprocess
import sys
import zipfile

import numpy as np
import pytest

from bam_tf import glue_submission as submission
from bam_tf.task_set import glue_task
from bam_tf.user_errors import InputError

from support import GLUE_DIR, ROOT
from support import needs_glue as _needs_glue

SCRIPT = os.path.join(ROOT, "tools", "glue_submission.py")
needs_glue = _needs_glue(("RTE", "STS-B"), split="test")
HEADS = ["RTE", "STS-B", "QQP"]  # QQP has a head but (in the linked folder) no test file


def _test_file_rows(task_name):
    with open(os.path.join(GLUE_DIR, task_name, "test.tsv"), encoding="utf-8") as f:
        rows = list(csv.reader(f, delimiter="\t", quotechar=None))
    return rows[1:]


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    from bam_tf.backbone import load_backbone
    from bam_tf.model import MultiTaskBert
    from bam_tf.text_encoding import TextEncoder
    from bam_tf.trained_model import build_model, save_trained_model

    import keras

    root = tmp_path_factory.mktemp("submission")
    keras.utils.set_random_seed(0)
    loaded = load_backbone("random:layers=2,hidden=32")
    model = MultiTaskBert(loaded.backbone, [glue_task(t) for t in HEADS])
    build_model(model)
    # STS-B scores around 2.5 rather than around 0, where the submission's clip would make most of them 0.000
    model.heads["STS-B"].bias.assign([0.5])
    save_trained_model(str(root / "run" / "student"), model, TextEncoder(loaded.tokenizer, 32), "random")
    glue = root / "glue"
    glue.mkdir()
    for task in ("RTE", "STS-B"):
        if os.path.isdir(os.path.join(GLUE_DIR, task)):
            os.symlink(os.path.join(GLUE_DIR, task), glue / task)
    return str(root / "run"), str(glue), root


@pytest.fixture(scope="module")
def full(setup):
    run_dir, glue, root = setup
    output = str(root / "out" / "submission.zip")
    summary = submission.write_submission(run_dir, glue, output)
    return summary, output


@needs_glue
def test_zip_members_and_summary(full):
    summary, output = full
    assert summary.output == output and os.path.isfile(output)
    assert not [p for p in os.listdir(os.path.dirname(output)) if ".tmp" in p]
    with zipfile.ZipFile(output) as archive:
        assert sorted(archive.namelist()) == ["RTE.tsv", "STS-B.tsv"]
    assert summary.written == {"RTE.tsv": 3000, "STS-B.tsv": 1379}
    missing = summary.missing
    assert missing["QQP"].startswith("no test file")
    assert missing["CoLA"] == missing["SST-2"] == missing["MNLI"] == "no head"
    assert missing["MNLI-mm"] == missing["AX"] == "no MNLI head"
    assert set(missing) | {"RTE", "STS-B"} == {t.name for t in submission.submission_tasks()}
    text = summary.format()
    assert "missing: CoLA (no head)" in text and "QQP (no test file" in text and "AX (no MNLI head)" in text
    assert "RTE.tsv (3000 rows)" in text and "warning" not in text


@needs_glue
@pytest.mark.parametrize("task_name", ["RTE", "STS-B"])
def test_files_match_the_test_split(full, task_name):
    _, output = full
    task = glue_task(task_name)
    with zipfile.ZipFile(output) as archive:
        lines = archive.read(task.submission_file).decode("utf-8").splitlines()
    assert lines[0] == "index\tprediction"
    rows = [line.split("\t") for line in lines[1:]]
    test = _test_file_rows(task_name)
    assert len(rows) == len(test) == {"RTE": 3000, "STS-B": 1379}[task_name]
    assert all(len(r) == 2 for r in rows)
    assert [r[0] for r in rows] == [t[0] for t in test]  # the official index, in file order
    predictions = [r[1] for r in rows]
    if task.is_regression:
        scores = np.array(predictions, float)
        assert scores.min() >= 0.0 and scores.max() <= 5.0
        assert all(len(p.split(".")[1]) == 3 for p in predictions)
        # rows predicted by the model's STS-B head one at a time (clipped to 0–5 and rounded as submitted)
        from bam_tf.glue_reader import read_split
        from bam_tf.predictor import Predictor

        data = read_split(GLUE_DIR, task, "test", max_examples=5)
        own = Predictor.load(os.path.join(os.path.dirname(os.path.dirname(output)), "run")).predict(
            task_name, list(zip(data.text_a, data.text_b)))
        expected = np.clip([p["score"] for p in own], 0.0, 5.0)
        np.testing.assert_allclose(scores[:5], expected, atol=2e-3)
        assert len(set(predictions[:5])) > 1  # not one clipped answer, which would match any model's
    else:
        assert set(predictions) <= {"entailment", "not_entailment"}


def test_prediction_strings():
    # STS-B heads output score / 5: 0.5 is a score of 2.5; beyond [0, 1] is clipped to GLUE's [0, 5].
    outputs = np.array([[-0.2], [0.5], [0.7231], [1.4]], np.float32)
    assert glue_task("STS-B").prediction_strings(outputs) == ["0.000", "2.500", "3.615", "5.000"]
    logits = np.array([[0.1, 0.2, 0.0], [3.0, 0.0, 0.0], [0.0, 0.0, 1.0]], np.float32)
    assert glue_task("AX").prediction_strings(logits) == ["neutral", "entailment", "contradiction"]
    assert glue_task("CoLA").prediction_strings(logits[:, :2]) == ["1", "0", "0"]


def test_official_file_names():
    names = [t.submission_file for t in submission.submission_tasks()]
    assert names == ["CoLA.tsv", "SST-2.tsv", "MRPC.tsv", "STS-B.tsv", "QQP.tsv", "MNLI-m.tsv", "MNLI-mm.tsv",
                     "QNLI.tsv", "RTE.tsv", "WNLI.tsv", "AX.tsv"]


def test_nothing_to_write_writes_nothing(setup):
    run_dir, glue, root = setup
    output = str(root / "none.zip")
    summary = submission.write_submission(run_dir, glue, output, tasks="CoLA,AX")
    assert summary.output is None and not os.path.exists(output)
    assert summary.missing == {"CoLA": "no head", "AX": "no MNLI head"}
    assert "nothing written" in summary.format()


def test_an_output_that_cannot_be_a_zip_or_no_rows_is_an_error_before_loading(tmp_path):
    missing_model = str(tmp_path / "no_model")  # checked first: no model is read
    with pytest.raises(InputError, match="is a folder, not a file"):
        submission.write_submission(missing_model, None, str(tmp_path), tasks="RTE")
    with pytest.raises(InputError, match=r"--max_examples=0: give a positive number"):
        submission.write_submission(missing_model, None, str(tmp_path / "x.zip"), tasks="RTE", max_examples=0)
    assert os.listdir(tmp_path) == []


@needs_glue
def test_cli_with_max_examples(setup):
    run_dir, glue, root = setup
    output = str(root / "cli.zip")
    result = subprocess.run([sys.executable, SCRIPT, f"--model_dir={run_dir}", f"--glue_dir={glue}",
                             f"--output={output}", "--tasks=rte,cola,mnli-mm", "--max_examples=7"],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "RTE.tsv (7 rows)" in result.stdout
    assert "missing: CoLA (no head), MNLI-mm (no MNLI head)" in result.stdout
    assert "not a complete GLUE submission" in result.stdout
    with zipfile.ZipFile(output) as archive:
        assert archive.namelist() == ["RTE.tsv"]
        assert len(archive.read("RTE.tsv").decode().splitlines()) == 8


def test_a_users_own_task_gets_its_test_file_predicted_without_glue_data(tmp_path):
    from bam_tf.backbone import load_backbone
    from bam_tf.model import MultiTaskBert
    from bam_tf.task_defs import load_task_definitions
    from bam_tf.text_encoding import TextEncoder
    from bam_tf.trained_model import build_model, save_trained_model

    (tmp_path / "train.tsv").write_text("good\tyes\nbad\tno\n")
    (tmp_path / "test.tsv").write_text("id\ttext\nq7\tfine\nq9\tawful\n")
    (tmp_path / "tasks.yaml").write_text(
        "tasks:\n  - name: verdict\n    files:\n      train: train.tsv\n      dev: train.tsv\n"
        "      test: {path: test.tsv, text_a: text, id: id, label: null}\n"
        "    text_a: 0\n    label: 1\n    labels: ['no', 'yes']\n    metrics: [accuracy]\n")
    (verdict,) = load_task_definitions(str(tmp_path / "tasks.yaml"))
    loaded = load_backbone("random:layers=2,hidden=32")
    model = MultiTaskBert(loaded.backbone, [verdict, glue_task("RTE")])
    build_model(model)
    save_trained_model(str(tmp_path / "model"), model, TextEncoder(loaded.tokenizer, 32), "random")
    output = str(tmp_path / "predictions.zip")
    summary = submission.write_submission(str(tmp_path / "model"), "", output, tasks="verdict")
    assert summary.written == {"verdict.tsv": 2} and not summary.missing
    with zipfile.ZipFile(output) as archive:
        rows = [line.split("\t") for line in archive.read("verdict.tsv").decode().splitlines()]
    assert rows[0] == ["index", "prediction"] and [r[0] for r in rows[1:]] == ["q7", "q9"]
    assert {r[1] for r in rows[1:]} <= {"no", "yes"}
    with pytest.raises(ValueError, match=r"--tasks=verdit: Unknown task 'verdit'; GLUE tasks, or this "
                                         r"model's own: verdict$"):
        submission.write_submission(str(tmp_path / "model"), "", output, tasks="verdit")
    with pytest.raises(ValueError, match=r"^--glue_dir is not set \(GLUE tasks read their test files from it"):
        submission.write_submission(str(tmp_path / "model"), "", output, tasks="verdict,RTE")


def test_an_output_under_a_tilde_no_shell_expanded_is_at_home(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    with pytest.raises(InputError, match=f"^--output={tmp_path} is a folder, not a file"):
        submission.write_submission(str(tmp_path / "no_model"), None, "~", tasks="RTE")
