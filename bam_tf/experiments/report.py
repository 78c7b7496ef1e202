"""The experiment report: results file → Markdown (results/<name>.md) and a PNG next to it (results/<name>.png).

  * a summary in words: per comparison, on how many tasks and seeds bam is ahead, by how much, and
    whether anything is significant — the paper's claim read off these runs;
  * per method, each task's dev metrics and GLUE task score as mean ± std over seeds (n), and the
    GLUE-style average (macro-average of task scores, per seed, then mean ± std);
  * bam vs single and bam vs multi: per task a one-sided Mann-Whitney U test (H1: bam's scores are
    greater), Holm-Bonferroni across the tasks, and the smallest p the seeds could possibly give — when
    that is above the threshold the report says plainly that nothing can be significant;
  * the figure: per-task bars (mean per method) with one dot per seed, and λ (the weight of the gold
    label) over the bam student's training, as bam_tf.teacher_annealing computes it: λ = step / total_steps.

The statistics live in bam_tf/significance.py; this module reads, arranges and draws.
`python tools/report.py --results_file=... --output=...` is its command line.
"""

from __future__ import annotations

import dataclasses
import datetime
import math
import os

import numpy as np

from bam_tf import atomic_files, metrics, significance
from bam_tf.config import VALUES_BEFORE_THE_FLAG_EXISTED
from bam_tf.dataset_multiples import epoch_sizes
from bam_tf.experiments.methods import METHODS
from bam_tf.experiments.results_file import ExperimentError, latest_records, read_results
from bam_tf.task_sampler import num_train_steps

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # the figure's λ comes from bam_tf.teacher_annealing (Keras)
# The paper's two headline claims (bam beats its single-task teachers and plain multi-task training), then its
# ablation: teacher annealing beats a fixed λ = distill_weight (bam_no_anneal).
CLAIMS = (("bam", "single"), ("bam", "multi"))
ANNEALING = ("bam", "bam_no_anneal")
COMPARISONS = CLAIMS + (ANNEALING,)


def _mean_std(values: list[float]) -> tuple[float, float | None]:
    return float(np.mean(values)), (float(np.std(values, ddof=1)) if len(values) > 1 else None)


def _pct(value: float) -> str:
    return f"{100 * value:.1f}"


def _mean_std_text(values: list[float]) -> str:
    mean, std = _mean_std(values)
    return f"{_pct(mean)} ± {_pct(std)}" if std is not None else f"{_pct(mean)}"


class Results:
    """Latest record per (method, seed, task), arranged for the tables."""

    def __init__(self, records: list[dict]):
        self.latest = latest_records(records)
        known = {key[0] for key in self.latest}
        self.methods = [m for m in METHODS if m in known] + sorted(known - set(METHODS))
        names = {key[2] for key in self.latest}
        self.tasks = [t for t in metrics.GLUE_TASKS if t in names] + sorted(names - set(metrics.GLUE_TASKS))

    def seeds(self, method: str, task: str | None = None) -> list[int]:
        return sorted({s for (m, s, t) in self.latest if m == method and (task is None or t == task)})

    def records(self, method: str, task: str) -> list[dict]:
        return [self.latest[(method, s, task)] for s in self.seeds(method, task)]

    def scores(self, method: str, task: str) -> list[float]:
        return [float(r["score"]) for r in self.records(method, task)]

    def glue_averages(self, method: str) -> dict[int, float]:
        """GLUE average per seed, over seeds that have every task of the report."""
        averages = {}
        for seed in self.seeds(method):
            per_task = {t: self.latest[(method, seed, t)]["metrics"] for t in self.tasks
                        if (method, seed, t) in self.latest}
            if len(per_task) == len(self.tasks):
                averages[seed] = metrics.glue_average(
                    per_task, extra_tasks=[t for t in self.tasks if t not in metrics.GLUE_TASKS])
        return averages


