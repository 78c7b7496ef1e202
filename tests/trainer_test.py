"""The training loop: TensorBoard summaries, exact resume, best checkpoints, NaN stop, corrupted checkpoints."""

import dataclasses
import glob
import json
import os

import keras
import keras_hub
import numpy as np
import pytest
import tensorflow as tf
from tensorboard.backend.event_processing import event_accumulator

from bam_tf.task_set import glue_task
from bam_tf.input_pipeline import TaskExamples
from bam_tf.model import DistillationSettings, MultiTaskBert
from bam_tf.optimizer import create_optimizer
from bam_tf.lr_schedule import learning_rate_at, warmup_steps_for
from bam_tf.task_sampler import example_stream
from bam_tf.text_encoding import EncodedExamples
from bam_tf.distribution import wrap_for_precision
from bam_tf.trained_model import build_model
from bam_tf.trainer import CheckpointError, TrainingDivergedError, TrainingOptions, train

RTE, STSB = glue_task("RTE"), glue_task("STS-B")
BATCH, STEPS = 8, 10


def _encoded(num_examples, seed):
    rng = np.random.default_rng(seed)
    lengths = rng.integers(3, 12, size=num_examples).astype(np.int32)
    tokens = [np.concatenate([[1], rng.integers(5, 100, n - 2), [2]]).astype(np.int32) for n in lengths]
    flat = np.concatenate(tokens)
    return EncodedExamples(flat, np.zeros_like(flat), lengths)


def _examples(sts_labels=None):
    rng = np.random.default_rng(0)
    rte = TaskExamples(_encoded(24, 1), rng.integers(0, 2, 24).astype(np.float32), 2,
                       rng.normal(size=(24, 2)).astype(np.float32))
    labels = rng.uniform(0, 5, 40).astype(np.float32) if sts_labels is None else sts_labels
    sts = TaskExamples(_encoded(40, 2), labels, 1, rng.uniform(0, 5, (40, 1)).astype(np.float32))
    return [rte, sts]


def _stream(steps=STEPS):
    return example_stream([24, 40], 0.75, BATCH, steps, "mixed", seed=3)


def _model(steps=STEPS, dropout=0.1):
    keras.utils.set_random_seed(0)
    backbone = keras_hub.models.BertBackbone(vocabulary_size=100, num_layers=1, num_heads=2, hidden_dim=16,
                                             intermediate_dim=32, max_sequence_length=32, dropout=dropout)
    model = MultiTaskBert(backbone, [RTE, STSB], DistillationSettings(total_steps=steps), head_dropout=dropout)
    build_model(model)
    model.compile(optimizer=create_optimizer(peak_learning_rate=1e-3, total_steps=steps, num_layers=1))
    return model


def _train(model, examples=None, stream=None, **options):
    options.setdefault("verbose", False)
    return train(model, examples or _examples(), stream or _stream(), tf.distribute.get_strategy(),
                 TrainingOptions(**options))


class _Interrupt(Exception):
    pass


@pytest.mark.parametrize("group_size", [0, 4])
def test_resumed_training_matches_an_uninterrupted_run(tmp_path, group_size):
    straight = _model()
    _train(straight, checkpoint_dir=str(tmp_path / "a"), checkpoint_every=3, group_size=group_size)

    def stop_at_step_6():
        raise _Interrupt  # called at step 6 (eval_every=6), right after the step-6 checkpoint

    with pytest.raises(_Interrupt):
        _train(_model(), checkpoint_dir=str(tmp_path / "b"), checkpoint_every=3, eval_every=6,
               evaluate=stop_at_step_6, group_size=group_size, context={"device": "first"})
    resumed = _model()
    summary = _train(resumed, checkpoint_dir=str(tmp_path / "b"), checkpoint_every=3, group_size=group_size,
                     context={"device": "second"})
    assert summary.resumed_from_step == 6
    assert summary.segments == [{"from_step": 1, "device": "first"}, {"from_step": 7, "device": "second"}]
    assert summary.length_group_size == group_size, summary.length_groups  # 3–11 tokens: 2 groups pay
    assert summary.step_traces == 1  # batches of every length and their groups: one trace per stage
    assert summary.examples_per_task == dict(zip(["RTE", "STS-B"], _stream().examples_per_task(2).tolist()))
    assert summary.final_gold_weight == pytest.approx((STEPS - 1) / STEPS)  # λ of the last batch
    assert int(resumed.optimizer.iterations.numpy()) == int(resumed.batches_done.numpy()) == STEPS
    for a, b in zip(straight.weights, resumed.weights):
        np.testing.assert_allclose(a.numpy(), b.numpy(), atol=1e-6, err_msg=a.path)


