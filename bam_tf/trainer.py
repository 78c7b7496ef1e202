"""The training loop: `model.train_step` under the strategy, with checkpoints, exact resume, TensorBoard.

Resume is exact because everything that decides the next step is either restored or recomputed:
weights, optimizer slots, the batch counter (hence λ and the learning rate) and dropout RNG state come
from the checkpoint; the example order is a pure function of the sampler's seed, so the input pipeline is
rebuilt to start at the restored step.
"""

import dataclasses
import hashlib
import os
import shutil
import sys
import time
from collections.abc import Callable

import keras
import numpy as np
import tensorflow as tf
from absl import logging

from bam_tf import atomic_files, metrics, training_segments
from bam_tf.input_pipeline import TaskExamples, training_dataset
from bam_tf.length_groups import choose_group_size
from bam_tf.model import MultiTaskBert
from bam_tf.task_sampler import ExampleStream
from bam_tf.tracing import traced_once_per_owner
from bam_tf.user_errors import InputError


# Under XLA every new padded shape is a new compile (tens of seconds on a CPU): lengths rounded up to
# multiples of 16 give at most max_seq_length / 16 lengths per group size.
XLA_LENGTH_MULTIPLE = 16


# Beside a stage's checkpoints: which example stream they were trained on (see _check_same_stream).
STREAM_FILE = "example_stream.json"

# One distributed step per stage, traced once from its dataset's element spec (trainer_test checks).
traced_once_per_owner("train.<locals>.distributed_step")


class TrainingDivergedError(InputError, RuntimeError):
    pass


class CheckpointError(InputError, RuntimeError):
    pass


@dataclasses.dataclass
class TrainingOptions:
    description: str = "training"
    checkpoint_dir: str | None = None  # None: no checkpoints, no resume
    checkpoint_every: int = 100
    keep_checkpoints: int = 2
    summary_dir: str | None = None  # TensorBoard event files; None: none
    log_every: int = 50
    eval_every: int = 0  # also evaluate (and keep the best checkpoint per task) every N steps; 0: only at the end
    evaluate: Callable[[], dict] | None = None  # → {task: {metric: value}} on dev
    run_flags_text: str = ""
    verbose: bool = True
    jit_compile: bool = False  # XLA-compile each length group's forward and backward pass
    static_length: int | None = None  # pad every batch to this length (TPU) instead of its longest example
    group_size: int = 0  # length groups of about this many examples per replica where they pay (length_groups)
    length_multiple: int = 0  # padded lengths rounded up to a multiple of this; 0: XLA_LENGTH_MULTIPLE with XLA, else 1
    context: dict[str, str] = dataclasses.field(default_factory=dict)  # what this process trains in (precision,
    # device): recorded per segment of a resumed stage (training_segments)


@dataclasses.dataclass
class TrainingSummary:
    steps: int
    resumed_from_step: int
    seconds: float
    examples_per_task: dict[str, int]
    final_gold_weight: float | None  # λ of the last batch; None when no teacher outputs were mixed in
    last_losses: dict[str, float]  # mean per-task loss over the last logging window
    best_steps: dict[str, int]  # step of the best dev score per task (with eval_every)
    final_dev_scores: dict[str, dict[str, float]]
    length_group_size: int = 0  # examples per length group a replica's slice was cut into; 0: whole batches
    length_groups: str = ""  # why (length_groups.choose_group_size)
    step_traces: int = 0  # how often the training step was traced: 1, whatever the batch lengths
    segments: list[dict] = dataclasses.field(default_factory=list)  # each process's first step and context


