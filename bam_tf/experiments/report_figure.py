"""The report's figure: per-task bars (mean per method, a dot per seed) and λ over the bam student's training."""

from __future__ import annotations

import numpy as np

from bam_tf import atomic_files
from bam_tf.experiments.report_lambda import annealed_lambda, no_anneal_lambda
from bam_tf.experiments.report_results import Results


def draw_figure(results: Results, path: str, total_steps: tuple[int, str] | None) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    average = "GLUE avg" if results.glue_only else "average"
    columns = results.tasks + [average]
    fig, (bars, lam) = plt.subplots(1, 2, figsize=(max(9.0, 2.2 + 1.5 * len(columns) + 4), 4.8),
                                    gridspec_kw={"width_ratios": [max(2, len(columns)), 1.6]})
    width = 0.8 / max(1, len(results.methods))
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for i, method in enumerate(results.methods):
        offset = (i - (len(results.methods) - 1) / 2) * width
        for j, column in enumerate(columns):
            values = (list(results.glue_averages(method).values()) if column == average
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
    bars.set_title(f"{'GLUE dev' if results.glue_only else 'Dev'} task scores per method")

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
