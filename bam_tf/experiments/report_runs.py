"""The report's "Runs" section: each (method, seed)'s commit, wall time, precision and device, and what a
seed costs; and the warning when runs computed in different precisions."""

from __future__ import annotations

import numpy as np

from bam_tf.experiments.report_results import Results


def runs_section(results: Results) -> list[str]:
    """One row per (method, seed): the bam_tf commit it ran from, its training steps, wall time, precision and
    device, and when it finished."""
    lines = ["## Runs", "", "Steps: the training steps of the run's models (a `single` run trains one model per "
             "task, and its steps are their sum). Wall time: the seconds the runner spent on that (method, seed), "
             "teachers it had to train included; a resumed run counts only the part after the resume. Precision: "
             "what `--precision` resolved to on the device that ran it, with the steps of each where a resume "
             "changed it (\"not recorded\": a line from before bam_tf recorded them).", "",
             "| method | seed | bam_tf commit | steps | wall time | precision, device | finished |",
             "|---|---:|---|---:|---:|---|---|"]
    for method in results.methods:
        for seed in results.seeds(method):
            record = _run_record(results, method, seed)
            commit = (record.get("git_commit") or "unknown")[:12] + (" +changes" if record.get("git_dirty") else "")
            wall = record.get("wall_time_s")
            wall_text = f"{wall / 60:.1f} min" + (" (resumed)" if record.get("resumed") else "") \
                if isinstance(wall, (int, float)) else "-"
            lines.append(f"| {method} | {seed} | `{commit}` | {_steps_text(results, method, seed)} | {wall_text} | "
                         f"{_precision_and_device(record)} | "
                         f"{record.get('finished_at', '-')} |")
    costs = seed_costs(results)
    if costs:
        lines += ["", "What a seed costs (median wall time of the runs that were not resumed, as recorded: pauses "
                  "and whatever ran beside a run included): "
                  + ", ".join(f"{method} {minutes:.1f} min" for method, minutes in costs.items())
                  + (f"; all {len(costs)} methods {duration_text(sum(costs.values()))}." if len(costs) > 1 else ".")]
    untimed = [method for method in results.methods if method not in costs]
    if untimed:
        lines += ["", f"Not in the cost: {', '.join(untimed)} (no run of {'it' if len(untimed) == 1 else 'them'} "
                  "was timed whole: each was resumed or has no wall time)."]
    return lines


def _steps_text(results: Results, method: str, seed: int) -> str:
    """The steps of each model the (method, seed) trained, summed: a multi-task run's tasks share one model."""
    steps_per_model = {}
    for task in results.tasks:
        record = results.latest.get((method, seed, task))
        if record is not None and isinstance(record.get("training_steps"), int):
            model = record.get("model_dir") or (task if method == "single" else method)
            steps_per_model[model] = record["training_steps"]
    if not steps_per_model:
        return "-"
    total = sum(steps_per_model.values())
    return f"{total}" if len(steps_per_model) == 1 else f"{total} in {len(steps_per_model)} models"


def _precision_and_device(record: dict) -> str:
    if not record.get("precision") and not record.get("device"):
        return "not recorded"
    return f"{record.get('precision') or '?'}, {record.get('device') or '?'}"


def precision_warning(results: Results) -> str | None:
    """Runs that computed in different precisions are not one experiment: say so where it is read."""
    return _spread_warning(results, "precision", "**Mixed precision**: the runs did not all compute in one precision",
                           "a difference between methods may partly be one between precisions (Runs section)")


def device_warning(results: Results) -> str | None:
    """Runs from different machines: the same precision's kernels (and so the numbers) differ between CPUs."""
    return _spread_warning(results, "device", "**Several machines**: the runs did not all run on one device",
                           "the same precision computes slightly differently on different hardware (Runs section)")


def _spread_warning(results: Results, key: str, opening: str, consequence: str) -> str | None:
    """`opening (value: runs; …); consequence.` when the runs' recorded `key` takes more than one value."""
    runs_by_value: dict[str, list[str]] = {}
    for method in results.methods:
        for seed in results.seeds(method):
            value = _run_record(results, method, seed).get(key)
            if value:
                runs_by_value.setdefault(value, []).append(f"{method} {seed}")
    if len(runs_by_value) < 2:
        return None
    return (f"{opening} ("
            + "; ".join(f"{value}: {', '.join(runs)}" for value, runs in sorted(runs_by_value.items()))
            + f"); {consequence}.")


def _run_record(results: Results, method: str, seed: int) -> dict:
    """The first task's line of a (method, seed): commit, wall time and resume flag are per run."""
    return next(results.latest[(method, seed, t)] for t in results.tasks if (method, seed, t) in results.latest)


def duration_text(minutes: float) -> str:
    return f"{minutes:.1f} min" if minutes < 60 else f"{minutes / 60:.1f} h"


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
