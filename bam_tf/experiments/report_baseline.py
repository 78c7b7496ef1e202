"""The report's "Against the baseline results" section: each method against the same method in another
results file (e.g. another training budget)."""

from __future__ import annotations

import numpy as np

from bam_tf import significance
from bam_tf.experiments.report_results import Results, mean_std_text, points


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
    here_commits, baseline_commits = results.commits(), baseline.commits()
    if here_commits != baseline_commits:
        lines += [f"The two files come from different bam_tf commits (here: {', '.join(here_commits)}; baseline: "
                  f"{', '.join(baseline_commits)}): a difference below is the settings' and whatever the code "
                  "changed between those commits.", ""]
    shared_tasks = [t for t in results.tasks if t in baseline.tasks]
    if not shared_tasks:
        return lines + [f"The two files share no task (here: {', '.join(results.tasks)}; baseline: "
                        f"{', '.join(baseline.tasks)}): nothing to compare."]
    if shared_tasks != results.tasks or len(shared_tasks) != len(baseline.tasks):
        lines += [f"The two files hold different tasks; their {results.average_name}s below are both over the "
                  f"tasks they share: {', '.join(shared_tasks) or 'none'}.", ""]
    table = ["| method | task | here (n) | baseline (n) | difference | p (two-sided) | Holm-adjusted p |",
             "|---|---|---:|---:|---:|---:|---:|"]
    in_words = []
    for method in methods:
        rows = [(task, results.scores(method, task), baseline.scores(method, task)) for task in results.tasks]
        rows = [(task, x, y, significance.mann_whitney_u(x, y, alternative="two-sided")) for task, x, y in rows
                if x and y]
        adjusted = significance.holm_bonferroni([test.p_value for *_, test in rows]) if rows else []
        for (task, x, y, test), adj in zip(rows, adjusted):
            table.append(f"| {method} | {task} | {mean_std_text(x)} ({len(x)}) | {mean_std_text(y)} ({len(y)}) | "
                         f"{points(np.mean(x) - np.mean(y))} | {test.p_value:.4g} | "
                         f"{adj:.4g}{' **significant**' if adj <= alpha else ''} |")
        differences = [f"{task} {points(np.mean(x) - np.mean(y))}" for task, x, y, _ in rows]
        significant = [task for (task, *_), adj in zip(rows, adjusted) if adj <= alpha]
        words = f"- **{method}**: " + (", ".join(differences) or "no task scored in both files")
        x_avg = list(results.glue_averages(method, shared_tasks).values())
        y_avg = list(baseline.glue_averages(method, shared_tasks).values())
        if x_avg and y_avg:
            test = significance.mann_whitney_u(x_avg, y_avg, alternative="two-sided")
            difference = points(np.mean(x_avg) - np.mean(y_avg))
            table.append(f"| {method} | {results.average_title} | {mean_std_text(x_avg)} ({len(x_avg)}) | "
                         f"{mean_std_text(y_avg)} ({len(y_avg)}) | {difference} | {test.p_value:.4g} | "
                         "(one test) |")
            words += f"; {results.average_name} {difference} (two-sided p = {test.p_value:.4g}, one test)"
        in_words.append(words + (f". Significant after Holm: {', '.join(significant)}." if significant else
                                 f". No task difference is significant after Holm at α = {alpha}."))
    return lines + table + ["", "Here minus baseline, per method:", ""] + in_words
