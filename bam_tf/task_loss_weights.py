"""--task_loss_weights: how much each task's summed loss counts in a multi-task student's update.

The original BAM code adds the tasks' summed losses with weight 1 each (bam_tf's default). Under that sum and
the clip to a global norm, a task's pull on the shared weights follows the size of its gradient, not its
share of the data: a squared error on a [0, 1] scale can end up steering a few percent of the update with a
quarter of the examples (results/cpu_stsb_ablation.md; tools/gradient_shares.py measures it for any run). A
weight multiplies that task's summed loss in the gradient only; logged losses and dev scores are unweighted.
A stage of one task (a teacher) has nothing to balance and ignores the weights.
"""

from __future__ import annotations

import math

from bam_tf.task import Task
from bam_tf.user_errors import InputError

FLAG = "--task_loss_weights"


def parse_task_loss_weights(text: str) -> list[tuple[str, float]]:
    """"STS-B=25, rte=2" -> [("STS-B", 25.0), ("rte", 2.0)]; an InputError naming the item that is wrong."""
    pairs = []
    for item in text.split(","):
        if not item.strip():
            continue
        name, equals, value = item.partition("=")
        if not equals or not name.strip():
            raise InputError(f"{FLAG}: {item.strip()!r} is not TASK=WEIGHT (e.g. STS-B=25)")
        try:
            weight = float(value)
        except ValueError:
            raise InputError(f"{FLAG}: {item.strip()!r}: the weight {value.strip()!r} is not a number") from None
        if not (math.isfinite(weight) and weight > 0):
            raise InputError(f"{FLAG}: {item.strip()!r}: a weight must be a positive finite number")
        pairs.append((name.strip(), weight))
    return pairs


def resolve_task_loss_weights(text: str, task_set, tasks: list[Task]) -> dict[str, float]:
    """Task name -> weight for every task of `tasks` (1 where `text` names none), names looked up as --tasks
    does (case and punctuation ignored); an InputError for a task named twice or not among `tasks`."""
    weights = {task.name: 1.0 for task in tasks}
    named = set()
    for name, weight in parse_task_loss_weights(text):
        try:
            task = task_set.get(name)
        except InputError as error:
            raise InputError(f"{FLAG}: {error}") from None
        if task.name not in weights:
            raise InputError(f"{FLAG}: {task.name} is not trained by this run (--tasks: "
                             f"{', '.join(t.name for t in tasks)})")
        if task.name in named:
            raise InputError(f"{FLAG}: {task.name} is given a weight twice")
        named.add(task.name)
        weights[task.name] = weight
    return weights
