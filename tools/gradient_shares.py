"""python tools/gradient_shares.py --model_dir=<run dir> [--at=start,end] [--batches=16]

Prints, per task of the run's student, its share of the multi-task update on the shared weights next to its
share of the examples (bam_tf.gradient_shares): which task steers the backbone, and which barely does. Measured
on the run's own training batches, with the fresh model as training starts and/or the trained student.
"""

import sys

from absl import app, flags

from bam_tf.cli_help import flag_error, parse_flags
from bam_tf.gradient_shares import AT, format_gradient_shares, run_gradient_shares
from bam_tf.user_errors import InputError

flags.DEFINE_string("model_dir", None, "A bam_tf run dir (its config.json; --at=end also needs its student/).")
flags.DEFINE_list("at", list(AT), "start: the model as training starts, on the first batches; end: the trained "
                  "student, on the last batches.")
flags.DEFINE_integer("batches", 16, "Batches to measure at each point (one forward and a backward pass per task "
                     "each).", lower_bound=1)
flags.mark_flags_as_required(["model_dir"])
FLAGS = flags.FLAGS


def main(argv) -> int:
    if len(argv) > 1:
        return flag_error(f"unexpected arguments {argv[1:]}; every setting is a --flag")
    unknown = [at for at in FLAGS.at if at not in AT]
    if unknown:
        return flag_error(f"--at: unknown {unknown}; choose from {', '.join(AT)}")
    try:
        for at in FLAGS.at:
            title, shares = run_gradient_shares(FLAGS.model_dir, at, FLAGS.batches)
            print(format_gradient_shares(shares, title), end="\n\n", flush=True)
    except InputError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    app.run(main, flags_parser=parse_flags)
