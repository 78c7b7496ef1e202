"""Precision choice, loss scaling for float16, and which worker writes (bam_tf.distribution)."""

import json
import os

import keras
import keras_hub
import numpy as np
import pytest
import tensorflow as tf

from bam_tf import distribution
from bam_tf.config import BamConfig
from bam_tf.task_set import glue_task
from bam_tf.input_pipeline import TaskExamples
from bam_tf.model import DistillationSettings, MultiTaskBert
from bam_tf.optimizer import create_optimizer
from bam_tf.pipeline import BamPipeline
from bam_tf.task_sampler import example_stream
from bam_tf.text_encoding import EncodedExamples
from bam_tf.trained_model import build_model
from bam_tf.trainer import TrainingOptions, train
from bam_tf.user_errors import InputError


def _fake_cpu(monkeypatch, tmp_path, cpuinfo_text):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text(cpuinfo_text)
    real_open = open
    monkeypatch.setattr("builtins.open", lambda path, *a, **k: real_open(cpuinfo if path == "/proc/cpuinfo" else path, *a, **k))
    monkeypatch.setattr(tf.config, "list_physical_devices", lambda kind=None: [])
    for name in ("ONEDNN_MAX_CPU_ISA", "DNNL_MAX_CPU_ISA", "TF_ENABLE_ONEDNN_OPTS"):
        monkeypatch.delenv(name, raising=False)
    return cpuinfo


@pytest.mark.parametrize("cpu_flags, expected, why", [
    ("fpu sse avx512f amx_bf16 amx_tile", "mixed_bfloat16", "bfloat16 in hardware (amx_bf16)"),
    ("fpu avx512f avx512_bf16", "mixed_bfloat16", "bfloat16 in hardware (avx512_bf16)"),
    ("fpu sse avx2", "float32", "without amx_bf16/avx512_bf16, where bfloat16 would be emulated"),
    ("fpu sse avx2 xamx_bf16y", "float32", "without amx_bf16"),  # whole flags only
])
def test_auto_precision_follows_the_cpu(monkeypatch, tmp_path, cpu_flags, expected, why):
    _fake_cpu(monkeypatch, tmp_path, f"processor : 0\nflags : {cpu_flags}\n")
    assert distribution.resolve_precision("auto", tf.distribute.get_strategy()) == expected
    assert distribution.resolve_precision("float32", tf.distribute.get_strategy()) == "float32"
    chosen, reason = distribution.choose_precision("auto", tf.distribute.get_strategy())
    assert chosen == expected and reason.startswith("auto: CPU without GPU") and why in reason
    assert distribution.choose_precision("mixed_float16", None) == ("mixed_float16", "--precision=mixed_float16")


# A bfloat16 matmul under a cap below AVX512_CORE aborts TensorFlow (measured); at AVX512_CORE it is emulated.
@pytest.mark.parametrize("env, expected, usable", [
    ({"ONEDNN_MAX_CPU_ISA": "AVX2"}, "float32", []),
    ({"ONEDNN_MAX_CPU_ISA": "avx2_vnni"}, "float32", []),                  # oneDNN reads it case-insensitively
    ({"DNNL_MAX_CPU_ISA": "SSE41"}, "float32", []),                        # the older name
    ({"ONEDNN_MAX_CPU_ISA": "AVX512_CORE_VNNI"}, "float32", []),           # emulated bf16
    ({"ONEDNN_MAX_CPU_ISA": "AVX512_CORE_BF16"}, "mixed_bfloat16", ["avx512_bf16"]),  # no AMX
    ({"ONEDNN_MAX_CPU_ISA": "AVX512_CORE_AMX"}, "mixed_bfloat16", ["amx_bf16", "avx512_bf16"]),
    ({"ONEDNN_MAX_CPU_ISA": "ALL"}, "mixed_bfloat16", ["amx_bf16", "avx512_bf16"]),
    ({"ONEDNN_MAX_CPU_ISA": "NOT_AN_ISA"}, "mixed_bfloat16", ["amx_bf16", "avx512_bf16"]),  # ignored, as oneDNN does
    ({"ONEDNN_MAX_CPU_ISA": "ALL", "DNNL_MAX_CPU_ISA": "AVX2"}, "mixed_bfloat16", ["amx_bf16", "avx512_bf16"]),
])
def test_auto_precision_follows_onednn_isa_cap(monkeypatch, tmp_path, env, expected, usable):
    _fake_cpu(monkeypatch, tmp_path, "processor : 0\nflags : fpu avx2 avx512f avx512_bf16 amx_bf16 amx_tile\n")
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert distribution.usable_bf16_flags() == usable
    chosen, reason = distribution.choose_precision("auto", tf.distribute.get_strategy())
    assert chosen == expected
    if expected == "float32":
        cap = (env.get("ONEDNN_MAX_CPU_ISA") or env["DNNL_MAX_CPU_ISA"]).upper()
        assert f"above ONEDNN_MAX_CPU_ISA={cap}" in reason and "amx_bf16, avx512_bf16" in reason
    else:
        assert reason.endswith(f"bfloat16 in hardware ({', '.join(usable)})")


