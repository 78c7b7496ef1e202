"""One writer per run directory (bam_tf.run_lock): a second process stops at once, a killed one frees it."""

import contextlib
import json
import os
import signal
import subprocess
import sys
import time

import pytest

from bam_tf.run_lock import LOCK_FILE, RunDirBusyError, exclusive_file, exclusive_run_dir

HOLDER = r"""
import sys, time
from bam_tf.run_lock import exclusive_run_dir
with exclusive_run_dir(sys.argv[1]):
    print("holding", flush=True)
    time.sleep(120)
"""


def _start_holder(directory):
    process = subprocess.Popen([sys.executable, "-c", HOLDER, directory], stdout=subprocess.PIPE, text=True)
    assert process.stdout.readline().strip() == "holding"
    return process


def test_a_second_holder_is_refused_and_the_first_is_named(tmp_path):
    directory = str(tmp_path / "run")
    with exclusive_run_dir(directory):
        with open(os.path.join(directory, LOCK_FILE), encoding="utf-8") as f:
            holder = json.load(f)
        assert holder["pid"] == os.getpid() and holder["host"] and holder["since"]
        with pytest.raises(RunDirBusyError, match=rf"run is in use by another bam_tf process \(pid {os.getpid()} on "):
            with exclusive_run_dir(directory):
                pass
    with exclusive_run_dir(directory):  # released at the end of the block
        pass


def test_a_block_that_wrote_nothing_leaves_nothing(tmp_path):
    new = tmp_path / "new"
    with pytest.raises(ValueError):
        with exclusive_run_dir(str(new)):
            raise ValueError("an input error before anything is written")
    assert not new.exists()  # neither the lock nor the directory it created
    existing = tmp_path / "existing"
    existing.mkdir()
    with exclusive_run_dir(str(existing)):
        pass
    assert existing.is_dir() and os.listdir(existing) == []  # a directory the user made stays
    with exclusive_run_dir(str(new)):
        (new / "flags.txt").write_text("--tasks=RTE\n")
    assert sorted(os.listdir(new)) == [LOCK_FILE, "flags.txt"]  # a run that wrote something keeps its folder
    deep = tmp_path / "exp" / "single" / "seed0"  # e.g. a run of the experiment runner
    with pytest.raises(ValueError):
        with exclusive_run_dir(str(deep)):
            raise ValueError("a bad dev label")
    assert not (tmp_path / "exp").exists()  # nor the parents it made for it
    (tmp_path / "exp" / "single").mkdir(parents=True)
    (tmp_path / "exp" / "notes.txt").write_text("mine")
    with exclusive_run_dir(str(deep)):
        pass
    assert sorted(os.listdir(tmp_path / "exp")) == ["notes.txt", "single"]  # what was there before stays


def test_a_results_files_lock_goes_when_its_holder_is_done(tmp_path):
    results = tmp_path / "grid.jsonl"
    for outcome in ("finished", "failed"):
        with pytest.raises(ValueError) if outcome == "failed" else contextlib.nullcontext():
            with exclusive_file(str(results)):
                assert (tmp_path / ("grid.jsonl" + LOCK_FILE)).exists()
                with pytest.raises(RunDirBusyError, match="grid.jsonl is in use by another bam_tf process"):
                    with exclusive_file(str(results)):
                        pass
                if outcome == "failed":
                    raise ValueError("an error in a run")
        assert os.listdir(tmp_path) == [], outcome
    deep = tmp_path / "results" / "new" / "grid.jsonl"
    with pytest.raises(ValueError):
        with exclusive_file(str(deep)):
            raise ValueError("missing data: stopped before the first run")
    assert os.listdir(tmp_path) == []  # nor the folders made for it
    with exclusive_file(str(deep)):
        deep.write_text("{}\n")
    assert os.listdir(deep.parent) == ["grid.jsonl"]


def test_a_lock_file_removed_before_the_lock_is_taken_is_not_trusted(tmp_path, monkeypatch):
    # A finishing holder removes its lock file; a process that opened the old file must not hold it.
    import bam_tf.run_lock as run_lock
    directory = tmp_path / "run"
    directory.mkdir()
    lock_path = str(directory / LOCK_FILE)
    real_flock, opened = run_lock.fcntl.flock, []

    def flock_after_the_holder_left(fd, operation):
        if not opened:  # the first attempt: its file disappears (and a new one appears) before the lock
            opened.append(os.fstat(fd).st_ino)
            os.remove(lock_path)
            open(lock_path, "w").close()
        return real_flock(fd, operation)

    monkeypatch.setattr(run_lock.fcntl, "flock", flock_after_the_holder_left)
    with exclusive_run_dir(str(directory)):
        assert os.stat(lock_path).st_ino != opened[0]  # it holds the file that is there
        with open(lock_path, encoding="utf-8") as f:
            assert json.load(f)["pid"] == os.getpid()


def test_kill_9_releases_the_lock(tmp_path):
    directory = str(tmp_path / "run")
    process = _start_holder(directory)
    try:
        with pytest.raises(RunDirBusyError, match=f"pid {process.pid} on "):
            with exclusive_run_dir(directory):
                pass
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()
    with exclusive_run_dir(directory):  # the stale file is there, but nobody holds the lock
        with open(os.path.join(directory, LOCK_FILE), encoding="utf-8") as f:
            assert json.load(f)["pid"] == os.getpid()


def test_the_cli_stops_at_once_on_a_busy_model_dir(tmp_path):
    model_dir = str(tmp_path / "run")
    process = _start_holder(model_dir)
    try:
        started = time.time()
        result = subprocess.run([sys.executable, "-m", "bam_tf.train", f"--model_dir={model_dir}", "--tasks=RTE",
                                 f"--glue_dir={tmp_path}", "--backbone=random:layers=1,hidden=16,heads=2,intermediate=32"],
                                capture_output=True, text=True, timeout=300)
        assert result.returncode == 1, result.stderr[-3000:]
        assert "Traceback" not in result.stderr
        assert f"error: {model_dir} is in use by another bam_tf process (pid {process.pid} on " in result.stderr
        assert result.stderr.count("is in use by another bam_tf process") == 1  # printed once, not logged too
        assert time.time() - started < 120  # stopped before reading data or training anything
        assert sorted(os.listdir(model_dir)) == [LOCK_FILE]  # and wrote nothing
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()


def test_a_folder_removed_by_a_finishing_holder_is_made_again(tmp_path):
    # Between our makedirs and our open, a holder that wrote nothing may remove the folder it made.
    import bam_tf.run_lock as run_lock
    lock_path = tmp_path / "gone" / LOCK_FILE
    fd = run_lock._locked_descriptor(str(lock_path), "gone", "directory")
    try:
        assert lock_path.exists() and os.fstat(fd).st_ino == os.stat(lock_path).st_ino
    finally:
        os.close(fd)
