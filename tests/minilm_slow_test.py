"""Slow: the real MiniLM-L6 weights learn a GLUE task through the CLI (make test-slow)."""

import json
import os
import subprocess
import sys

import pytest

from support import GLUE_DIR, needs_glue

pytestmark = [pytest.mark.slow, needs_glue(("SST-2",))]


def test_a_minilm_teacher_learns_sst2_from_1000_examples(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "bam_tf.train", f"--model_dir={tmp_path}", f"--glue_dir={GLUE_DIR}",
         "--mode=teachers", "--tasks=SST-2", "--max_train_examples=1000", "--max_eval_examples=300",
         "--max_seq_length=64", "--teacher_batch_size=16", "--teacher_epochs=2", "--teacher_learning_rate=1e-4"],
        capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    with open(os.path.join(tmp_path, "teachers", "SST-2", "dev_results.json")) as f:
        accuracy = json.load(f)["tasks"]["SST-2"]["accuracy"]
    # 300 dev sentences, about half positive: a model that learnt nothing sits near 0.5.
    assert accuracy > 0.75
