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

The statistics live in bam_tf/significance.py; this module assembles the report from the sections the
report_* modules write (results, summary, scores, significance, baseline, runs, lambda, figure).
`python tools/report.py --results_file=... --output=...` is its command line.
"""

from __future__ import annotations

import datetime
import os

from bam_tf import atomic_files
from bam_tf.experiments.report_baseline import budget_section
from bam_tf.experiments.report_figure import draw_figure
from bam_tf.experiments.report_lambda import bam_total_steps
from bam_tf.experiments.report_results import Results
from bam_tf.experiments.report_runs import runs_section
from bam_tf.experiments.report_scores import score_tables
from bam_tf.experiments.report_significance import comparison_section
from bam_tf.experiments.report_summary import ANNEALING, CLAIMS, summary_section
from bam_tf.experiments.results_file import ExperimentError, read_results

COMPARISONS = CLAIMS + (ANNEALING,)
DEFAULT_ALPHA = 0.05


def build_report(results_file: str, output: str, alpha: float = DEFAULT_ALPHA, command: str | None = None,
                 baseline_file: str | None = None, notes_file: str | None = None) -> str:
    """Write the Markdown report to `output` and its figure next to it (.png); returns the Markdown.
    With `baseline_file`, also each method against the same method in that results file; with
    `notes_file`, its Markdown (what the results cannot say: the cost estimate made before the runs,
    what ran beside a run) as the report's "Notes" section."""
    # A leading ~ that no shell expanded (--output=~/r.md), as training reads its paths.
    results_file, output = os.path.expanduser(results_file), os.path.expanduser(output)
    baseline_file, notes_file = (path and os.path.expanduser(path) for path in (baseline_file, notes_file))
    # Everything checked before anything is written: a failed report leaves neither file.
    if not 0 < alpha < 1:
        raise ExperimentError(f"--alpha must be a significance level in (0, 1), got {alpha}")
    png = os.path.splitext(output)[0] + ".png"
    if os.path.abspath(png) == os.path.abspath(output):
        raise ExperimentError(f"--output={output}: name the Markdown file (e.g. report.md); the figure goes "
                              "next to it as a .png of the same name")
    for path, name in ((output, f"--output={output}"), (png, f"the figure {png}")):
        atomic_files.check_can_write(path, name, folder=False)
    notes = _read_notes(notes_file) if notes_file else None
    records, warning = _read_existing(results_file, "--results_file")
    if not records:
        raise ExperimentError(f"{results_file}: no results" + (f" ({warning})" if warning else ""))
    warnings = [warning] if warning else []
    results = Results(records)
    if not results.latest:
        raise ExperimentError(f"{results_file}: no result with a finite score")
    warnings += [f"left out, score not a finite number (a diverged run?): {method} seed {seed} {task}"
                 for method, seed, task in results.left_out]
    baseline = None
    if baseline_file:
        baseline_records, baseline_warning = _read_existing(baseline_file, "--baseline_results")
        if not baseline_records:
            raise ExperimentError(f"{baseline_file}: no results to compare with")
        warnings += [baseline_warning] if baseline_warning else []
        baseline = Results(baseline_records)
        warnings += [f"left out of the baseline, score not a finite number: {method} seed {seed} {task}"
                     for method, seed, task in baseline.left_out]
    total_steps = bam_total_steps(results) if "bam" in results.methods else None
    first = next(iter(results.latest.values())).get("flags") or {}
    lines = [f"# Experiment report: {os.path.splitext(os.path.basename(output))[0]}", "",
             f"- results: `{results_file}` ({len(records)} lines, {len(results.latest)} (method, seed, task) results)",
             f"- generated: {datetime.datetime.now(datetime.timezone.utc).isoformat(timespec='seconds')} by "
             f"`python tools/report.py --results_file={results_file} --output={output}"
             + (f" --alpha={alpha!r}" if alpha != DEFAULT_ALPHA else "")
             + (f" --baseline_results={baseline_file}" if baseline_file else "")
             + (f" --notes={notes_file}" if notes_file else "")
             + (f" --command='{command}'" if command else "") + "`",
             f"- bam_tf commit(s): {', '.join(results.commits())}",
             f"- backbone `{first.get('backbone') or 'unknown'}`, tasks {', '.join(results.tasks)}, "
             f"max_train_examples {first.get('max_train_examples') or 'all'}, "
             f"max_eval_examples {first.get('max_eval_examples') or 'all'}",
             f"- methods: {', '.join(f'{m} (seeds {results.seeds(m)})' for m in results.methods)}"]
    for text in warnings + Results.mixed_settings(records):
        lines.append(f"- warning: {text}")
    if command:
        lines.append(f"- produced by: `{command}`")
    lines += [""] + summary_section(results, alpha)
    lines += [""] + score_tables(results)
    lines += ["", "## Significance", "",
              "Each comparison below is its own Holm family, over its tasks; nothing is corrected across the "
              f"comparisons, and each {'GLUE-average' if results.glue_only else 'average'} test is one test "
              "outside every family."]
    for better, other in COMPARISONS:
        lines += comparison_section(results, better, other, alpha)
    if baseline is not None:
        lines += [""] + budget_section(results, baseline, baseline_file, alpha)
    lines += [""] + runs_section(results)
    if notes is not None:
        lines += ["", "## Notes", "", notes.strip()]
    lines += ["", "## Figure", "", f"![per-task dev scores and λ]({os.path.basename(png)})", "",
              "Left: per task, a bar per method at the mean over seeds, one dot per seed. Right: λ, the weight "
              "of the gold label in the bam student's target λ·gold + (1 − λ)·teacher, over training (λ = step / T)."
              + (f" Total steps T = {total_steps[0]}, from {total_steps[1]}." if total_steps else "")]
    text = "\n".join(lines) + "\n"
    draw_figure(results, png, total_steps)
    atomic_files.write_text(output, text)
    return text


def _read_existing(path: str, name: str) -> tuple[list[dict], str | None]:
    if not os.path.isfile(path):
        raise ExperimentError(f"{name}={path}: " + ("a folder, not a results file" if os.path.isdir(path)
                                                     else "no such file"))
    return read_results(path)


def _read_notes(path: str) -> str:
    try:
        with open(path, encoding="utf-8") as f:
            return f.read()
    except (OSError, UnicodeDecodeError) as error:
        raise ExperimentError(f"{path}: cannot read the notes file ({error})") from None