# ---- Markdown --------------------------------------------------------------------------------------
def score_tables(results: Results) -> list[str]:
    lines = ["## Dev scores", "",
             "GLUE task score (mean of the task's metrics: MRPC (F1 + accuracy) / 2, STS-B (Pearson + Spearman) / 2), "
             "×100, as mean ± sample std over seeds; n = number of seeds.", "",
             "| method | " + " | ".join(results.tasks) + " | GLUE average |",
             "|---|" + "---:|" * (len(results.tasks) + 1)]
    for method in results.methods:
        cells = []
        for task in results.tasks:
            scores = results.scores(method, task)
            cells.append(f"{_mean_std_text(scores)} (n={len(scores)})" if scores else "—")
        averages = list(results.glue_averages(method).values())
        cells.append(f"{_mean_std_text(averages)} (n={len(averages)})" if averages else "—")
        lines.append(f"| {method} | " + " | ".join(cells) + " |")
    for method in results.methods:
        lines += ["", f"### {method}", "", "| task | metrics (mean ± std) | score (mean ± std) | n | per seed |",
                  "|---|---|---:|---:|---|"]
        for task in results.tasks:
            records = results.records(method, task)
            if not records:
                continue
            names = list(records[0]["metrics"])
            metric_text = ", ".join(f"{name} {_mean_std_text([r['metrics'][name] for r in records])}" for name in names)
            per_seed = ", ".join(f"{r['seed']}: {_pct(r['score'])}" for r in records)
            lines.append(f"| {task} | {metric_text} | {_mean_std_text(results.scores(method, task))} | "
                         f"{len(records)} | {per_seed} |")
        averages = results.glue_averages(method)
        if averages:
            per_seed = ", ".join(f"{seed}: {_pct(value)}" for seed, value in averages.items())
            lines.append(f"| **GLUE average** | | {_mean_std_text(list(averages.values()))} | {len(averages)} | "
                         f"{per_seed} |")
        walls = {r["seed"]: r.get("wall_time_s") for t in results.tasks for r in results.records(method, t)}
        if all(isinstance(w, (int, float)) for w in walls.values()) and walls:
            lines += ["", f"Wall time per run: {', '.join(f'seed {s}: {w / 60:.1f} min' for s, w in walls.items())}."]
    return lines


def runs_section(results: Results) -> list[str]:
    """One row per (method, seed): the bam_tf commit it ran from, its wall time and when it finished."""
    lines = ["## Runs", "", "Wall time: the seconds the runner spent on that (method, seed), teachers it had to "
             "train included; a resumed run counts only the part after the resume. Precision: what `--precision` "
             "resolved to on the device that ran it (\"not recorded\": a line from before bam_tf recorded them).", "",
             "| method | seed | bam_tf commit | wall time | precision, device | finished |",
             "|---|---:|---|---:|---|---|"]
    for method in results.methods:
        for seed in results.seeds(method):
            record = _run_record(results, method, seed)
            commit = (record.get("git_commit") or "unknown")[:12] + (" +changes" if record.get("git_dirty") else "")
            wall = record.get("wall_time_s")
            wall_text = f"{wall / 60:.1f} min" + (" (resumed)" if record.get("resumed") else "") \
                if isinstance(wall, (int, float)) else "-"
            lines.append(f"| {method} | {seed} | `{commit}` | {wall_text} | {_precision_and_device(record)} | "
                         f"{record.get('finished_at', '-')} |")
    costs = seed_costs(results)
    if costs:
        lines += ["", "What a seed costs (median wall time of the runs that were not resumed): "
                  + ", ".join(f"{method} {minutes:.1f} min" for method, minutes in costs.items())
                  + (f"; all {len(costs)} methods {sum(costs.values()) / 60:.1f} h." if len(costs) > 1 else ".")]
    return lines


def _precision_and_device(record: dict) -> str:
    if not record.get("precision") and not record.get("device"):
        return "not recorded"
    return f"{record.get('precision') or '?'}, {record.get('device') or '?'}"