def train(model: MultiTaskBert, examples: list[TaskExamples], stream: ExampleStream,
          strategy: tf.distribute.Strategy, options: TrainingOptions) -> TrainingSummary:
    """Run the stream's steps (continuing from the latest checkpoint); raise on a non-finite loss."""
    task_names = [task.name for task in model.tasks]
    num_steps = stream.num_steps
    with strategy.scope():
        model.optimizer.build(model.trainable_variables)  # slots must exist before a restore fills them
    checkpoint = _checkpoint_of_every_variable(model)
    manager = None
    if options.checkpoint_dir:
        manager = tf.train.CheckpointManager(checkpoint, options.checkpoint_dir, options.keep_checkpoints)
        _restore_latest(checkpoint, manager, options.context)
    start_step = int(model.batches_done.numpy())  # batches, not applied updates (see MultiTaskBert)
    if start_step and options.checkpoint_dir:
        _check_same_stream(options.checkpoint_dir, stream)
    segments = training_segments.segments_so_far(options.checkpoint_dir, start_step, num_steps,
                                                 options.context, options.description)
    # Each process records the stream (the same on a resume: checked above) and its segment just before its
    # first checkpoint, so that no checkpoint ever lies here without them.
    recorded = False
    # λ weighs gold against teacher targets: without any teacher (teachers, `multi`) it changes nothing,
    # so it is neither shown nor logged there.
    distilling = any(e.teacher_outputs is not None for e in examples)
    if start_step:
        logging.info("%s: resuming at step %d of %d from %s", options.description, start_step, num_steps,
                     manager.latest_checkpoint)
    best = _BestCheckpoints(checkpoint, options.checkpoint_dir, task_names) if options.eval_every else None

    num_replicas = strategy.num_replicas_in_sync
    if stream.batch_size % num_replicas:
        raise InputError(f"{options.description}: batch size {stream.batch_size} does not split evenly over "
                         f"{num_replicas} replicas")

    group_size, length_multiple, why = length_plan(examples, stream, num_replicas, options)
    logging.info("%s: %s", options.description, why)

    def dataset_for_pipeline(context: tf.distribute.InputContext) -> tf.data.Dataset:
        # Replica r of every step gets rows [r·b, (r+1)·b) of that step's global batch: the same global
        # batch as on one device, however the replicas are spread over hosts.
        local = num_replicas // context.num_input_pipelines
        first = context.input_pipeline_id * local
        return training_dataset(examples, stream, start_step, options.static_length, num_replicas,
                                slice(first, first + local), group_size, length_multiple)

    iterator = iter(strategy.distribute_datasets_from_function(dataset_for_pipeline))

    # XLA compiles each length group's forward and backward pass, one program per group shape; the
    # iterator's next() (no XLA kernel) and the optimizer's cross-replica update stay outside it.
    model.xla_group_steps = options.jit_compile

    @tf.function
    def distributed_step(iterator):
        per_replica = strategy.run(model.train_step, args=(next(iterator),))
        return {key: strategy.reduce(tf.distribute.ReduceOp.SUM, value, axis=None)
                for key, value in per_replica.items()}

    writer = tf.summary.create_file_writer(options.summary_dir) if options.summary_dir else None
    if writer and options.run_flags_text:
        with writer.as_default():
            tf.summary.text("run_flags", "```\n" + options.run_flags_text + "\n```", step=start_step)
    # A terminal gets Keras' live bar; a file or CI log gets only the plain line every log_every steps
    # below (a redrawn bar is one ~30 KB "line" per stage there).
    progress = keras.utils.Progbar(num_steps, stateful_metrics=["loss", "λ"] if distilling else ["loss"],
                                   verbose=1 if options.verbose and _is_terminal(sys.stdout) else 0)
    progress.update(start_step)
    window_sums = np.zeros(len(task_names))
    window_counts = np.zeros(len(task_names))
    drawn = stream.examples_per_task(len(task_names), up_to_step=start_step).astype(np.float64)
    last_losses = {}
    started = time.time()
    for step in range(start_step, num_steps):
        done = step + 1  # steps count from 1 in the log, TensorBoard and checkpoints
        logs_now = done % options.log_every == 0 or done == num_steps
        # Read before the update: the rate it applies, next to its loss and λ (the schedule follows the step counter)
        learning_rate = float(keras.ops.convert_to_numpy(model.optimizer.learning_rate)) if writer and logs_now else None
        stats = {key: value.numpy() for key, value in distributed_step(iterator).items()}
        if not np.isfinite(stats["loss"]):
            bad = [name for name, value in zip(task_names, stats["task_loss_sums"]) if not np.isfinite(value)]
            kept = f"; last good checkpoint: {manager.latest_checkpoint}" if manager and manager.latest_checkpoint else ""
            raise TrainingDivergedError(f"{options.description}: loss became {stats['loss']} at step {done} "
                                        f"(task: {', '.join(bad) or 'unknown'}){kept}")
        window_sums += stats["task_loss_sums"]
        window_counts += stats["task_counts"]
        drawn += stats["task_counts"]
        gold_weight = float(model.gold_weight.numpy()) if distilling else None
        progress.update(done, [("loss", float(stats["loss"]))] + ([("λ", gold_weight)] if distilling else []))
        if logs_now:
            last_losses = {n: float(s / c) for n, s, c in zip(task_names, window_sums, window_counts) if c}
            window_loss = float(window_sums.sum() / max(window_counts.sum(), 1))  # per example, as the tasks'
            elapsed = time.time() - started
            rate = (done - start_step) * stream.batch_size / max(elapsed, 1e-9)
            logging.info("%s step %d/%d loss=%.4f%s %.1f examples/s ETA %s | %s", options.description, done,
                         num_steps, window_loss,
                         f" λ={gold_weight:.3f}" if distilling else "", rate,
                         _duration((num_steps - done) * stream.batch_size / max(rate, 1e-9)),
                         " ".join(f"{name}={loss:.4f}" for name, loss in last_losses.items()))
            if writer:
                _write_training_summaries(writer, done, window_loss, last_losses, gold_weight, learning_rate,
                                          dict(zip(task_names, drawn)))
            window_sums[:] = 0
            window_counts[:] = 0
        if manager and (done % options.checkpoint_every == 0 or done == num_steps):
            if not recorded:
                atomic_files.write_json(os.path.join(options.checkpoint_dir, STREAM_FILE), _stream_identity(stream))
                training_segments.record(options.checkpoint_dir, segments)
                recorded = True
            manager.save(checkpoint_number=done)
        if best and done % options.eval_every == 0 and done < num_steps:
            _evaluate(options, writer, best, done)
    final_scores = _evaluate(options, writer, best, num_steps) if options.evaluate else {}
    if writer:
        writer.flush()
    return TrainingSummary(steps=num_steps, resumed_from_step=start_step, seconds=time.time() - started,
                           examples_per_task={n: int(c) for n, c in zip(task_names, drawn)},
                           final_gold_weight=float(model.gold_weight.numpy()) if distilling else None,
                           last_losses=last_losses,
                           best_steps=best.steps() if best else {}, final_dev_scores=final_scores,
                           length_group_size=group_size, length_groups=why,
                           step_traces=distributed_step.experimental_get_tracing_count(), segments=segments)