def test_tensorboard_has_losses_lambda_learning_rate_draws_dev_scores_and_flags(tmp_path):
    fake_scores = {"RTE": {"accuracy": 0.625}, "STS-B": {"pearson": 0.5, "spearman": 0.25}}
    summary = _train(_model(), summary_dir=str(tmp_path), log_every=2, evaluate=lambda: fake_scores,
                     run_flags_text="--tasks=RTE,STS-B")
    accumulator = event_accumulator.EventAccumulator(str(tmp_path), size_guidance={"tensors": 0})
    accumulator.Reload()
    tags = accumulator.Tags()["tensors"]
    values = {tag: [(e.step, float(tf.make_ndarray(e.tensor_proto))) for e in accumulator.Tensors(tag)]
              for tag in tags if tag != "run_flags"}
    assert [step for step, _ in values["loss/total"]] == [2, 4, 6, 8, 10]
    assert all(np.isfinite(v) and v > 0 for _, v in values["loss/total"] + values["loss/RTE"] + values["loss/STS-B"])
    # loss/total is the log's loss=: per example over the window, i.e. the tasks' losses weighed by their draws.
    drawn = {task: dict(values[f"examples_drawn/{task}"]) for task in ("RTE", "STS-B")}
    task_loss = {task: dict(values[f"loss/{task}"]) for task in ("RTE", "STS-B")}
    for step, total in values["loss/total"]:
        window = {task: drawn[task][step] - drawn[task].get(step - 2, 0) for task in drawn}
        expected = sum(task_loss[t].get(step, 0) * n for t, n in window.items()) / sum(window.values())
        assert total == pytest.approx(expected, rel=1e-5), step
    assert values["lambda_gold_weight"][0][1] == pytest.approx(1 / 10)  # λ of batch index 1 of 10
    assert values["lambda_gold_weight"][-1][1] == pytest.approx(9 / 10)
    # the rate each logged update applied (the one λ and the loss describe): log step k is update k − 1
    warmup = warmup_steps_for(0.1, STEPS)
    assert values["learning_rate"] == [(k, pytest.approx(float(learning_rate_at(k - 1, 1e-3, warmup, STEPS)), rel=1e-6))
                                       for k in (2, 4, 6, 8, 10)]
    drawn = [v for _, v in values["examples_drawn/RTE"]]
    assert drawn == sorted(drawn) and values["examples_drawn/RTE"][-1][1] + values["examples_drawn/STS-B"][-1][1] == STEPS * BATCH
    assert values["dev/RTE/accuracy"] == [(STEPS, 0.625)]
    assert values["dev/STS-B/score"] == [(STEPS, pytest.approx(0.375))]
    assert values["dev/glue_average"] == [(STEPS, pytest.approx(0.5))]
    flags_text = tf.make_ndarray(accumulator.Tensors("run_flags")[0].tensor_proto).item().decode()
    assert "--tasks=RTE,STS-B" in flags_text
    assert summary.final_dev_scores == fake_scores


def test_best_checkpoint_per_task_follows_the_dev_score(tmp_path):
    scripted = iter([{"RTE": {"accuracy": 0.5}, "STS-B": {"pearson": 0.1, "spearman": 0.1}},
                     {"RTE": {"accuracy": 0.7}, "STS-B": {"pearson": 0.0, "spearman": 0.0}},
                     {"RTE": {"accuracy": 0.6}, "STS-B": {"pearson": 0.3, "spearman": 0.3}}])
    summary = _train(_model(steps=6), stream=_stream(6), checkpoint_dir=str(tmp_path), eval_every=2,
                     evaluate=lambda: next(scripted))
    assert summary.best_steps == {"RTE": 4, "STS-B": 6}
    for task in ("RTE", "STS-B"):
        assert glob.glob(str(tmp_path / "best" / task / "ckpt*.index"))