def precision_warning(results: Results) -> str | None:
    """Runs that computed in different precisions are not one experiment: say so where it is read."""
    runs_by_precision: dict[str, list[str]] = {}
    for method in results.methods:
        for seed in results.seeds(method):
            precision = _run_record(results, method, seed).get("precision")
            if precision:
                runs_by_precision.setdefault(precision, []).append(f"{method} {seed}")
    if len(runs_by_precision) < 2:
        return None
    return ("**Mixed precision**: the runs did not all compute in one precision ("
            + "; ".join(f"{precision}: {', '.join(runs)}" for precision, runs in sorted(runs_by_precision.items()))
            + "); a difference between methods may partly be one between precisions (Runs section).")


def _run_record(results: Results, method: str, seed: int) -> dict:
    """The first task's line of a (method, seed): commit, wall time and resume flag are per run."""
    return next(results.latest[(method, seed, t)] for t in results.tasks if (method, seed, t) in results.latest)


def seed_costs(results: Results) -> dict[str, float]:
    """Median minutes per (method, seed) over whole runs: a resumed run's wall time misses its first part."""
    costs = {}
    for method in results.methods:
        walls = []
        for seed in results.seeds(method):
            record = _run_record(results, method, seed)
            if isinstance(record.get("wall_time_s"), (int, float)) and not record.get("resumed"):
                walls.append(record["wall_time_s"] / 60)
        if walls:
            costs[method] = float(np.median(walls))
    return costs


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
        return [task for task, x, y, _ in self.rows if np.mean(x) > np.mean(y)]


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
        lines.append(f"| {task} | {len(x)}, {len(y)} | {100 * (np.mean(x) - np.mean(y)):+.1f} | {test.u:g} | "
                     f"{test.p_value:.4g} | {test.method} | {adj:.4g} | {smallest:.4g} | "
                     f"{'**yes**' if adj <= alpha else 'no'} |")
    lines.append("")
    n1, n2 = max(len(r[1]) for r in rows), max(len(r[2]) for r in rows)
    pmin = significance.min_attainable_p(n1, n2)
    statement = (f"With n = {n1} vs {n2} seeds the smallest one-sided exact p is 1 / C({n1 + n2}, {n1}) = "
                 f"{pmin:.4g} (only one of the {math.comb(n1 + n2, n1)} equally likely rank splits puts every "
                 f"{better} score above every {other} score); Holm multiplies the smallest p by {m}, so the "
                 f"smallest attainable adjusted p is {significance.min_adjusted_p(n1, n2, m):.4g}.")
    if min(min_adjusted) > alpha:
        needed = significance.seeds_needed(m, alpha)
        statement += (f" **With these n nothing can be significant at α = {alpha}, whatever the scores**: "
                      f"that needs n ≥ {needed} seeds per method (1 / C({2 * needed}, {needed}) · {m} ≤ {alpha}).")
    lines.append(statement)
    x_avg, y_avg = list(results.glue_averages(better).values()), list(results.glue_averages(other).values())
    if x_avg and y_avg:
        test = significance.mann_whitney_u(x_avg, y_avg, alternative="greater")
        lines += ["", f"GLUE average (one test, outside the Holm family): {_mean_std_text(x_avg)} vs "
                      f"{_mean_std_text(y_avg)}, U = {test.u:g}, one-sided p = {test.p_value:.4g} ({test.method}; "
                      f"smallest attainable {significance.min_attainable_p(len(x_avg), len(y_avg)):.4g})."]
    return lines


