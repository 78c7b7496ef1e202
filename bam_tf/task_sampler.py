"""Which example feeds which slot of which batch: a pure function of (task sizes, seed, step).

Tasks are drawn with probability ∝ size^exponent (0.75 in BAM): large tasks still dominate, small ones
are seen more often than their share. Within a task, examples come in a fresh random permutation each
pass, so a task is never sampled with replacement inside one of its epochs.

Two ways to fill a batch:
  * "mixed": every slot draws its own task (the original BAM code; every head runs on every batch).
  * "per_task": every batch draws one task and takes `batch_size` examples from it.

Because the whole stream is computed up front from the seed, resuming at step s is just slicing it at
s·batch_size, and the number of examples each task contributed is known exactly.
"""

import dataclasses
import math
from fractions import Fraction

import numpy as np

MIXING_MODES = ("mixed", "per_task")


def task_probabilities(sizes, exponent: float) -> np.ndarray:
    """p_t = size_t^exponent / Σ size^exponent."""
    sizes = np.asarray(sizes, dtype=np.float64)
    if sizes.ndim != 1 or len(sizes) == 0 or np.any(sizes <= 0):
        raise ValueError(f"task sizes must be a non-empty list of positive counts, got {sizes.tolist()}")
    weights = sizes**exponent
    return weights / weights.sum()


def num_train_steps(sizes, epochs: float, batch_size: int, max_steps: int = 0) -> int:
    """Steps for `epochs` passes over all tasks' examples put together (as BAM counts an epoch), at most
    `max_steps` (--max_train_steps; 0: no cap)."""
    # Exact arithmetic on the epochs as written: 1.1 epochs of 1600 at batch 32 are 55 steps, where floats give 56.
    steps = max(1, math.ceil(Fraction(str(epochs)) * int(np.sum(sizes)) / batch_size))
    return min(steps, max_steps) if max_steps else steps


@dataclasses.dataclass(frozen=True)
class ExampleStream:
    """Flat stream of (task, example) picks; slots [s·batch_size, (s+1)·batch_size) form step s."""

    task_ids: np.ndarray  # int32 [num_steps * batch_size]
    example_indices: np.ndarray  # int64, row within that task's training set
    batch_size: int

    @property
    def num_steps(self) -> int:
        return len(self.task_ids) // self.batch_size

    def examples_per_task(self, num_tasks: int, up_to_step: int | None = None) -> np.ndarray:
        end = None if up_to_step is None else up_to_step * self.batch_size
        return np.bincount(self.task_ids[:end], minlength=num_tasks)

    def slot_values(self, values_per_task: list[np.ndarray]) -> np.ndarray:
        """values_per_task[task][example] for every slot of the stream (e.g. each slot's example length)."""
        values = np.empty(len(self.task_ids), np.asarray(values_per_task[0]).dtype)
        for task_id, task_values in enumerate(values_per_task):
            slots = self.task_ids == task_id
            values[slots] = np.asarray(task_values)[self.example_indices[slots]]
        return values


def example_stream(sizes, exponent: float, batch_size: int, num_steps: int, mode: str,
                   seed: int) -> ExampleStream:
    """The full, deterministic training stream for `num_steps` steps."""
    if mode not in MIXING_MODES:
        raise ValueError(f"unknown task mixing mode {mode!r}; choose one of {MIXING_MODES}")
    if batch_size < 1 or num_steps < 1:
        raise ValueError(f"batch_size and num_steps must be positive, got {batch_size} and {num_steps}")
    probabilities = task_probabilities(sizes, exponent)
    rng = np.random.default_rng([seed, 0])
    if mode == "mixed":
        task_ids = rng.choice(len(sizes), size=num_steps * batch_size, p=probabilities)
    else:
        task_ids = np.repeat(rng.choice(len(sizes), size=num_steps, p=probabilities), batch_size)
    task_ids = task_ids.astype(np.int32)

    example_indices = np.empty(len(task_ids), dtype=np.int64)
    for task_id, size in enumerate(sizes):
        slots = np.flatnonzero(task_ids == task_id)
        example_indices[slots] = _epoch_permutations(int(size), len(slots), seed, task_id)
    return ExampleStream(task_ids, example_indices, batch_size)


def _epoch_permutations(size: int, count: int, seed: int, task_id: int) -> np.ndarray:
    """The first `count` indices of the concatenation of per-epoch permutations of range(size)."""
    num_epochs = -(-count // size)
    passes = [np.random.default_rng([seed, 1, task_id, epoch]).permutation(size)
              for epoch in range(num_epochs)]
    return np.concatenate(passes)[:count] if passes else np.empty(0, dtype=np.int64)
