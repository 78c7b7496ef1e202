"""The report's "Summary" section: per comparison, the counts, directions and significance in words, and
the verdicts on the paper's claims and on its teacher-annealing ablation."""

from __future__ import annotations

import dataclasses

import numpy as np

from bam_tf.experiments.report_results import NO_DIFFERENCE, Results, is_higher, mean_std, points
from bam_tf.experiments.report_runs import device_warning, precision_warning
from bam_tf.experiments.report_significance import average_test, compare

# The paper's two headline claims (bam beats its single-task teachers and plain multi-task training), then its
# ablation: teacher annealing beats a fixed λ = distill_weight (bam_no_anneal).
CLAIMS = (("bam", "single"), ("bam", "multi"))
ANNEALING = ("bam", "bam_no_anneal")


@dataclasses.dataclass(frozen=True)
class Direction:
    """Where bam's GLUE average sits against another method's: "above", "below" or "level"."""
    difference: float
    noise: float | None  # the larger of the two methods' seed-to-seed sample std
    word: str
    within_spread: bool = False  # "above" by the average's significant test, though no more than `noise`


def glue_direction(better: list[float], other: list[float]) -> Direction:
    """Differences no larger than the seed-to-seed spread (or none at all) are "level": one lucky seed must
    not read as a win."""
    difference = float(np.mean(better) - np.mean(other))
    stds = [mean_std(values)[1] for values in (better, other)]
    noise = max((s for s in stds if s is not None), default=None)
    if abs(difference) < NO_DIFFERENCE or (noise is not None and abs(difference) <= noise):
        return Direction(difference, noise, "level")
    return Direction(difference, noise, "above" if difference > 0 else "below")


def tested_direction(direction: Direction, average_significant: bool) -> Direction:
    """A "level" average that the averages' own one-sided test finds greater is above, within the spread:
    the seeds' ranks, not one lucky seed, put it there."""
    if direction.word == "level" and average_significant and is_higher(direction.difference):
        return dataclasses.replace(direction, word="above", within_spread=True)
    return direction


def _direction_text(other: str, d: Direction) -> str:
    if d.word == "level":
        noise = f", no more than the seed-to-seed std of {100 * d.noise:.1f}" if d.noise is not None else ""
        return f"level with {other} ({points(d.difference)} points{noise})"
    if d.within_spread:
        return (f"above {other} ({points(d.difference)} points: within the seed-to-seed std of {100 * d.noise:.1f}, "
                "but the averages' one-sided test is significant)")
    return f"{d.word} {other} ({points(d.difference)} points)"


def direction_verdict(directions: dict[str, Direction], significant: dict[str, bool],
                      average: str = "GLUE average") -> str:
    """The paper's headline claim (bam above single and above multi), read off the averages (`average` names them);
    `significant`: per compared method, whether a test (a task after Holm, or the average's) found bam greater."""
    words = {d.word for d in directions.values()}
    untested = [other for other in directions if not significant.get(other)]
    caveat = ("." if not untested else " — but see the significance section: against "
              f"{' and '.join(untested)} the evidence is the direction of the means, not a significant test.")
    if words == {"above"}:
        one_seed = any(d.noise is None for d in directions.values())
        within = [other for other, d in directions.items() if d.within_spread]
        spread = (" (one seed per method: there is no seed-to-seed spread to weigh the differences against)"
                  if one_seed else ", by more than the seed-to-seed spread" if not within else
                  f" (against {' and '.join(within)} by less than the seed-to-seed spread, but significantly)")
        return (f"Direction: bam's {average} is above both single-task teachers and plain multi-task training"
                + spread + ", as the paper reports" + caveat)
    parts = [_direction_text(other, d) for other, d in directions.items()]
    reproduced = "only part of the paper's claim" if "above" in words else "neither part of the paper's claim"
    return f"Direction: bam's {average} is {' and '.join(parts)}: these runs reproduce {reproduced}."


def annealing_verdict(d: Direction, significant: bool, average: str = "GLUE average") -> str:
    """The paper's ablation: annealing λ from 0 to 1 beats a fixed mix of gold and teacher."""
    if d.word == "above":
        outcome = "annealing helped, as the paper reports" + ("" if significant else " (direction only, not significant)")
    elif d.word == "below":
        outcome = "annealing did not help: the paper's ablation is not reproduced"
    else:
        outcome = (f"no difference{' beyond the seed spread' if d.noise is not None else ''}: the paper's "
                   "ablation is not reproduced")
    where = _direction_text("bam_no_anneal (fixed λ)", d)
    if d.noise is None:
        where = where[:-1] + "; one seed per method: no spread to weigh it against)"
    return f"Teacher annealing: bam's {average} is {where}: {outcome}."


