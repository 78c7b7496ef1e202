"""One writer per run directory (or results file): a second process on a busy --model_dir stops at once,
naming the first.

The lock is `fcntl.flock` on `<dir>/.lock`, held for the whole run. The kernel drops it when the holder
exits in any way, kill -9 included, so a lock never outlives its process: re-running after a crash
simply takes it again (and resumes). The file also records who holds it (pid, host, start time,
command) so the refusal can say which process to wait for. Multi-worker runs need no exception: only
the chief writes the model dir; every other worker locks its own scratch folder.
"""

import contextlib
import datetime
import errno
import fcntl
import json
import os
import socket
import sys

from bam_tf.user_errors import InputError

LOCK_FILE = ".lock"


class RunDirBusyError(InputError, RuntimeError):
    pass


@contextlib.contextmanager
def exclusive_run_dir(directory: str):
    """Hold `directory` for this process until the block ends; raise RunDirBusyError if another has it.
    A block that leaves nothing but the lock (a run stopped by an input error before writing anything)
    leaves nothing at all: no lock file, and not `directory` nor the parents it made for it, where empty."""
    made = _missing_folders(directory)
    os.makedirs(directory, exist_ok=True)
    with _exclusive(os.path.join(directory, LOCK_FILE), directory, "directory"):
        try:
            yield
        finally:
            _remove_if_only_the_lock(directory, made)


def _missing_folders(directory: str) -> list[str]:
    """`directory` and its parents that do not exist yet, deepest first."""
    made, folder = [], os.path.abspath(directory)
    while not os.path.isdir(folder) and folder != os.path.dirname(folder):
        made.append(folder)
        folder = os.path.dirname(folder)
    return made


def _remove_empty(folders: list[str]) -> None:
    for folder in folders:  # deepest first; stops at the first one something was written into
        os.rmdir(folder)


def _remove_if_only_the_lock(directory: str, made: list[str]) -> None:
    """Called while still holding the lock, so no other bam_tf process can start writing meanwhile."""
    try:
        if os.listdir(directory) == [LOCK_FILE]:
            os.remove(os.path.join(directory, LOCK_FILE))
            _remove_empty(made)
    except OSError:  # the directory moved or filled up meanwhile: leaving it is always safe
        pass


@contextlib.contextmanager
def exclusive_file(path: str):
    """Hold the file `path` (through `<path>.lock` beside it; e.g. a results file that several experiment
    dirs could append to) for this process until the block ends; RunDirBusyError if another has it. The
    lock file goes when the block ends (a process that opened it meanwhile sees it gone and takes a new one),
    and so do the folders made for it if the block wrote nothing there."""
    made = _missing_folders(os.path.dirname(os.path.abspath(path)))
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with _exclusive(path + LOCK_FILE, path, "file"):
        try:
            yield
        finally:
            with contextlib.suppress(OSError):
                os.remove(path + LOCK_FILE)  # while still held (see _locked_descriptor)
                _remove_empty(made)


@contextlib.contextmanager
def _exclusive(path: str, what: str, kind: str):
    fd = _locked_descriptor(path, what, kind)
    try:
        holder = {"pid": os.getpid(), "host": socket.gethostname(),
                  "since": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
                  "command": " ".join(sys.argv)}
        os.ftruncate(fd, 0)
        os.pwrite(fd, (json.dumps(holder) + "\n").encode("utf-8"), 0)
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the lock


def _locked_descriptor(path: str, what: str, kind: str) -> int:
    """A descriptor of `path` holding its exclusive lock. A holder that wrote nothing removes its lock file
    (and a folder it made) on leaving: if that happens between our open and our lock, a lock on the removed
    file would guard nothing, so make the folder again and lock the file that is there."""
    while True:
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        except FileNotFoundError:
            os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
            continue
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as error:
                if error.errno not in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                    raise
                raise RunDirBusyError(f"{what} is in use by another bam_tf process ({_describe(fd)}); wait for "
                                      f"it to finish or stop it, or use another {kind}") from None
            held, there = os.fstat(fd), _stat_or_none(path)
            if there is not None and (held.st_dev, held.st_ino) == (there.st_dev, there.st_ino):
                return fd
        except BaseException:
            os.close(fd)
            raise
        os.close(fd)


def _stat_or_none(path: str) -> os.stat_result | None:
    try:
        return os.stat(path)
    except FileNotFoundError:
        return None


def _describe(fd: int) -> str:
    try:
        holder = json.loads(os.pread(fd, 65536, 0).decode("utf-8"))
        return f"pid {holder['pid']} on {holder['host']}, since {holder['since']}: {holder['command']}"
    except (OSError, ValueError, KeyError, TypeError):
        return "holder unknown"