def test_nan_loss_stops_naming_step_and_task_and_keeps_the_last_good_checkpoint(tmp_path):
    stream = _stream()
    sts_labels = np.random.default_rng(0).uniform(0, 5, 40).astype(np.float32)
    sts_slots = np.flatnonzero(stream.task_ids == 1)
    seen_before = lambda slot: stream.example_indices[slot] in stream.example_indices[sts_slots[sts_slots < slot]]
    poisoned_slot = next(slot for slot in sts_slots if slot >= 2 * BATCH and not seen_before(slot))
    sts_labels[stream.example_indices[poisoned_slot]] = np.nan
    bad_step = poisoned_slot // BATCH  # first step whose batch holds the NaN label (0-based)
    # named 1-based, as the progress lines and TensorBoard count steps
    with pytest.raises(TrainingDivergedError, match=rf"at step {bad_step + 1} \(task: STS-B\)"):
        _train(_model(), examples=_examples(sts_labels), stream=stream, checkpoint_dir=str(tmp_path),
               checkpoint_every=1)
    latest = tf.train.latest_checkpoint(str(tmp_path))
    assert latest.endswith(f"ckpt-{bad_step}")
    reader = tf.train.load_checkpoint(latest)
    assert all(np.isfinite(reader.get_tensor(name)).all() for name, _ in tf.train.list_variables(latest)
               if reader.get_variable_to_dtype_map()[name].is_floating)


def test_a_corrupted_checkpoint_is_a_clear_error(tmp_path):
    _train(_model(steps=4), stream=_stream(4), checkpoint_dir=str(tmp_path), checkpoint_every=2)
    for data_file in glob.glob(str(tmp_path / "ckpt-4.data-*")):
        with open(data_file, "r+b") as f:
            f.truncate(100)
    with pytest.raises(CheckpointError, match=r"ckpt-4: cannot restore this checkpoint.*Delete"):
        _train(_model(steps=4), stream=_stream(4), checkpoint_dir=str(tmp_path))
    assert os.path.exists(tmp_path / "ckpt-2.index")  # older checkpoints are left alone


def test_checkpoints_of_another_example_stream_are_refused(tmp_path):
    """Other data or another step count gives another stream; its checkpoint's step would mean something else."""
    _train(_model(steps=4), stream=_stream(4), checkpoint_dir=str(tmp_path), checkpoint_every=2)
    assert (tmp_path / "example_stream.json").exists()
    with pytest.raises(CheckpointError, match=r"another example stream \(4 steps of 8 then, 6 of 8 now\)"):
        _train(_model(steps=6), stream=_stream(6), checkpoint_dir=str(tmp_path))
    other_order = example_stream([24, 40], 0.75, BATCH, 4, "mixed", seed=4)
    with pytest.raises(CheckpointError, match=r"another example stream \(as many steps, in another order\)"):
        _train(_model(steps=4), stream=other_order, checkpoint_dir=str(tmp_path))
    assert _train(_model(steps=4), stream=_stream(4), checkpoint_dir=str(tmp_path)).resumed_from_step == 4  # same


def test_float16_checkpoints_resumed_in_float32_are_refused_naming_the_precision_that_continues_them(tmp_path):
    """mixed_float16's loss-scale variables shift the optimizer's list: the restore fails, and says why."""
    def stop_at_step_1():
        raise _Interrupt

    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        float16 = _model(steps=2)
        float16.compile(optimizer=wrap_for_precision(float16.optimizer, "mixed_float16"))
        with pytest.raises(_Interrupt):
            _train(float16, stream=_stream(2), checkpoint_dir=str(tmp_path), checkpoint_every=1, eval_every=1,
                   evaluate=stop_at_step_1, context={"precision": "mixed_float16"})
    finally:
        keras.mixed_precision.set_global_policy("float32")
    with pytest.raises(CheckpointError, match=r"ckpt-1: cannot restore this checkpoint \(.*\)\. They were trained "
                       r"in mixed_float16 and this run computes in float32: run with --precision=mixed_float16 to "
                       r"continue them, or delete .* to train this stage from scratch\."):
        _train(_model(steps=2), stream=_stream(2), checkpoint_dir=str(tmp_path), context={"precision": "float32"})


