"""bam_tf.benchmark: the FLOP model by hand, and a --smoke run of tools/benchmark.py end to end on real GLUE data."""

import os
import re
import subprocess
import sys

import pytest

from bam_tf.benchmark import data, flops

from support import GLUE_DIR, ROOT
from support import needs_glue as _needs_glue

SCRIPT = os.path.join(ROOT, "tools", "benchmark.py")
needs_glue = _needs_glue(("CoLA", "MRPC"))


def test_encoder_forward_flops_by_hand():
    # s=4 tokens, h=8, i=16, 2 layers. Per layer:
    #   Q/K/V/O projections 4 × 2·s·h·h = 4 × 2·4·8·8  = 2048
    #   feed-forward        2 × 2·s·h·i = 2 × 2·4·8·16 = 2048
    #   attention           2 × 2·s²·h  = 2 × 2·16·8   =  512
    #   = 4608 per layer, × 2 layers = 9216
    assert flops.encoder_forward_flops(4, 8, 16, 2) == 9216
    # s=2: 4·2·2·8·8 = 1024; 2·2·2·8·16 = 1024; 2·2·4·8 = 128 → 2176 per layer, 4352 for 2 layers.
    assert flops.encoder_forward_flops(2, 8, 16, 2) == 4352


def test_batches_flops_sums_padded_shapes_and_triples_for_training():
    shapes = [(3, 4), (2, 2)]  # 3 examples padded to 4 tokens, 2 padded to 2
    # forward: 3·9216 + 2·4352 = 27648 + 8704 = 36352; training: 3 × 36352 = 109056
    assert flops.batches_flops(shapes, hidden=8, intermediate=16, num_layers=2, training=False) == 36352
    assert flops.batches_flops(shapes, hidden=8, intermediate=16, num_layers=2, training=True) == 109056


def test_inference_batch_shapes_follow_length_sorted_batches():
    import numpy as np

    shapes, real = data.inference_batch_shapes(np.array([5, 3, 9, 4, 7]), batch_size=2)
    assert shapes == [(2, 4), (2, 7), (1, 9)]  # sorted 3 4 | 5 7 | 9
    assert real == 28


def _smoke_run(tmp_path, *flags):
    output = tmp_path / "results" / "benchmark.md"
    result = subprocess.run([sys.executable, SCRIPT, "--smoke", f"--output={output}", *flags], capture_output=True,
                            text=True, timeout=600, env={**os.environ, "GLUE_DIR": GLUE_DIR}, cwd=ROOT)
    assert result.returncode == 0, f"exit {result.returncode}\n{result.stdout[-3000:]}\n{result.stderr[-5000:]}"
    assert not [p for p in os.listdir(output.parent) if p.endswith(".tmp")]
    return output.read_text(encoding="utf-8")


def _check_rows(text, variants, ratios):
    for key in variants:
        row = re.search(rf"^\| {re.escape(key)} [^|]+\|(.*)$", text, re.MULTILINE)
        assert row, f"no table row for variant {key}"
        cells = [c.strip() for c in row.group(1).split("|") if c.strip()]
        assert len(cells) == 8, (key, cells)
        steps, examples, ex_per_s, real_tok_s, padded_tok_s, mean_len, seconds, gflops = map(float, cells)
        assert min(steps, examples, ex_per_s, real_tok_s, seconds) > 0 and padded_tok_s >= real_tok_s, (key, cells)
        assert 3 <= mean_len <= 128 and gflops >= 0, (key, cells)
    for ratio in ratios:
        match = re.search(rf"^\| {re.escape(ratio)} \| ([0-9.]+) \| ([0-9.]+) \|", text, re.MULTILINE)
        assert match and float(match.group(1)) > 0, f"no numeric {ratio} ratio"


_VARIANTS = ("(1)", "(2)", "(3)", "(4)", "(5a)", "(5b)", "(6)")
_RATIOS = ("(1)/(2)", "(1)/(3)", "(4)/(1)", "(5b)/(5a)", "(5b)/(6)")
_XLA_VARIANTS, _XLA_RATIOS = ("(5c)", "(6c)"), ("(5c)/(5b)", "(6c)/(6)")


@needs_glue
def test_smoke_run_writes_every_section(tmp_path):
    """Without the XLA variants, whose compiles take most of a smoke run (the slow test below has them)."""
    text = _smoke_run(tmp_path, "--no_xla_variant", "--rounds=1")
    _check_rows(text, _VARIANTS, _RATIOS)
    for key in _XLA_VARIANTS + _XLA_RATIOS:
        assert not re.search(rf"^\| {re.escape(key)} ", text, re.MULTILINE), key
    assert re.search(r"^\| \(5b\)/\(6\) \| [0-9.]+ \| [0-9.]+ \| ≥ 0.85 \(real tok/s\) \| (met|NOT met) \|", text, re.MULTILINE)
    # the smoke student's batches of 32 are cut into length groups of 16; the teachers' bucketed ones are not
    assert re.search(r"^- \(5b\): length groups on: padded tokens per real token", text, re.MULTILINE)
    assert re.search(r"^- \(5a\): .*one group per batch", text, re.MULTILINE)
    assert re.search(r"^- bf16 matmul peak: [0-9.]+ GFLOP/s", text, re.MULTILINE)
    assert re.search(r"^- float32 matmul peak: [0-9.]+ GFLOP/s", text, re.MULTILINE)
    assert re.search(r"achieved training FLOP/s of \(1\): [0-9.]+ GFLOP/s = [0-9.]+% of the measured bf16 peak", text)
    assert re.search(r"^\| command \| `\S*python\S* \S*benchmark.py --smoke --output=\S+ --no_xla_variant --rounds=1`",
                     text, re.MULTILINE)
    for field in ("date", "CPU", "cores", "TensorFlow / Keras / keras-hub", "precision", "batch size", "steps"):
        assert re.search(rf"^\| {re.escape(field)} \| \S", text, re.MULTILINE), field
    assert re.search(r"^\| steps \| .*over 1 rounds", text, re.MULTILINE)


@pytest.mark.slow
@needs_glue
def test_smoke_run_with_the_xla_variants(tmp_path):
    text = _smoke_run(tmp_path)
    _check_rows(text, _VARIANTS + _XLA_VARIANTS, _RATIOS + _XLA_RATIOS)


def test_paths_under_a_tilde_no_shell_expanded_are_at_home(tmp_path, monkeypatch):
    from bam_tf.benchmark.settings import BenchmarkSettings

    monkeypatch.setenv("HOME", str(tmp_path))
    settings = BenchmarkSettings.resolved(glue_dir="~/glue", output="~/b.md")
    assert (settings.glue_dir, settings.output) == (str(tmp_path / "glue"), str(tmp_path / "b.md"))
