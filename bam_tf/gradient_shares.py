"""Each task's part in a multi-task update, measured on training batches.

A multi-task step adds the tasks' summed losses into one gradient g = Σ_t g_t and clips it to a global
norm, so what moves the shared weights (the backbone) is g's direction. A task's part in that direction is
its projection on g: share_t = ⟨g_t, g⟩ / ‖g‖². A batch's shares add up to 1, and a task can have a
negative share (it pulls against the others). Comparing a task's share with its fraction of the batch's
examples tells whether its loss steers the shared weights in proportion to its data: a regression loss
on a [0, 1] scale, for one, may steer far less than a cross-entropy. Heads are left out: each task's head
gets only its own task's gradient. This is the gradient the optimizer receives; Adam's per-weight scaling
is the same for every task's part of it.

Measured with the run's own model (fresh, as training starts, or as trained), batches, targets and λ, with
dropout on as in training; one forward pass and one backward pass per task per batch.
"""

from __future__ import annotations

import dataclasses
import os

import numpy as np
import tensorflow as tf

from bam_tf.model import MultiTaskBert, multitask_loss

AT = ("start", "end")


@dataclasses.dataclass(frozen=True)
class TaskGradientShare:
    task: str
    examples: int  # the task's examples in the measured batches
    example_fraction: float  # examples / all examples measured
    loss_per_example: float  # its mean per-example loss against its (λ-mixed) targets
    share: float  # mean over batches of ⟨g_t, g⟩ / ‖g‖² on the shared weights (the shares of a batch add to 1)
    gradient_norm: float  # mean over batches of ‖g_t‖ on the shared weights
    cosine: float  # mean over batches of cos(g_t, g); nan when the task had no examples in any batch


def gradient_gram(model: MultiTaskBert, batch: dict, gold_weight) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """(G, per-task loss sums, per-task example counts) for one batch, where G[i, j] = ⟨g_i, g_j⟩ and g_t is the
    gradient of task t's summed loss with respect to the shared (backbone) weights."""
    shared = model.backbone.trainable_variables
    with tf.GradientTape(persistent=True) as tape:
        outputs = model(batch, training=True)
        loss_sums, counts = multitask_loss(outputs, batch, model.tasks, gold_weight, model.distillation.temperature)
        weighted = model.weighted_loss_sums(loss_sums)  # as the update weighs them (--task_loss_weights)
        task_losses = [weighted[t] for t in range(len(model.tasks))]
    gradients = [tape.gradient(loss, shared, unconnected_gradients=tf.UnconnectedGradients.ZERO)
                 for loss in task_losses]
    del tape
    # G = Σ over shared weights of F_v F_vᵀ, F_v holding each task's gradient of weight v as a row: one weight's
    # rows at a time, never a copy of every gradient (embedding gradients arrive as IndexedSlices, made dense).
    gram = tf.zeros((len(model.tasks), len(model.tasks)), tf.float32)
    for v in range(len(shared)):
        rows = tf.stack([tf.reshape(tf.cast(tf.convert_to_tensor(task_gradients[v]), tf.float32), [-1])
                         for task_gradients in gradients])
        gram += tf.matmul(rows, rows, transpose_b=True)
    return gram, loss_sums, counts