def _stream_identity(stream: ExampleStream) -> dict:
    digest = hashlib.sha256(stream.task_ids.tobytes())
    digest.update(stream.example_indices.tobytes())
    return {"steps": stream.num_steps, "batch_size": stream.batch_size, "sha256": digest.hexdigest()}


def _check_same_stream(checkpoint_dir: str, stream: ExampleStream) -> None:
    """A resumed stage must continue the stream its checkpoints were trained on: the step counter, λ and the
    learning rate are positions in that stream. Other training data, or a bam_tf that counts steps otherwise,
    gives another one; continuing it would silently train a mix of the two. (Checkpoints from before this
    record carry no STREAM_FILE and resume unchecked.)"""
    path = os.path.join(checkpoint_dir, STREAM_FILE)
    if not os.path.exists(path):
        return
    current = _stream_identity(stream)
    try:
        recorded = atomic_files.read_json(path)
    except (OSError, ValueError) as error:
        recorded = error
    if not isinstance(recorded, dict) or not current.keys() <= recorded.keys():
        raise CheckpointError(f"{path}: unreadable as the record of the example stream that the checkpoints beside "
                              f"it were trained on ({str(recorded)[:200]}); delete this folder to train the stage "
                              "from the start.")
    if recorded != current:
        what = (f"{recorded['steps']} steps of {recorded['batch_size']} then, {current['steps']} of "
                f"{current['batch_size']} now" if (recorded["steps"], recorded["batch_size"]) !=
                (current["steps"], current["batch_size"]) else "as many steps, in another order")
        raise CheckpointError(f"{checkpoint_dir}: these checkpoints were trained on another example stream ({what}): "
                              "the training data or the way bam_tf counts steps changed since they were written. "
                              "Continue with what wrote them, or delete this folder to train the stage from the "
                              "start.")


