"""python tools/report.py --results_file=results/<name>.jsonl --output=results/<name>.md [--alpha=0.05] [--command=...]
    [--baseline_results=results/<other>.jsonl] [--notes=results/<name>_notes.md]

Turns the results file of tools/run_experiments.py into a Markdown report and a PNG next to it
(results/<name>.png): summary, dev-score tables, significance tests, figure (bam_tf.experiments.report).
"""

import argparse
import os
import sys

from bam_tf.experiments.report import DEFAULT_ALPHA, build_report
from bam_tf.user_errors import InputError


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--results_file", required=True)
    parser.add_argument("--output", required=True, help="Markdown file; the PNG goes next to it")
    parser.add_argument("--alpha", type=float, default=DEFAULT_ALPHA,
                        help="Significance level of the tests (after Holm's correction); default %(default)s")
    parser.add_argument("--command", default=None,
                        help="The command that produced the results file, quoted in the report so readers can rerun it")
    parser.add_argument("--baseline_results", default=None,
                        help="Another results file (the same methods under other settings, e.g. another training "
                             "budget): the report adds each method's scores against it, task by task")
    parser.add_argument("--notes", default=None,
                        help="A Markdown file included as the report's Notes section: what the results cannot say "
                             "(the cost estimate made before the runs, what ran beside a run)")
    args = parser.parse_args(argv)
    try:
        text = build_report(args.results_file, args.output, args.alpha, args.command, args.baseline_results,
                            args.notes)
    except InputError as error:  # (ExperimentError among them)
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(text)
    print(f"wrote {args.output} and {os.path.splitext(args.output)[0] + '.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
