"""Helpers shared by tests: the GLUE data location and the repository root."""

import contextlib
import dataclasses
import io
import os

import pytest

GLUE_DIR = os.environ.get("GLUE_DIR", "")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def needs_glue(tasks=("MRPC",), split="train"):
    """Skip unless $GLUE_DIR holds `<task>/<split>.tsv` for every task."""
    present = all(os.path.isfile(os.path.join(GLUE_DIR, task, f"{split}.tsv")) for task in tasks)
    return pytest.mark.skipif(not present, reason=f"GLUE_DIR={GLUE_DIR!r} lacks {'/'.join(tasks)} {split}.tsv; "
                                                  "set GLUE_DIR to the GLUE data (download_glue_data.py layout)")


@dataclasses.dataclass
class CliResult:
    returncode: int
    stdout: str
    stderr: str


def run_train_in_process(*argv: str, cwd=None) -> CliResult:
    """`python -m bam_tf.train ARGV` inside this process: the same flag parsing, messages and exit status,
    without a new process importing TensorFlow (5–10 s on a 2-core CPU, most of a tiny run's time).

    What a process boundary itself tests (kill -9, a lock held by another process, start-up, the console
    script) still uses subprocess. Global state a run sets (parsed flags, the Keras precision policy and
    session, log verbosity, the working directory) is restored afterwards.
    """
    import keras
    from absl import app, flags, logging

    from bam_tf import train
    from bam_tf.cli_help import parse_flags

    policy, verbosity, old_cwd = keras.mixed_precision.global_policy(), logging.get_verbosity(), os.getcwd()
    stdout, stderr = io.StringIO(), io.StringIO()
    flags.FLAGS.unparse_flags()
    returncode = 0
    try:
        if cwd is not None:
            os.chdir(cwd)
        with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
            try:
                app.run(train.main, argv=["bam_tf.train", *map(str, argv)], flags_parser=parse_flags)
            except SystemExit as exit_:
                returncode = exit_.code if isinstance(exit_.code, int) else (0 if exit_.code is None else 1)
    finally:
        os.chdir(old_cwd)
        flags.FLAGS.unparse_flags()
        keras.mixed_precision.set_global_policy(policy)
        logging.set_verbosity(verbosity)
        keras.backend.clear_session()
    return CliResult(returncode, stdout.getvalue(), stderr.getvalue())