def length_plan(examples: list[TaskExamples], stream: ExampleStream, num_replicas: int,
                options: TrainingOptions) -> tuple[int, int, str]:
    """(length group size, length multiple, why) a stage trains with: decided from its whole stream, so a
    resumed stage decides the same."""
    length_multiple = options.length_multiple or (XLA_LENGTH_MULTIPLE if options.jit_compile else 1)
    if options.static_length is not None:
        return 0, length_multiple, f"every batch padded to {options.static_length}, in one group"
    slot_lengths = stream.slot_values([e.encoded.lengths for e in examples])
    group_size, why = choose_group_size(slot_lengths.reshape(-1, stream.batch_size // num_replicas),
                                        options.group_size, length_multiple,
                                        cap=max((int(e.encoded.lengths.max()) for e in examples if len(e.encoded)),
                                                default=1))
    return group_size, length_multiple, why


def _is_terminal(stream) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # replaced or closed streams
        return False


def _duration(seconds: float) -> str:
    """12 s, 4 min 05 s, 1 h 02 min."""
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"


def _evaluate(options: TrainingOptions, writer, best: "_BestCheckpoints | None", step: int) -> dict:
    scores = options.evaluate()
    logging.info("%s dev at step %d: %s", options.description, step,
                 " ".join(f"{task}={metrics.task_score(m):.4f}" for task, m in scores.items()))
    if best:
        best.update(step, scores)
    if writer:
        _write_dev_summaries(writer, step, scores)
    return scores


def _checkpoint_of_every_variable(model: MultiTaskBert) -> tf.train.Checkpoint:
    """A checkpoint listing every variable by its position in the model's and optimizer's variable lists.

    tf.train.Checkpoint(model=…, optimizer=…) misses Keras 3 state that exact resume needs (Adam's
    moments, dropout seed-generator states). Keras paths are no stable key either: auto-numbered names
    (seed_generator_7, bert_adam_w_2) depend on what else the process created. The list order is fixed
    by the architecture, and a restore checks every shape.
    """
    named = {}
    for prefix, variables in (("model", model.variables), ("optimizer", model.optimizer.variables)):
        for index, variable in enumerate(variables):
            named[f"{prefix}_{index:05d}"] = variable.value if isinstance(variable, keras.Variable) else variable
    return tf.train.Checkpoint(**named)


def _restore_latest(checkpoint: tf.train.Checkpoint, manager: tf.train.CheckpointManager,
                    context: dict[str, str]) -> None:
    latest = manager.latest_checkpoint
    if not latest:
        return
    try:
        checkpoint.restore(latest).assert_existing_objects_matched()
    except Exception as error:  # a damaged file surfaces as OpError, ValueError, IndexError, …
        folder = os.path.dirname(latest)
        hint = training_segments.restore_hint(folder, context)
        advice = (f"{hint[0].upper()}{hint[1:]}, or delete" if hint else "Delete")
        raise CheckpointError(f"{latest}: cannot restore this checkpoint ({type(error).__name__}: "
                              f"{str(error).splitlines()[0][:300]}). {advice} {folder} to train this stage "
                              "from scratch.") from error


class _BestCheckpoints:
    """Per task, the checkpoint with the best dev score so far (GLUE task score), kept across resumes."""

    def __init__(self, checkpoint: tf.train.Checkpoint, checkpoint_dir: str | None, task_names: list[str]):
        self.checkpoint = checkpoint
        self.directory = os.path.join(checkpoint_dir, "best") if checkpoint_dir else None
        self.record_path = os.path.join(self.directory, "best.json") if self.directory else None
        self.record = {}
        if self.record_path and os.path.exists(self.record_path):
            self.record = atomic_files.read_json(self.record_path)

    def update(self, step: int, scores: dict[str, dict[str, float]]) -> None:
        for task, task_metrics in scores.items():
            score = metrics.task_score(task_metrics)
            if task in self.record and self.record[task]["score"] >= score:
                continue
            self.record[task] = {"step": step, "score": score, "metrics": task_metrics}
            if self.directory:
                target = os.path.join(self.directory, task)
                tmp = target + ".tmp"
                shutil.rmtree(tmp, ignore_errors=True)
                self.checkpoint.write(os.path.join(tmp, "ckpt"))
                atomic_files.replace_directory(tmp, target)
        if self.record_path:
            atomic_files.write_json(self.record_path, self.record)

    def steps(self) -> dict[str, int]:
        return {task: entry["step"] for task, entry in self.record.items()}


def _write_training_summaries(writer, step, loss, task_losses, gold_weight, learning_rate, drawn):
    with writer.as_default(step=step):
        tf.summary.scalar("loss/total", loss)
        for task, value in task_losses.items():
            tf.summary.scalar(f"loss/{task}", value)
        if gold_weight is not None:
            tf.summary.scalar("lambda_gold_weight", gold_weight)
        tf.summary.scalar("learning_rate", learning_rate)
        for task, count in drawn.items():
            tf.summary.scalar(f"examples_drawn/{task}", count)


def _write_dev_summaries(writer, step, scores):
    with writer.as_default(step=step):
        for task, task_metrics in scores.items():
            for name, value in task_metrics.items():
                tf.summary.scalar(f"dev/{task}/{name}", value)
            tf.summary.scalar(f"dev/{task}/score", metrics.task_score(task_metrics))
        try:  # the names are the model's own tasks': any that is not GLUE's is a user task
            user_tasks = [task for task in scores if task not in metrics.GLUE_TASKS]
            tf.summary.scalar("dev/glue_average", metrics.glue_average(scores, user_tasks))
        except ValueError:
            pass
    writer.flush()