def test_a_stage_stopped_before_its_first_checkpoint_leaves_no_checkpoint_folder(tmp_path):
    """A run dir counts checkpoints/ as trained output (its flags are then fixed): nothing trained, nothing there."""
    def stop_at_step_2():
        raise _Interrupt

    with pytest.raises(_Interrupt):
        _train(_model(), checkpoint_dir=str(tmp_path / "ckpt"), checkpoint_every=3, eval_every=2,
               evaluate=stop_at_step_2)
    assert not (tmp_path / "ckpt").exists()


def test_unreadable_stream_record_is_refused_and_a_fresh_stage_writes_its_own(tmp_path):
    record = tmp_path / "example_stream.json"
    tmp_path.mkdir(exist_ok=True)
    record.write_text('{"steps": 99}')  # left from another run, no checkpoint beside it: a fresh start replaces it
    _train(_model(steps=4), stream=_stream(4), checkpoint_dir=str(tmp_path), checkpoint_every=2)
    assert json.loads(record.read_text())["steps"] == 4
    for damaged in ("", "[1]", '{"steps": 4}'):
        record.write_text(damaged)
        with pytest.raises(CheckpointError, match=r"example_stream.json: unreadable as the record .*delete this"):
            _train(_model(steps=4), stream=_stream(4), checkpoint_dir=str(tmp_path))


def test_jit_compiled_step_matches_the_plain_step():
    # No dropout: XLA draws its random numbers with another algorithm than the CPU kernels.
    plain, compiled = _model(steps=3, dropout=0.0), _model(steps=3, dropout=0.0)
    _train(plain, stream=_stream(3), static_length=16)  # one shape: XLA compiles once
    _train(compiled, stream=_stream(3), static_length=16, jit_compile=True)
    for a, b in zip(plain.weights, compiled.weights):
        np.testing.assert_allclose(a.numpy(), b.numpy(), atol=1e-5, err_msg=a.path)


def test_xla_on_length_groups_matches_the_plain_step():
    """XLA compiles each group shape once (lengths 3–11 rounded up to even lengths: at most 5 shapes)."""
    plain, compiled = _model(steps=3, dropout=0.0), _model(steps=3, dropout=0.0)
    _train(plain, stream=_stream(3), group_size=4)
    summary = _train(compiled, stream=_stream(3), group_size=4, jit_compile=True, length_multiple=2)
    assert summary.length_group_size == 4, summary.length_groups
    for a, b in zip(plain.weights, compiled.weights):
        np.testing.assert_allclose(a.numpy(), b.numpy(), atol=1e-5, err_msg=a.path)


def test_without_a_terminal_progress_is_one_plain_line_every_log_every_steps(capfd):
    """pytest's captured stdout is not a terminal: no redrawn Keras bar, only the periodic log lines."""
    import logging as std_logging

    class Recorder(std_logging.Handler):
        def __init__(self):
            super().__init__(std_logging.INFO)
            self.messages = []

        def emit(self, record):
            self.messages.append(record.getMessage())

    absl_logger, recorder = std_logging.getLogger("absl"), Recorder()
    level = absl_logger.level
    absl_logger.setLevel(std_logging.INFO)  # other tests may have left absl at WARNING
    absl_logger.addHandler(recorder)
    no_teacher = [dataclasses.replace(e, teacher_outputs=None) for e in _examples()]
    try:
        _train(_model(), verbose=True, log_every=5, description="student")
        teacher_summary = _train(_model(), examples=no_teacher, log_every=10, description="teacher")
    finally:
        absl_logger.removeHandler(recorder)
        absl_logger.setLevel(level)
    out, _ = capfd.readouterr()
    assert "━" not in out and "\r" not in out and "\b" not in out
    lines = [message for message in recorder.messages if message.startswith("student step ")]
    assert [line.split()[2] for line in lines] == ["5/10", "10/10"]
    first = lines[0]
    for piece in ("loss=", "λ=0.400", "examples/s", "ETA ", "RTE=", "STS-B="):
        assert piece in first, (piece, first)
    assert lines[-1].split("ETA ")[1].startswith("0 s")
    # Without a teacher λ weighs nothing, so it is not logged.
    [teacher_line] = [message for message in recorder.messages if message.startswith("teacher step ")]
    assert "loss=" in teacher_line and "λ" not in teacher_line, teacher_line
    assert teacher_summary.final_gold_weight is None  # nor recorded in training_summary.json