def budget_section(results: Results, baseline: Results, baseline_file: str, alpha: float) -> list[str]:
    """Each method of both results files, task by task: this file's scores against the baseline file's (the
    same method under other settings, e.g. another training budget). Two-sided Mann-Whitney U per task,
    Holm across the tasks of each method."""
    lines = ["## Against the baseline results", "",
             f"Each method against the same method in `{baseline_file}`: mean over seeds here minus there (×100), "
             f"two-sided Mann-Whitney U per task, Holm-Bonferroni across each method's tasks, α = {alpha}.", ""]
    methods = [m for m in results.methods if m in baseline.methods]
    if not methods:
        return lines + ["No method is in both files."]
    lines += ["| method | task | here (n) | baseline (n) | difference | p (two-sided) | Holm-adjusted p |",
              "|---|---|---:|---:|---:|---:|---:|"]
    for method in methods:
        rows = [(task, results.scores(method, task), baseline.scores(method, task)) for task in results.tasks]
        rows = [(task, x, y, significance.mann_whitney_u(x, y, alternative="two-sided")) for task, x, y in rows
                if x and y]
        adjusted = significance.holm_bonferroni([test.p_value for *_, test in rows]) if rows else []
        for (task, x, y, test), adj in zip(rows, adjusted):
            lines.append(f"| {method} | {task} | {_mean_std_text(x)} ({len(x)}) | {_mean_std_text(y)} ({len(y)}) | "
                         f"{100 * (np.mean(x) - np.mean(y)):+.1f} | {test.p_value:.4g} | "
                         f"{adj:.4g}{' **significant**' if adj <= alpha else ''} |")
        x_avg, y_avg = list(results.glue_averages(method).values()), list(baseline.glue_averages(method).values())
        if x_avg and y_avg:
            test = significance.mann_whitney_u(x_avg, y_avg, alternative="two-sided")
            lines.append(f"| {method} | GLUE average | {_mean_std_text(x_avg)} ({len(x_avg)}) | "
                         f"{_mean_std_text(y_avg)} ({len(y_avg)}) | {100 * (np.mean(x_avg) - np.mean(y_avg)):+.1f} | "
                         f"{test.p_value:.4g} | (one test) |")
    return lines


@dataclasses.dataclass(frozen=True)
class Direction:
    """Where bam's GLUE average sits against another method's: "above", "below" or "level"."""
    difference: float
    noise: float | None  # the larger of the two methods' seed-to-seed sample std
    word: str


def glue_direction(better: list[float], other: list[float]) -> Direction:
    """Differences no larger than the seed-to-seed spread are "level": one lucky seed must not read as a win."""
    difference = float(np.mean(better) - np.mean(other))
    stds = [_mean_std(values)[1] for values in (better, other)]
    noise = max((s for s in stds if s is not None), default=None)
    if noise is not None and abs(difference) <= noise:
        return Direction(difference, noise, "level")
    return Direction(difference, noise, "above" if difference > 0 else "below")


def _direction_text(other: str, d: Direction) -> str:
    if d.word == "level":
        return (f"level with {other} ({100 * d.difference:+.1f} points, no more than the seed-to-seed "
                f"std of {100 * d.noise:.1f})")
    return f"{d.word} {other} ({100 * d.difference:+.1f} points)"


def direction_verdict(directions: dict[str, Direction], any_significant: bool) -> str:
    """The paper's headline claim (bam above single and above multi), read off the GLUE averages."""
    words = {d.word for d in directions.values()}
    caveat = ("." if any_significant else " — but see the significance section: the evidence is the direction "
              "of the means, not a significant test.")
    if words == {"above"}:
        one_seed = any(d.noise is None for d in directions.values())
        spread = (" (one seed per method: there is no seed-to-seed spread to weigh the differences against)"
                  if one_seed else ", by more than the seed-to-seed spread")
        return ("Direction: bam's GLUE average is above both single-task teachers and plain multi-task training"
                + spread + ", as the paper reports" + caveat)
    parts = [_direction_text(other, d) for other, d in directions.items()]
    reproduced = "only part of the paper's claim" if "above" in words else "neither part of the paper's claim"
    return f"Direction: bam's GLUE average is {' and '.join(parts)}: these runs reproduce {reproduced}."