def summary_section(results: Results, alpha: float) -> list[str]:
    """The paper's claim (bam beats single and multi), read off these runs in plain words."""
    lines = ["## Summary", ""]
    lacking = {m: [t for t in results.tasks if not results.seeds(m, t)] for m in results.methods}
    lacking = {m: tasks for m, tasks in lacking.items() if tasks}
    if lacking:
        lines += ["**Incomplete grid**: not every method has every task ("
                  + "; ".join(f"{m}: no {', '.join(tasks)}" for m, tasks in lacking.items())
                  + f"); a method without a task has no {results.average_name}, so its comparisons below are task "
                  "by task only.", ""]
    # Seeds, among the methods that have every task (the others were named above).
    seed_sets = {m: results.seeds(m) for m in results.methods if m not in lacking}
    complete = {m: sorted(results.glue_averages(m)) for m in seed_sets}
    if len({tuple(seeds) for seeds in seed_sets.values()}) > 1 or complete != seed_sets:
        held = "; ".join(f"{m}: {seeds}" for m, seeds in seed_sets.items())
        with_every_task = ("" if complete == seed_sets else
                           f"; seeds with every task, which the {results.average_name}s use: "
                           + "; ".join(f"{m}: {seeds}" for m, seeds in complete.items()))
        lines += [f"**Incomplete grid**: the methods hold different seeds ({held}{with_every_task}), so means below "
                  "mix different seed sets; the seed-by-seed counts compare like with like.", ""]
    for warning in (precision_warning(results), device_warning(results)):
        if warning:
            lines += [warning, ""]
    directions, significant_against = {}, {}
    for better, other in CLAIMS:
        line = comparison_line(results, better, other, alpha)
        if line is None:
            lines.append(f"- **{better} vs {other}**: not compared (no shared results).")
            continue
        text, direction, significant = line
        lines.append(text)
        significant_against[other] = significant
        if direction:
            directions[other] = direction
    annealing = comparison_line(results, *ANNEALING, alpha)  # None: an experiment without the ablation
    if annealing:
        lines.append(annealing[0])
    lines.append("")
    if len(directions) == len(CLAIMS):
        lines.append(direction_verdict(directions, significant_against, results.average_name))
    elif len(significant_against) == len(CLAIMS):
        lines.append(no_verdict(results, "the paper's claim", ("bam",) + tuple(o for _, o in CLAIMS)))
    if annealing and annealing[1]:
        lines += ["", annealing_verdict(annealing[1], annealing[2], results.average_name)]
    elif annealing:
        lines += ["", no_verdict(results, "teacher annealing", ANNEALING)]
    return lines


def no_verdict(results: Results, subject: str, methods) -> str:
    """Why a verdict read off the averages cannot be given: which of `methods` have no seed with every task."""
    without = [m for m in methods if not results.glue_averages(m)]
    return (f"No verdict on {subject}: it is read off the {results.average_name}s, and "
            f"{', '.join(without)} {'has' if len(without) == 1 else 'have'} none (no seed with every task).")


def comparison_line(results: Results, better: str, other: str, alpha: float):
    """The summary's line on `better` vs `other`, the GLUE-average direction (None without averages) and
    whether the difference is significant: a task after Holm, or the averages' own one-sided test (one test,
    outside the per-task family, as the significance section reports it); None when the two share no result."""
    comparison = compare(results, better, other, alpha)
    if comparison is None:
        return None
    diffs = {task: float(np.mean(x) - np.mean(y)) for task, x, y, _ in comparison.rows}
    ahead = comparison.tasks_ahead
    behind = [task for task in diffs if task not in ahead]
    text = (f"- **{better} vs {other}**: {better}'s mean task score is higher on {len(ahead)} of {len(diffs)} "
            f"tasks ({', '.join(f'{t} {points(diffs[t])}' for t in ahead) or 'none'})"
            + (f" and not higher on {', '.join(f'{t} {points(diffs[t])}' for t in behind)}" if behind else "")
            + ".")
    direction = None
    average = average_test(results, better, other)
    average_significant = bool(average and average.p_value <= alpha)
    x_avg, y_avg = results.glue_averages(better), results.glue_averages(other)
    if x_avg and y_avg:
        direction = tested_direction(glue_direction(list(x_avg.values()), list(y_avg.values())), average_significant)
        paired = sorted(set(x_avg) & set(y_avg))
        wins = sum(x_avg[s] > y_avg[s] for s in paired)
        text += (f" {results.average_title}: {points(direction.difference)} points (one-sided Mann-Whitney p = "
                 f"{average.p_value:.4g}, {len(x_avg)} vs {len(y_avg)} seeds"
                 f"{'' if average_significant else ', not significant'}); {better} is higher on {wins} of "
                 f"{len(paired)} seeds compared seed by seed.")
    significant = comparison.significant_tasks
    text += (f" Significant after Holm at α = {alpha}: {', '.join(significant)}." if significant else
             f" No task difference is significant after Holm at α = {alpha}.")
    return text, direction, bool(significant) or average_significant
