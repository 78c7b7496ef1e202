"""The results file arranged for the report (latest record per method, seed and task), and the
mean ± std ×100 in which the report writes scores."""

from __future__ import annotations

import numpy as np

from bam_tf import metrics
from bam_tf.experiments.methods import METHODS
from bam_tf.experiments.results_file import latest_records


def mean_std(values: list[float]) -> tuple[float, float | None]:
    return float(np.mean(values)), (float(np.std(values, ddof=1)) if len(values) > 1 else None)


def pct(value: float) -> str:
    return f"{100 * value:.1f}"


def mean_std_text(values: list[float]) -> str:
    mean, std = mean_std(values)
    return f"{pct(mean)} ± {pct(std)}" if std is not None else f"{pct(mean)}"


class Results:
    """Latest record per (method, seed, task), arranged for the tables."""

    def __init__(self, records: list[dict]):
        self.latest = latest_records(records)
        known = {key[0] for key in self.latest}
        self.methods = [m for m in METHODS if m in known] + sorted(known - set(METHODS))
        names = {key[2] for key in self.latest}
        self.tasks = [t for t in metrics.GLUE_TASKS if t in names] + sorted(names - set(metrics.GLUE_TASKS))

    def commits(self) -> list[str]:
        """The bam_tf commits the results came from (12 hex digits; "+changes" for an uncommitted tree)."""
        return sorted({(r.get("git_commit") or "unknown")[:12] + ("+changes" if r.get("git_dirty") else "")
                       for r in self.latest.values()})

    def seeds(self, method: str, task: str | None = None) -> list[int]:
        return sorted({s for (m, s, t) in self.latest if m == method and (task is None or t == task)})

    def records(self, method: str, task: str) -> list[dict]:
        return [self.latest[(method, s, task)] for s in self.seeds(method, task)]

    def scores(self, method: str, task: str) -> list[float]:
        return [float(r["score"]) for r in self.records(method, task)]

    def glue_averages(self, method: str, tasks: list[str] | None = None) -> dict[int, float]:
        """GLUE average per seed over `tasks` (default: every task of the report), for the seeds that have them
        all."""
        tasks = self.tasks if tasks is None else tasks
        averages = {}
        for seed in self.seeds(method):
            per_task = {t: self.latest[(method, seed, t)]["metrics"] for t in tasks
                        if (method, seed, t) in self.latest}
            if per_task and len(per_task) == len(tasks):
                averages[seed] = metrics.glue_average(
                    per_task, user_tasks=[t for t in tasks if t not in metrics.GLUE_TASKS])
        return averages