def annealing_verdict(d: Direction, significant: bool) -> str:
    """The paper's ablation: annealing λ from 0 to 1 beats a fixed mix of gold and teacher."""
    if d.word == "above":
        outcome = "annealing helped, as the paper reports" + ("" if significant else " (direction only, not significant)")
    elif d.word == "below":
        outcome = "annealing did not help: the paper's ablation is not reproduced"
    else:
        outcome = "no difference beyond the seed spread: the paper's ablation is not reproduced"
    where = _direction_text("bam_no_anneal (fixed λ)", d)
    if d.noise is None:
        where = where[:-1] + "; one seed per method: no spread to weigh it against)"
    return f"Teacher annealing: bam's GLUE average is {where}: {outcome}."


def summary_section(results: Results, alpha: float) -> list[str]:
    """The paper's claim (bam beats single and multi), read off these runs in plain words."""
    lines = ["## Summary", ""]
    seed_sets = {method: results.seeds(method) for method in results.methods}
    if len({tuple(seeds) for seeds in seed_sets.values()}) > 1:
        lines += ["**Incomplete grid**: the methods hold different seeds ("
                  + "; ".join(f"{m}: {seeds}" for m, seeds in seed_sets.items())
                  + "), so means below mix different seed sets; the seed-by-seed counts compare like with like.", ""]
    warning = precision_warning(results)
    if warning:
        lines += [warning, ""]
    directions, any_significant = {}, False
    for better, other in CLAIMS:
        line = comparison_line(results, better, other, alpha)
        if line is None:
            lines.append(f"- **{better} vs {other}**: not compared (no shared results).")
            continue
        text, direction, significant = line
        lines.append(text)
        any_significant = any_significant or significant
        if direction:
            directions[other] = direction
    annealing = comparison_line(results, *ANNEALING, alpha)  # None: an experiment without the ablation
    if annealing:
        lines.append(annealing[0])
    lines.append("")
    if len(directions) == len(CLAIMS):
        lines.append(direction_verdict(directions, any_significant))
    if annealing and annealing[1]:
        lines += ["", annealing_verdict(annealing[1], annealing[2])]
    return lines


def comparison_line(results: Results, better: str, other: str, alpha: float):
    """The summary's line on `better` vs `other`, the GLUE-average direction (None without averages) and
    whether any task is significant after Holm; None when the two share no result."""
    comparison = compare(results, better, other, alpha)
    if comparison is None:
        return None
    diffs = {task: float(np.mean(x) - np.mean(y)) for task, x, y, _ in comparison.rows}
    ahead = comparison.tasks_ahead
    behind = [task for task in diffs if task not in ahead]
    text = (f"- **{better} vs {other}**: {better}'s mean task score is higher on {len(ahead)} of {len(diffs)} "
            f"tasks ({', '.join(f'{t} {100 * diffs[t]:+.1f}' for t in ahead) or 'none'})"
            + (f" and not higher on {', '.join(f'{t} {100 * diffs[t]:+.1f}' for t in behind)}" if behind else "")
            + ".")
    direction = None
    x_avg, y_avg = results.glue_averages(better), results.glue_averages(other)
    if x_avg and y_avg:
        direction = glue_direction(list(x_avg.values()), list(y_avg.values()))
        paired = sorted(set(x_avg) & set(y_avg))
        wins = sum(x_avg[s] > y_avg[s] for s in paired)
        text += (f" GLUE average: {100 * direction.difference:+.1f} points; {better} is higher on {wins} "
                 f"of {len(paired)} seeds compared seed by seed.")
    significant = comparison.significant_tasks
    text += (f" Significant after Holm at α = {alpha}: {', '.join(significant)}." if significant else
             f" No task difference is significant after Holm at α = {alpha}.")
    return text, direction, bool(significant)


