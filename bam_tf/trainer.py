"""The training loop: runs `model.train_step` under the strategy for a fixed number of steps."""

import dataclasses
import time

import keras
import numpy as np
import tensorflow as tf
from absl import logging

from bam_tf.model import MultiTaskBert


class TrainingDivergedError(RuntimeError):
    pass


@dataclasses.dataclass
class TrainingSummary:
    steps: int
    seconds: float
    examples_per_task: dict[str, int]
    final_gold_weight: float
    last_losses: dict[str, float]  # mean per-task loss over the last logging window


def train(model: MultiTaskBert, dataset: tf.data.Dataset, num_steps: int, strategy: tf.distribute.Strategy,
          log_every: int = 50, description: str = "training", verbose: bool = True) -> TrainingSummary:
    """Run `num_steps` updates; raise TrainingDivergedError on a non-finite loss, naming step and task."""
    iterator = iter(strategy.experimental_distribute_dataset(dataset))
    task_names = [task.name for task in model.tasks]

    @tf.function
    def distributed_step(iterator):
        per_replica = strategy.run(model.train_step, args=(next(iterator),))
        return {key: strategy.reduce(tf.distribute.ReduceOp.SUM, value, axis=None)
                for key, value in per_replica.items()}

    progress = keras.utils.Progbar(num_steps, stateful_metrics=["loss", "λ"], verbose=1 if verbose else 0)
    logging.info("%s: %d steps", description, num_steps)
    window_sums = np.zeros(len(task_names))
    window_counts = np.zeros(len(task_names))
    total_counts = np.zeros(len(task_names))
    last_losses = {}
    start = time.time()
    for step in range(num_steps):
        stats = {key: value.numpy() for key, value in distributed_step(iterator).items()}
        if not np.isfinite(stats["loss"]):
            bad = [name for name, value in zip(task_names, stats["task_loss_sums"]) if not np.isfinite(value)]
            raise TrainingDivergedError(f"{description}: loss became {stats['loss']} at step {step} "
                                        f"(tasks: {', '.join(bad) or 'unknown'})")
        window_sums += stats["task_loss_sums"]
        window_counts += stats["task_counts"]
        total_counts += stats["task_counts"]
        progress.update(step + 1, [("loss", float(stats["loss"])), ("λ", float(model.gold_weight.numpy()))])
        if (step + 1) % log_every == 0 or step + 1 == num_steps:
            last_losses = {name: float(s / c) for name, s, c in zip(task_names, window_sums, window_counts) if c}
            logging.info("%s step %d/%d λ=%.3f %s", description, step + 1, num_steps,
                         float(model.gold_weight.numpy()),
                         " ".join(f"{name}={loss:.4f}" for name, loss in last_losses.items()))
            window_sums[:] = 0
            window_counts[:] = 0
    return TrainingSummary(steps=num_steps, seconds=time.time() - start,
                           examples_per_task={n: int(c) for n, c in zip(task_names, total_counts)},
                           final_gold_weight=float(model.gold_weight.numpy()), last_losses=last_losses)
