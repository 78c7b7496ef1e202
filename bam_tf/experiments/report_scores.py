"""The report's "Dev scores" section: every method's task scores and GLUE average, and each task's metrics."""

from __future__ import annotations

from bam_tf.experiments.report_results import Results, mean_std_text, pct


def score_tables(results: Results) -> list[str]:
    lines = ["## Dev scores", "",
             f"{'GLUE task' if results.glue_only else 'Task'} score (mean of the task's metrics: MRPC (F1 + accuracy) "
             "/ 2, STS-B (Pearson + Spearman) / 2), ×100, as mean ± sample std over seeds; n = number of seeds.", "",
             "| method | " + " | ".join(results.tasks) + f" | {results.average_title} |",
             "|---|" + "---:|" * (len(results.tasks) + 1)]
    for method in results.methods:
        cells = []
        for task in results.tasks:
            scores = results.scores(method, task)
            cells.append(f"{mean_std_text(scores)} (n={len(scores)})" if scores else "—")
        averages = list(results.glue_averages(method).values())
        cells.append(f"{mean_std_text(averages)} (n={len(averages)})" if averages else "—")
        lines.append(f"| {method} | " + " | ".join(cells) + " |")
    for method in results.methods:
        lines += ["", f"### {method}", "", "| task | metrics (mean ± std) | score (mean ± std) | n | per seed |",
                  "|---|---|---:|---:|---|"]
        for task in results.tasks:
            records = results.records(method, task)
            if not records:
                continue
            names = list(records[0]["metrics"])
            metric_text = ", ".join(f"{name} {mean_std_text([r['metrics'][name] for r in records])}" for name in names)
            per_seed = ", ".join(f"{r['seed']}: {pct(r['score'])}" for r in records)
            lines.append(f"| {task} | {metric_text} | {mean_std_text(results.scores(method, task))} | "
                         f"{len(records)} | {per_seed} |")
        averages = results.glue_averages(method)
        if averages:
            per_seed = ", ".join(f"{seed}: {pct(value)}" for seed, value in averages.items())
            lines.append(f"| **{results.average_title}** | | {mean_std_text(list(averages.values()))} | "
                         f"{len(averages)} | "
                         f"{per_seed} |")
        walls = {r["seed"]: r.get("wall_time_s") for t in results.tasks for r in results.records(method, t)}
        if all(isinstance(w, (int, float)) for w in walls.values()) and walls:
            lines += ["", f"Wall time per run: {', '.join(f'seed {s}: {w / 60:.1f} min' for s, w in walls.items())}."]
    return lines