# ---- λ over training ---------------------------------------------------------------------------------
def bam_total_steps(results: Results) -> tuple[int, str] | None:
    """Total steps of the bam student: its training_summary.json if the run folder is here, else the schedule."""
    for task in results.tasks:
        for record in results.records("bam", task):
            path = os.path.join(record.get("model_dir", ""), "training_summary.json")
            if os.path.exists(path):
                return int(atomic_files.read_json(path)["steps"]), path
    for task in results.tasks:
        for record in results.records("bam", task):
            flags, sizes = record.get("flags") or {}, record.get("train_examples")
            if sizes and flags.get("num_train_epochs") and flags.get("train_batch_size"):
                epoch = epoch_sizes(list(sizes), list(sizes.values()), flags.get("task_weight_exponent", 0.75),
                                    flags.get("dataset_multiples", VALUES_BEFORE_THE_FLAG_EXISTED["dataset_multiples"]))
                steps = num_train_steps(epoch, flags["num_train_epochs"], flags["train_batch_size"],
                                        flags.get("max_train_steps") or 0)
                return steps, ("the schedule: ⌈epochs · Σ train examples × dataset multiple / batch size⌉ (run "
                               "folder not found)")
            if record.get("training_steps"):
                return int(record["training_steps"]), "training_steps in the results file"
    return None


def annealed_lambda(total_steps: int) -> np.ndarray:
    """λ at every student step 0 … total_steps − 1, as training computes it (bam_tf.teacher_annealing)."""
    from keras import ops

    from bam_tf.teacher_annealing import annealed_gold_weight
    return ops.convert_to_numpy(annealed_gold_weight(np.arange(total_steps), total_steps))


def no_anneal_lambda(results: Results) -> float | None:
    """The fixed λ of the bam_no_anneal student (from its --distill_weight), as training computes it."""
    from keras import ops

    from bam_tf.teacher_annealing import gold_weight
    for task in results.tasks:
        for record in results.records("bam_no_anneal", task):
            weight = (record.get("flags") or {}).get("distill_weight")
            if weight is not None:
                return float(ops.convert_to_numpy(gold_weight(0, 1, teacher_annealing=False,
                                                              distill_weight=float(weight))))
    return None


# ---- figure --------------------------------------------------------------------------------------------
def draw_figure(results: Results, path: str, total_steps: tuple[int, str] | None) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    columns = results.tasks + ["GLUE avg"]
    fig, (bars, lam) = plt.subplots(1, 2, figsize=(max(9.0, 2.2 + 1.5 * len(columns) + 4), 4.8),
                                    gridspec_kw={"width_ratios": [max(2, len(columns)), 1.6]})
    width = 0.8 / max(1, len(results.methods))
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for i, method in enumerate(results.methods):
        offset = (i - (len(results.methods) - 1) / 2) * width
        for j, column in enumerate(columns):
            values = (list(results.glue_averages(method).values()) if column == "GLUE avg"
                      else results.scores(method, column))
            if not values:
                continue
            values = 100 * np.asarray(values)
            color = colors[i % len(colors)]
            bars.bar(j + offset, values.mean(), width * 0.95, color=color, alpha=0.55)
            jitter = np.linspace(-width * 0.25, width * 0.25, len(values)) if len(values) > 1 else [0.0]
            bars.scatter(j + offset + np.asarray(jitter), values, s=12, color=color, edgecolors="black",
                         linewidths=0.4, zorder=3)
    handles = [plt.Rectangle((0, 0), 1, 1, color=colors[i % len(colors)], alpha=0.55)
               for i in range(len(results.methods))]
    bars.legend(handles, results.methods, fontsize=8, ncol=min(4, len(handles)), loc="upper center",
                bbox_to_anchor=(0.5, -0.1), frameon=False)
    bars.set_xticks(range(len(columns)), columns)
    bars.axhline(0, color="black", linewidth=0.6)
    bars.set_ylabel("dev score ×100 (bar: mean over seeds; dots: seeds)")
    bars.set_title("GLUE dev task scores per method")

    if total_steps:
        steps, _ = total_steps
        x = np.arange(steps)
        lam.plot(x, annealed_lambda(steps), label="bam: λ = step / T")
        fixed = no_anneal_lambda(results)
        if fixed is not None:
            lam.plot(x, np.full(steps, fixed), linestyle="--", label=f"bam_no_anneal: λ = {fixed:g}")
        lam.set_xlabel(f"student step (T = {steps})")
        lam.legend(fontsize=8, loc="lower right")
    else:
        lam.text(0.5, 0.5, "no bam run", ha="center", va="center", transform=lam.transAxes)
    lam.set_ylim(-0.03, 1.03)
    lam.set_ylabel("λ (weight of the gold label)")
    lam.set_title("Teacher annealing")
    fig.tight_layout()
    try:
        with atomic_files.atomic_open(path, "wb") as f:
            fig.savefig(f, dpi=110, format="png")
    finally:
        plt.close(fig)


