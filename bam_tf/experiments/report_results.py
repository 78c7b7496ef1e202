"""The results file arranged for the report (latest record per method, seed and task), and the
mean ± std ×100 in which the report writes scores."""

from __future__ import annotations

import math

import numpy as np

from bam_tf import metrics
from bam_tf.experiments.methods import METHODS, USER_TASKS_KEY, changed_settings
from bam_tf.experiments.results_file import latest_records


def mean_std(values: list[float]) -> tuple[float, float | None]:
    return float(np.mean(values)), (float(np.std(values, ddof=1)) if len(values) > 1 else None)


def pct(value: float) -> str:
    return f"{100 * value:.1f}"


# Score differences below this are floating-point noise (the same scores summed in another order), no direction.
NO_DIFFERENCE = 1e-9


def points(difference: float) -> str:
    """A score difference in points (×100): signed, one decimal; "0.0" for no difference; one significant
    digit where one decimal would round a real difference to a signless "0.0" or a misleading "-0.0"."""
    if abs(difference) < NO_DIFFERENCE:
        return "0.0"
    rounded = round(100 * difference, 1)
    return f"{rounded:+.1f}" if rounded != 0 else f"{100 * difference:+.1g}"


def is_higher(difference: float) -> bool:
    return difference >= NO_DIFFERENCE


def mean_std_text(values: list[float]) -> str:
    mean, std = mean_std(values)
    return f"{pct(mean)} ± {pct(std)}" if std is not None else f"{pct(mean)}"


def _finite(value) -> bool:
    try:
        return math.isfinite(float(value))
    except (TypeError, ValueError):
        return False


class Results:
    """Latest record per (method, seed, task), arranged for the tables."""

    def __init__(self, records: list[dict]):
        latest = latest_records(records)
        # A diverged run can score NaN (e.g. a correlation of NaN predictions): no statistic can hold it, so
        # it is left out of every mean and test, and the report says so (`left_out`).
        self.left_out = sorted(key for key, record in latest.items() if not _finite(record.get("score")))
        self.latest = {key: record for key, record in latest.items() if key not in self.left_out}
        known = {key[0] for key in self.latest}
        self.methods = [m for m in METHODS if m in known] + sorted(known - set(METHODS))
        names = {key[2] for key in self.latest}
        self.tasks = [t for t in metrics.GLUE_TASKS if t in names] + sorted(names - set(metrics.GLUE_TASKS))
        # Over tasks of the user's own the mean of task scores is no GLUE score (training's table says "Average").
        self.glue_only = all(t in metrics.GLUE_TASKS for t in self.tasks)
        self.average_name = "GLUE average" if self.glue_only else "average"
        self.average_title = "GLUE average" if self.glue_only else "Average"

    @staticmethod
    def mixed_settings(records: list[dict]) -> list[str]:
        """Warnings where results that one mean or one line stands for come from runs with other settings (e.g.
        two results files joined): a (method, task) whose seeds ran with other flags, and a line whose earlier
        copy (ignored: the last line counts) did."""
        def settings(record: dict) -> dict:
            flags = {k: v for k, v in (record.get("flags") or {}).items() if k != "seed"}
            return {**flags, **{k: v for k, v in record.items() if k == USER_TASKS_KEY}}

        warnings, seen, first_of = [], {}, {}
        for record in records:
            key = (record["method"], int(record["seed"]), record["task"])
            if key in seen and (details := changed_settings(settings(seen[key]), settings(record))):
                warnings.append(f"{key[0]} seed {key[1]} {key[2]} has an earlier line from a run with other flags "
                                f"({details}); the report uses the last line")
            seen[key] = record
        for (method, seed, task), record in seen.items():
            first = first_of.setdefault((method, task), (seed, record))
            if first[0] != seed and (details := changed_settings(settings(first[1]), settings(record))):
                warnings.append(f"{method} {task}: seed {seed} ran with other flags than seed {first[0]} "
                                f"({details}); its means mix the two")
        return warnings

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
        """The average of task scores (GLUE's, over GLUE tasks) per seed over `tasks` (default: every task of
        the report), for the seeds that have them all."""
        tasks = self.tasks if tasks is None else tasks
        averages = {}
        for seed in self.seeds(method):
            per_task = {t: self.latest[(method, seed, t)]["metrics"] for t in tasks
                        if (method, seed, t) in self.latest}
            if per_task and len(per_task) == len(tasks):
                averages[seed] = metrics.glue_average(
                    per_task, user_tasks=[t for t in tasks if t not in metrics.GLUE_TASKS])
        return averages
