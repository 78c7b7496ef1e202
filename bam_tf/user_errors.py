"""Errors that mean bad input or a run that cannot go on — not a bug: the CLIs print them, no traceback."""

import sys
from collections.abc import Callable

from absl import logging


def exit_status_of(run: Callable[[], object]) -> int:
    """Run `run`; on a user-facing error print its message and return 1, else return 0."""
    from bam_tf.run_lock import RunDirBusyError
    from bam_tf.trainer import CheckpointError, TrainingDivergedError  # imports TensorFlow

    try:
        run()
    except (ValueError, FileNotFoundError, TrainingDivergedError, CheckpointError, RunDirBusyError) as error:
        logging.error("%s", error)
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0
