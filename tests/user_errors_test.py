"""bam_tf.user_errors: bad input is one line `error: <message>` and exit status 1; a bug keeps its traceback."""

import logging
import subprocess
import sys

import pytest

from bam_tf.user_errors import InputError, MissingInputError, exit_status_of
from support import ROOT


def _raise(error: BaseException):
    def run():
        raise error
    return run


@pytest.mark.parametrize("error", [InputError("--tasks: no such task 'FOO'"),
                                   MissingInputError("run/student: no trained student (run --mode=student first)")])
def test_an_input_error_is_one_line_on_stderr_and_exit_status_1(error, capfd, caplog):
    caplog.set_level(logging.DEBUG)
    assert exit_status_of(_raise(error)) == 1
    out, err = capfd.readouterr()
    assert out == ""
    assert err == f"error: {error}\n"  # once: no absl `E…` log line repeating it
    assert err.count(str(error)) == 1
    assert "Traceback" not in err
    assert not caplog.records


def test_a_run_without_error_is_exit_status_0(capfd):
    assert exit_status_of(lambda: None) == 0
    assert capfd.readouterr() == ("", "")


@pytest.mark.parametrize("bug", [ValueError("an internal invariant broke"), FileNotFoundError("/tmp/x"),
                                 RuntimeError("boom"), KeyError("k")])
def test_any_other_exception_is_a_bug_and_propagates(bug, capfd):
    with pytest.raises(type(bug)) as info:
        exit_status_of(_raise(bug))
    assert info.value is bug
    assert "error:" not in capfd.readouterr().err


def test_ctrl_c_says_how_to_go_on_where_the_command_knows(capfd):
    assert exit_status_of(_raise(KeyboardInterrupt()), on_interrupt="the same command resumes") == 130
    out, err = capfd.readouterr()
    assert (out, err) == ("", "interrupted: the same command resumes\n")
    with pytest.raises(KeyboardInterrupt):  # a command with nothing to say keeps Python's own behaviour
        exit_status_of(_raise(KeyboardInterrupt()))


def test_input_errors_are_still_what_callers_catch():
    assert issubclass(InputError, ValueError)
    missing = MissingInputError("x: not there")
    assert isinstance(missing, FileNotFoundError) and isinstance(missing, InputError)
    assert str(missing) == "x: not there"


def test_the_projects_error_types_are_input_errors_keeping_their_bases():
    from bam_tf.backbone import BackboneError
    from bam_tf.experiments.results_file import ExperimentError
    from bam_tf.export import ExportError
    from bam_tf.glue_reader import GlueDataError
    from bam_tf.run_lock import RunDirBusyError
    from bam_tf.task_defs import TaskDefinitionError
    from bam_tf.teacher_outputs import TeacherOutputsError
    from bam_tf.trainer import CheckpointError, TrainingDivergedError

    for error_type in (BackboneError, ExperimentError, ExportError, GlueDataError, TaskDefinitionError,
                       TeacherOutputsError):
        assert issubclass(error_type, InputError) and issubclass(error_type, ValueError), error_type
    for error_type in (RunDirBusyError, CheckpointError, TrainingDivergedError):
        assert issubclass(error_type, InputError) and issubclass(error_type, RuntimeError), error_type


def test_user_errors_imports_without_tensorflow_or_absl():
    check = ("import sys, bam_tf.user_errors; "
             "assert not {'tensorflow', 'absl', 'keras'} & set(sys.modules), sorted(sys.modules)")
    result = subprocess.run([sys.executable, "-c", check], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]


def test_sigterm_is_handled_as_ctrl_c_while_the_command_runs(capfd):
    import os
    import signal
    import time

    def terminated():
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(5)  # the handler raises in here

    before = signal.getsignal(signal.SIGTERM)
    assert exit_status_of(terminated, on_interrupt="the same command resumes") == 143
    assert capfd.readouterr().err == "interrupted (SIGTERM): the same command resumes\n"
    assert signal.getsignal(signal.SIGTERM) is before  # restored afterwards


def test_an_ignored_sigterm_stays_ignored():
    import os
    import signal

    def terminated():
        os.kill(os.getpid(), signal.SIGTERM)

    before = signal.signal(signal.SIGTERM, signal.SIG_IGN)  # as a launcher may set it
    try:
        assert exit_status_of(terminated, on_interrupt="the same command resumes") == 0
        assert signal.getsignal(signal.SIGTERM) is signal.SIG_IGN
    finally:
        signal.signal(signal.SIGTERM, before)