@pytest.mark.parametrize("setting, expected", [("0", "float32"), ("false", "float32"), ("1", "mixed_bfloat16")])
def test_auto_precision_without_onednn_is_float32(monkeypatch, tmp_path, setting, expected):
    _fake_cpu(monkeypatch, tmp_path, "processor : 0\nflags : fpu avx512f avx512_bf16 amx_bf16\n")
    monkeypatch.setenv("TF_ENABLE_ONEDNN_OPTS", setting)
    chosen, reason = distribution.choose_precision("auto", tf.distribute.get_strategy())
    assert chosen == expected
    assert ("TF_ENABLE_ONEDNN_OPTS=0 leaves its bfloat16 instructions (amx_bf16, avx512_bf16) unused" in reason) == (
        expected == "float32")


def test_explicit_bfloat16_is_refused_on_cpu_where_onednn_would_abort(monkeypatch, tmp_path):
    _fake_cpu(monkeypatch, tmp_path, "processor : 0\nflags : fpu avx2 avx512f avx512_bf16\n")
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "AVX2")
    with pytest.raises(InputError, match=r"--precision=mixed_bfloat16 on CPU under ONEDNN_MAX_CPU_ISA=AVX2: .*"
                                         r"--precision=float32"):
        distribution.choose_precision("mixed_bfloat16", tf.distribute.get_strategy())
    # float32 runs there, and emulated bfloat16 (slow, but it runs) is the user's explicit choice.
    assert distribution.choose_precision("float32", tf.distribute.get_strategy())[0] == "float32"
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "AVX512_CORE")
    assert distribution.choose_precision("mixed_bfloat16", tf.distribute.get_strategy())[0] == "mixed_bfloat16"
    # Without oneDNN, TensorFlow's Eigen kernels run bfloat16 under any cap (measured).
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "AVX2")
    monkeypatch.setenv("TF_ENABLE_ONEDNN_OPTS", "0")
    assert distribution.choose_precision("mixed_bfloat16", tf.distribute.get_strategy())[0] == "mixed_bfloat16"
    monkeypatch.delenv("TF_ENABLE_ONEDNN_OPTS")
    # On a CPU without AVX-512 TensorFlow keeps bfloat16 matmuls away from oneDNN: the cap changes nothing.
    _fake_cpu(monkeypatch, tmp_path, "processor : 0\nflags : fpu avx2\n")
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "AVX2")
    assert distribution.choose_precision("mixed_bfloat16", tf.distribute.get_strategy())[0] == "mixed_bfloat16"
    # A GPU computes the matmuls itself: the CPU's cap does not matter.
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "AVX2")
    monkeypatch.setattr(tf.config, "list_physical_devices", lambda kind=None: ["GPU:0"] if kind == "GPU" else [])
    assert distribution.choose_precision("mixed_bfloat16", tf.distribute.get_strategy())[0] == "mixed_bfloat16"


def test_the_device_is_described_by_cpu_model_and_bf16_flags(monkeypatch, tmp_path):
    cpuinfo = _fake_cpu(monkeypatch, tmp_path, "processor : 0\nmodel name\t: AMD EPYC 9R14\nflags : fpu avx512f avx512_bf16\n")
    monkeypatch.setattr("os.cpu_count", lambda: 2)
    assert distribution.device_description(tf.distribute.get_strategy()) == (
        "CPU AMD EPYC 9R14, 2 cores, bfloat16 in hardware: avx512_bf16")
    cpuinfo.write_text("processor : 0\nflags : fpu avx2\n")
    assert distribution.device_description(tf.distribute.get_strategy()) == (
        "CPU (model unknown), 2 cores, bfloat16 in hardware: none")
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "avx2")
    assert distribution.device_description(tf.distribute.get_strategy()) == (
        "CPU (model unknown), 2 cores, bfloat16 in hardware: none, oneDNN capped at AVX2")


