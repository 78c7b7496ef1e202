"""Errors that mean bad input or a run that cannot go on — not a bug: the CLIs print them, no traceback.

Only InputError (and its subclasses: GlueDataError, TaskDefinitionError, BackboneError, TeacherOutputsError,
ExportError, ExperimentError, RunDirBusyError, TrainingDivergedError, CheckpointError, ...) gets the one-line
`error: <message>`; any other exception is a bug and keeps its traceback. Dependency-free on purpose: every
module may import it without import cycles or TensorFlow.
"""

import signal
import sys
import threading
from collections.abc import Callable


class InputError(ValueError):
    """Bad input (a flag, a config value, a data file, a folder) or a run that cannot go on — not a bug."""


class MissingInputError(InputError, FileNotFoundError):
    """An input the run needs is not there (a trained teacher or student, a data folder)."""


class Terminated(KeyboardInterrupt):
    """SIGTERM (a batch system stopping a job, `kill`), raised where Ctrl-C would be: handled the same way."""


def _raise_terminated(signum, frame):
    raise Terminated()


def exit_status_of(run: Callable[[], object], on_interrupt: str | None = None) -> int:
    """Run `run`; on an InputError print `error: <message>` once to stderr and return 1, else return 0.
    With `on_interrupt`, Ctrl-C prints `interrupted: <on_interrupt>` (what happens to the work, how to go
    on) instead of a traceback from deep inside TensorFlow, and returns 130 as a shell would; SIGTERM the
    same, returning 143.

    Any other exception propagates with its traceback."""
    previous = signal.getsignal(signal.SIGTERM)
    # Not where SIGTERM is ignored (a launcher's choice), and only the main thread may set handlers.
    handle = (on_interrupt is not None and previous is not signal.SIG_IGN
              and threading.current_thread() is threading.main_thread())

    def restore():
        if handle:  # None: a handler not set from Python, which Python cannot put back; the default then
            signal.signal(signal.SIGTERM, signal.SIG_DFL if previous is None else previous)

    if handle:
        signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        run()
    except InputError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt as interrupt:
        restore()  # a second SIGTERM while saying so acts as it would have without us
        if on_interrupt is None:
            raise
        terminated = isinstance(interrupt, Terminated)
        print(f"interrupted{' (SIGTERM)' if terminated else ''}: {on_interrupt}", file=sys.stderr)
        return 128 + (signal.SIGTERM if terminated else signal.SIGINT)
    finally:
        restore()
    return 0
