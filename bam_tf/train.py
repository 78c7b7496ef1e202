"""python -m bam_tf.train --flagfile=configs/quickstart.flags [--mode=all|teachers|predict|student|evaluate]

Runs the BAM pipeline: single-task teachers → teacher outputs on train → teacher-annealed multi-task
student → GLUE dev scores. Every flag is below; BUILD.md explains the data flow.
"""

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # keep TF's C++ start-up chatter out of the user's way

from absl import app, flags, logging  # noqa: E402

from bam_tf import config as config_module  # noqa: E402
from bam_tf.cli_help import flag_error, list_flags_in_help, parse_flags  # noqa: E402
from bam_tf.config import config_from_flags, define_flags  # noqa: E402
from bam_tf.user_errors import InputError, exit_status_of  # noqa: E402

define_flags()
flags.adopt_module_key_flags(config_module)  # so --help lists them, not only --helpfull


def main(argv):
    if len(argv) > 1:
        return flag_error(f"unexpected arguments {argv[1:]}; every setting is a --flag")
    try:
        config = config_from_flags()
    except InputError as error:
        return flag_error(str(error))
    from bam_tf.pipeline import BamPipeline  # imports TensorFlow: only after the flags are known good

    logging.set_verbosity(logging.INFO)
    return exit_status_of(lambda: BamPipeline(config).run(),
                          on_interrupt="finished stages are kept; the same command goes on from the latest checkpoint "
                                       f"(every {config.checkpoint_every} steps) of the stage it stopped in")


def console_main() -> None:
    """The `bam-train` command (pyproject.toml); the same as python -m bam_tf.train."""
    list_flags_in_help(flags.FLAGS, [config_module, sys.modules[__name__]], __doc__)
    app.run(main, flags_parser=parse_flags)


if __name__ == "__main__":
    console_main()
