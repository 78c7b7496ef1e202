"""Kill -9 in the middle of training, run the same command again: the run ends as if never interrupted."""

import json
import logging
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from support import GLUE_DIR, needs_glue, run_train_in_process

pytestmark = needs_glue(("CoLA", "RTE", "STS-B"))


def _command(model_dir):
    return [sys.executable, "-m", "bam_tf.train", f"--model_dir={model_dir}", f"--glue_dir={GLUE_DIR}",
            "--mode=student", "--nodistill", "--tasks=CoLA,RTE,STS-B", "--backbone=random:layers=2,hidden=32",
            "--max_train_examples=48", "--max_eval_examples=32", "--max_seq_length=64", "--train_batch_size=8",
            "--num_train_epochs=3", "--nodataset_multiples", "--length_group_size=4", "--checkpoint_every=5",
            "--length_bucketing_window=32", "--log_every=20"]


def _run(model_dir):
    """The same command in this process: only the killed run needs a process of its own."""
    result = run_train_in_process(*_command(model_dir)[3:])
    assert result.returncode == 0, result.stderr[-3000:]


def _outcome(model_dir):
    student = os.path.join(model_dir, "student")
    with open(os.path.join(student, "training_summary.json")) as f:
        summary = json.load(f)
    with open(os.path.join(student, "dev_results.json")) as f:
        dev = json.load(f)["tasks"]
    with np.load(os.path.join(student, "heads.npz")) as heads:
        weights = {name: heads[name] for name in heads.files}
    return summary, dev, weights


def test_kill_9_then_rerun_matches_an_uninterrupted_run(tmp_path, caplog):
    straight_dir, killed_dir = str(tmp_path / "straight"), str(tmp_path / "killed")
    with caplog.at_level(logging.INFO):
        _run(straight_dir)
    assert "student: length bucketing on: windows of 32 batches" in caplog.text  # the pipeline's note

    process = subprocess.Popen(_command(killed_dir), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    checkpoint_state = os.path.join(killed_dir, "checkpoints", "student", "checkpoint")
    deadline = time.time() + 240
    while not os.path.exists(checkpoint_state) and process.poll() is None and time.time() < deadline:
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert process.returncode == -signal.SIGKILL, "training ended before it could be killed"
    assert not os.path.exists(os.path.join(killed_dir, "student"))  # nothing half-written
    caplog.clear()
    with caplog.at_level(logging.INFO):
        _run(killed_dir)

    straight, killed = _outcome(straight_dir), _outcome(killed_dir)
    assert killed[0]["resumed_from_step"] > 0
    steps = killed[0]["steps"]
    assert f"student: steps {killed[0]['resumed_from_step'] + 1}–{steps} of {steps} (resumed) in " in caplog.text
    # short CoLA sentences beside RTE and STS-B pairs: each batch of 8 trained as two length groups of 4
    assert straight[0]["length_group_size"] == killed[0]["length_group_size"] == 4, straight[0]["length_groups"]
    # each process's part recorded; on one machine one precision and device, so stated plainly
    assert [s["from_step"] for s in killed[0]["segments"]] == [1, killed[0]["resumed_from_step"] + 1]
    assert {s["precision"] for s in killed[0]["segments"]} == {killed[0]["precision"]} == {straight[0]["precision"]}
    assert {s["device"] for s in killed[0]["segments"]} == {killed[0]["device"]}
    assert "with another" not in caplog.text
    for key in ("steps", "examples_per_task", "final_gold_weight"):
        assert killed[0][key] == straight[0][key], key
    assert killed[0]["final_gold_weight"] is None  # --nodistill: no λ weighs anything (the restored batch counter
    # drives the learning rate, which the equal weights below check)
    for name, value in straight[2].items():
        np.testing.assert_allclose(killed[2][name], value, atol=1e-5, err_msg=name)
    for task, scores in straight[1].items():
        for metric, value in scores.items():
            assert killed[1][task][metric] == pytest.approx(value, abs=1e-5)
    assert not os.path.exists(os.path.join(killed_dir, "checkpoints", "student"))  # cleaned up once saved
