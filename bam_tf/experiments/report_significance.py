"""The report's "Significance" section: one-sided Mann-Whitney U per task between two methods, Holm across
the tasks, and the smallest p the seeds could give."""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from bam_tf import significance
from bam_tf.experiments.report_results import Results, is_higher, mean_std_text, points


@dataclasses.dataclass
class Comparison:
    """One-sided tests of `better` > `other` on every task both have, Holm-adjusted across those tasks."""
    better: str
    other: str
    rows: list  # (task, better's scores, other's scores, significance.UTest)
    adjusted: list[float]
    alpha: float

    @property
    def significant_tasks(self) -> list[str]:
        return [row[0] for row, adj in zip(self.rows, self.adjusted) if adj <= self.alpha]

    @property
    def tasks_ahead(self) -> list[str]:
        return [task for task, x, y, _ in self.rows if is_higher(np.mean(x) - np.mean(y))]


def compare(results: Results, better: str, other: str, alpha: float) -> Comparison | None:
    if better not in results.methods or other not in results.methods:
        return None
    rows = []
    for task in results.tasks:
        x, y = results.scores(better, task), results.scores(other, task)
        if x and y:
            rows.append((task, x, y, significance.mann_whitney_u(x, y, alternative="greater")))
    if not rows:
        return None
    return Comparison(better, other, rows, significance.holm_bonferroni([row[3].p_value for row in rows]), alpha)


def average_test(results: Results, better: str, other: str) -> significance.MannWhitneyResult | None:
    """One-sided Mann-Whitney U of `better`'s per-seed averages over every task against `other`'s: one test,
    outside the per-task Holm family; None when either method has no seed with every task."""
    x_avg, y_avg = list(results.glue_averages(better).values()), list(results.glue_averages(other).values())
    if not (x_avg and y_avg):
        return None
    return significance.mann_whitney_u(x_avg, y_avg, alternative="greater")


def comparison_section(results: Results, better: str, other: str, alpha: float) -> list[str]:
    lines = ["", f"### {better} vs {other}", ""]
    if better not in results.methods or other not in results.methods:
        missing = [m for m in (better, other) if m not in results.methods]
        return lines + [f"Not tested: no results for {', '.join(missing)}."]
    comparison = compare(results, better, other, alpha)
    if comparison is None:
        return lines + ["Not tested: the two methods share no task."]
    rows, adjusted = comparison.rows, comparison.adjusted
    m = len(rows)
    lines += [f"One-sided Mann-Whitney U per task (H1: {better}'s per-seed scores tend to be greater than {other}'s), "
              f"Holm-Bonferroni across the {m} tasks, α = {alpha}. U counts pairs ({better} seed, {other} seed) "
              f"where {better} is higher (ties ½); its maximum is n1·n2.", "",
              f"| task | n ({better}, {other}) | mean difference | U | p (one-sided) | test | Holm-adjusted p | "
              "smallest attainable p | significant |",
              "|---|---:|---:|---:|---:|---|---:|---:|---|"]
    min_adjusted = []
    for (task, x, y, test), adj in zip(rows, adjusted):
        smallest = significance.min_attainable_p(len(x), len(y))
        min_adjusted.append(significance.min_adjusted_p(len(x), len(y), m))
        lines.append(f"| {task} | {len(x)}, {len(y)} | {points(np.mean(x) - np.mean(y))} | {test.u:g} | "
                     f"{test.p_value:.4g} | {test.method} | {adj:.4g} | {smallest:.4g} | "
                     f"{'**yes**' if adj <= alpha else 'no'} |")
    lines.append("")
    # The seed counts of the task that could reach the smallest adjusted p (tasks may hold different seeds).
    best = int(np.argmin(min_adjusted))
    n1, n2 = len(rows[best][1]), len(rows[best][2])
    pmin = significance.min_attainable_p(n1, n2)
    statement = (f"With n = {n1} vs {n2} seeds the smallest one-sided exact p is 1 / C({n1 + n2}, {n1}) = "
                 f"{pmin:.4g} (only one of the {math.comb(n1 + n2, n1)} equally likely rank splits puts every "
                 f"{better} score above every {other} score); Holm multiplies the smallest p by {m}, so the "
                 f"smallest attainable adjusted p is {significance.min_adjusted_p(n1, n2, m):.4g}.")
    if min(min_adjusted) > alpha:
        statement += f" **With these n no task can be significant after Holm at α = {alpha}, whatever the scores**: "
        try:
            needed = significance.seeds_needed(m, alpha)
            statement += f"that needs n ≥ {needed} seeds per method (1 / C({2 * needed}, {needed}) · {m} ≤ {alpha})"
            # A grid still running: how many seeds the method with fewer would need beside the other's.
            (short, n_short), (ahead, n_ahead) = sorted([(better, n1), (other, n2)], key=lambda item: item[1])
            enough = next((k for k in range(n_short + 1, needed)
                           if significance.min_adjusted_p(n_ahead, k, m) <= alpha), None)
            if n_short < n_ahead and enough:
                statement += f", or {enough} {short} seeds beside {ahead}'s {n_ahead}"
            statement += "."
        except ValueError:  # beyond seeds_needed's search
            statement += "that needs more than 100 seeds per method."
    lines.append(statement)
    test = average_test(results, better, other)
    if test:
        x_avg, y_avg = list(results.glue_averages(better).values()), list(results.glue_averages(other).values())
        lines += ["", f"{results.average_title} (one test, outside the Holm family): {mean_std_text(x_avg)} vs "
                      f"{mean_std_text(y_avg)}, U = {test.u:g}, one-sided p = {test.p_value:.4g} ({test.method}; "
                      f"smallest attainable {significance.min_attainable_p(len(x_avg), len(y_avg)):.4g})."]
    return lines