def shares_from_gram(gram: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(shares ⟨g_t, g⟩/‖g‖², norms ‖g_t‖, cosines cos(g_t, g)) from one batch's Gram matrix of task gradients.

    A task without examples has a zero gradient: share 0, norm 0 and cosine nan."""
    gram = np.asarray(gram, np.float64)
    along_total = gram.sum(axis=1)  # ⟨g_t, Σ_j g_j⟩
    total_squared = along_total.sum()  # ‖g‖²
    norms = np.sqrt(np.maximum(np.diag(gram), 0.0))
    shares = along_total / total_squared if total_squared > 0 else np.zeros_like(along_total)
    with np.errstate(invalid="ignore", divide="ignore"):
        cosines = np.where(norms > 0, along_total / (norms * np.sqrt(total_squared)), np.nan)
    return shares, norms, cosines


def measure_gradient_shares(model: MultiTaskBert, batches, gold_weights) -> list[TaskGradientShare]:
    """Per task, its part in the update over `batches` (dicts of features and targets, as training feeds one
    length group), each measured at the λ of the same position in `gold_weights`."""
    step = tf.function(lambda batch, gold_weight: gradient_gram(model, batch, gold_weight), reduce_retracing=True)
    num_tasks = len(model.tasks)
    shares, norms, cosines = [], [], []
    loss_sums, counts = np.zeros(num_tasks), np.zeros(num_tasks)
    for batch, gold_weight in zip(batches, gold_weights):
        gram, batch_loss_sums, batch_counts = step(batch, tf.constant(gold_weight, tf.float32))
        batch_shares, batch_norms, batch_cosines = shares_from_gram(gram.numpy())
        shares.append(batch_shares)
        norms.append(batch_norms)
        cosines.append(batch_cosines)
        loss_sums += batch_loss_sums.numpy()
        counts += batch_counts.numpy()
    if not shares:
        raise ValueError("no batches to measure")
    cosines = np.asarray(cosines)
    with np.errstate(invalid="ignore"):
        mean_cosines = [float(np.nanmean(column)) if np.isfinite(column).any() else float("nan")
                        for column in cosines.T]
    return [TaskGradientShare(task=task.name, examples=int(counts[t]),
                              example_fraction=float(counts[t] / counts.sum()),
                              loss_per_example=float(loss_sums[t] / counts[t]) if counts[t] else float("nan"),
                              share=float(np.mean([s[t] for s in shares])),
                              gradient_norm=float(np.mean([n[t] for n in norms])),
                              cosine=mean_cosines[t])
            for t, task in enumerate(model.tasks)]


def format_gradient_shares(shares: list[TaskGradientShare], title: str) -> str:
    lines = [title, "",
             "| task | examples | fraction of examples | loss per example | share of the update | share / fraction "
             "| ‖g_t‖ | cos(g_t, g) |",
             "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for s in shares:
        ratio = s.share / s.example_fraction if s.example_fraction else float("nan")
        lines.append(f"| {s.task} | {s.examples} | {s.example_fraction:.3f} | {s.loss_per_example:.4f} | "
                     f"{s.share:.3f} | {ratio:.2f} | {s.gradient_norm:.3g} | {s.cosine:.3f} |")
    return "\n".join(lines)


def run_gradient_shares(model_dir: str, at: str, num_batches: int) -> tuple[str, list[TaskGradientShare]]:
    """(a title, the shares) for the student of the run in `model_dir`, on its own training stream.

    at="start": the model as training starts (the run's seed, pretrained backbone, fresh heads) on the first
    `num_batches` batches; at="end": the trained student on the last `num_batches` batches. λ is each batch's
    own, as the run's schedule gives it."""
    import keras

    from bam_tf import teacher_annealing
    from bam_tf.config import BamConfig
    from bam_tf.input_pipeline import training_dataset
    from bam_tf.model import DistillationSettings
    from bam_tf.pipeline import BamPipeline
    from bam_tf.run_layout import RunLayout
    from bam_tf.stage import compiled_stage_model
    from bam_tf.trained_model import load_trained_model
    from bam_tf.user_errors import InputError, MissingInputError

    if at not in AT:
        raise InputError(f"at={at!r}: choose one of {', '.join(AT)}")
    if num_batches < 1:
        raise InputError(f"num_batches={num_batches}: measure at least one batch")
    model_dir = os.path.expanduser(model_dir)  # a leading ~ no shell expanded, as training reads its paths
    layout = RunLayout(model_dir)
    if not os.path.exists(layout.config_path):
        raise MissingInputError(f"{model_dir}: not a bam_tf run dir (no {os.path.basename(layout.config_path)})")
    # The run's flags, read where the run lies now (its recorded model_dir may be relative, or moved).
    config = dataclasses.replace(BamConfig.from_json_file(layout.config_path), model_dir=model_dir)
    # This process's default strategy, not the run's (a TPU or a cluster it may not reach): nothing is distributed.
    pipeline = BamPipeline(config, strategy=tf.distribute.get_strategy(), verbose=False)
    # float16 without the run's loss scaling would flush small gradients to zero, the smallest task's most.
    precision = "float32" if pipeline.precision == "mixed_float16" else pipeline.precision
    keras.mixed_precision.set_global_policy(precision)
    inputs = pipeline.student_inputs()
    total_steps = inputs.stream.num_steps
    count = min(num_batches, total_steps)
    first = 0 if at == "start" else total_steps - count
    settings = DistillationSettings(total_steps=total_steps, teacher_annealing=config.teacher_annealing,
                                    distill_weight=config.distill_weight, temperature=config.temperature)
    if at == "start":
        keras.utils.set_random_seed(config.seed)  # as the pipeline seeds the student it trains
        model = compiled_stage_model(config, pipeline.tasks, learning_rate=config.learning_rate,
                                     total_steps=total_steps, precision=precision, compile_model=False,
                                     task_loss_weights=pipeline.stage_loss_weights(pipeline.tasks))
    else:
        model, _ = load_trained_model(layout.student_dir, pipeline.task_set)
        trained = [task.name for task in model.tasks]
        if trained != [task.name for task in pipeline.tasks]:
            raise InputError(f"{layout.student_dir} has heads for {trained}, the run's flags train "
                             f"{[task.name for task in pipeline.tasks]}")
        model.distillation = settings
        model.task_loss_weights = pipeline.stage_loss_weights(pipeline.tasks)  # a model folder does not keep them
    keras.utils.set_random_seed(config.seed)  # dropout
    gold_weights = [float(teacher_annealing.gold_weight(step, total_steps, config.teacher_annealing,
                                                        config.distill_weight))
                    for step in range(first, first + count)]
    batches = (groups[0] for groups in training_dataset(inputs.examples, inputs.stream, first).take(count))
    shares = measure_gradient_shares(model, batches, gold_weights)
    targets = (f"distilled, λ {gold_weights[0]:.3f}–{gold_weights[-1]:.3f}" if config.distill
               else "gold labels")
    title = (f"{model_dir}, {'fresh model' if at == 'start' else 'trained student'}, batches {first}–"
             f"{first + count - 1} of {total_steps} ({targets}, {precision})")
    return title, shares