# ---- the report -----------------------------------------------------------------------------------------
def build_report(results_file: str, output: str, alpha: float, command: str | None = None,
                 baseline_file: str | None = None) -> str:
    """Write the Markdown report to `output` and its figure next to it (.png); returns the Markdown.
    With `baseline_file`, also each method against the same method in that results file."""
    records, warning = read_results(results_file)
    if not records:
        raise ExperimentError(f"{results_file}: no results" + (f" ({warning})" if warning else ""))
    results = Results(records)
    baseline = None
    if baseline_file:
        baseline_records, _ = read_results(baseline_file)
        if not baseline_records:
            raise ExperimentError(f"{baseline_file}: no results to compare with")
        baseline = Results(baseline_records)
    png = os.path.splitext(output)[0] + ".png"
    total_steps = bam_total_steps(results) if "bam" in results.methods else None
    draw_figure(results, png, total_steps)
    commits = sorted({(r.get("git_commit") or "unknown")[:12] + ("+changes" if r.get("git_dirty") else "")
                      for r in results.latest.values()})
    first = next(iter(results.latest.values()))["flags"]
    lines = [f"# Experiment report: {os.path.splitext(os.path.basename(output))[0]}", "",
             f"- results: `{results_file}` ({len(records)} lines, {len(results.latest)} (method, seed, task) results)",
             f"- generated: {datetime.datetime.now(datetime.timezone.utc).isoformat(timespec='seconds')} by "
             f"`python tools/report.py --results_file={results_file} --output={output}"
             + (f" --baseline_results={baseline_file}" if baseline_file else "")
             + (f" --command='{command}'" if command else "") + "`",
             f"- bam_tf commit(s): {', '.join(commits)}",
             f"- backbone `{first.get('backbone')}`, tasks {', '.join(results.tasks)}, "
             f"max_train_examples {first.get('max_train_examples') or 'all'}, "
             f"max_eval_examples {first.get('max_eval_examples') or 'all'}",
             f"- methods: {', '.join(f'{m} (seeds {results.seeds(m)})' for m in results.methods)}"]
    if warning:
        lines.append(f"- warning: {warning}")
    if command:
        lines.append(f"- produced by: `{command}`")
    lines += [""] + summary_section(results, alpha)
    lines += [""] + score_tables(results)
    lines += ["", "## Significance"]
    for better, other in COMPARISONS:
        lines += comparison_section(results, better, other, alpha)
    if baseline is not None:
        lines += [""] + budget_section(results, baseline, baseline_file, alpha)
    lines += [""] + runs_section(results)
    lines += ["", "## Figure", "", f"![per-task dev scores and λ]({os.path.basename(png)})", "",
              "Left: per task, a bar per method at the mean over seeds, one dot per seed. Right: λ, the weight "
              "of the gold label in the bam student's target λ·gold + (1 − λ)·teacher, over training (λ = step / T)."
              + (f" Total steps T = {total_steps[0]}, from {total_steps[1]}." if total_steps else "")]
    text = "\n".join(lines) + "\n"
    atomic_files.write_text(output, text)
    return text