@pytest.mark.parametrize("tf_config, writes_to", [
    (None, "run"),
    ({"cluster": {"worker": ["a:1", "b:1"]}, "task": {"type": "worker", "index": 0}}, "run"),
    ({"cluster": {"worker": ["a:1", "b:1"]}, "task": {"type": "worker", "index": 1}}, "run/workers/1"),
    ({"cluster": {"chief": ["c:1"], "worker": ["a:1"]}, "task": {"type": "worker", "index": 0}}, "run/workers/0"),
    ({"cluster": {"chief": ["c:1"], "worker": ["a:1"]}, "task": {"type": "chief", "index": 0}}, "run"),
])
def test_only_the_chief_writes(monkeypatch, tmp_path, tf_config, writes_to):
    """The chief writes the run's files into --model_dir; any other worker only into <model_dir>/workers/<index>."""
    if tf_config is None:
        monkeypatch.delenv("TF_CONFIG", raising=False)
    else:
        monkeypatch.setenv("TF_CONFIG", json.dumps(tf_config))
    chief = writes_to == "run"
    assert distribution.is_chief() is chief
    rte = tmp_path / "glue" / "RTE"
    rte.mkdir(parents=True)
    (rte / "dev.tsv").write_text("index\tsentence1\tsentence2\tlabel\n0\tA man sleeps.\tSomeone sleeps.\tentailment\n")
    model_dir = tmp_path / "run"
    config = BamConfig(mode="evaluate", model_dir=str(model_dir), glue_dir=str(tmp_path / "glue"), tasks="RTE",
                       backbone="random:layers=1,hidden=16,heads=2,intermediate=32", max_seq_length=16,
                       precision="float32")
    # The default strategy instead of MultiWorkerMirroredStrategy: which folder a worker writes to is
    # decided by TF_CONFIG alone, and nothing here trains. --mode=evaluate writes config.json and
    # flags.txt, then stops for want of a trained student (and, having written nothing else, removes them).
    def files():
        return sorted(str(p.relative_to(tmp_path)) for p in model_dir.rglob("*") if p.is_file())

    written = []
    evaluate = BamPipeline.evaluate
    monkeypatch.setattr(BamPipeline, "evaluate", lambda self, **kw: (written.extend(files()), evaluate(self, **kw)))
    pipeline = BamPipeline(config, strategy=tf.distribute.get_strategy(), verbose=False)
    assert pipeline.model_dir == str(tmp_path / writes_to)
    try:
        with pytest.raises(FileNotFoundError, match="no trained student"):
            pipeline.run()
    finally:
        keras.mixed_precision.set_global_policy("float32")
    assert written == [f"{writes_to}/{name}" for name in (".lock", "config.json", "flags.txt")]
    assert files() == []


def test_mixed_float16_trains_with_loss_scaling_and_float32_head_outputs():
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        keras.utils.set_random_seed(0)
        backbone = keras_hub.models.BertBackbone(vocabulary_size=50, num_layers=1, num_heads=2, hidden_dim=16,
                                                 intermediate_dim=32, max_sequence_length=16)
        model = MultiTaskBert(backbone, [glue_task("RTE")], DistillationSettings(total_steps=4))
        build_model(model)
        optimizer = distribution.wrap_for_precision(
            create_optimizer(peak_learning_rate=1e-3, total_steps=4, num_layers=1), "mixed_float16")
        assert isinstance(optimizer, keras.optimizers.LossScaleOptimizer)
        model.compile(optimizer=optimizer)
        lengths = np.full(16, 6, np.int32)
        tokens = np.tile(np.array([1, 7, 8, 9, 10, 2], np.int32), 16)
        examples = [TaskExamples(EncodedExamples(tokens, np.zeros_like(tokens), lengths),
                                 np.arange(16) % 2 * 1.0, 2, np.zeros((16, 2), np.float32))]
        summary = train(model, examples, example_stream([16], 0.75, 4, 4, "mixed", 0), tf.distribute.get_strategy(),
                        TrainingOptions(verbose=False))
        assert model.backbone.compute_dtype == "float16"
        # the summed loss times the initial scale (2^15) may overflow float16 and skip early updates;
        # the batch counter (λ, learning rate, resume) still counts all four batches
        assert int(model.batches_done.numpy()) == 4 and 1 <= int(model.optimizer.iterations.numpy()) <= 4
        assert summary.final_gold_weight == pytest.approx(3 / 4)
        assert np.isfinite(summary.last_losses["RTE"])
        assert model({"token_ids": tokens[None, :6], "segment_ids": np.zeros((1, 6), np.int32),
                      "padding_mask": np.ones((1, 6), bool)})["RTE"].dtype == "float32"
    finally:
        keras.mixed_precision.set_global_policy("float32")
