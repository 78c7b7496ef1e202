"""bam_tf.atomic_files: a file or folder appears whole or not at all."""

import os
import re

import pytest

from bam_tf import atomic_files
from bam_tf.atomic_files import (atomic_directory, atomic_open, copy_file, read_json, replace_directory, write_json,
                                 write_text)
from bam_tf.user_errors import InputError


def test_write_and_read_json_leave_no_temporary_files(tmp_path):
    path = str(tmp_path / "deep" / "x.json")  # folders are created on the way
    write_json(path, {"a": [1, 2]})
    write_json(path, {"a": 3})  # overwrites
    assert read_json(path) == {"a": 3}
    assert os.listdir(tmp_path / "deep") == ["x.json"]


def test_a_failed_write_keeps_the_old_file_and_leaves_nothing_behind(tmp_path):
    path = str(tmp_path / "x.txt")
    write_text(path, "old")
    with pytest.raises(RuntimeError):
        with atomic_open(path) as f:
            f.write("half of the new")
            raise RuntimeError("killed mid-write")
    assert open(path, encoding="utf-8").read() == "old"
    assert os.listdir(tmp_path) == ["x.txt"]


def test_binary_files_and_mode_check(tmp_path):
    path = str(tmp_path / "x.bin")
    with atomic_open(path, "wb") as f:
        f.write(b"\x00\x01")
    assert open(path, "rb").read() == b"\x00\x01"
    with pytest.raises(ValueError, match="mode 'w' or 'wb'"):
        with atomic_open(path, "a"):
            pass


def test_atomic_directory_replaces_the_old_folder_only_on_success(tmp_path):
    target = str(tmp_path / "model")
    with atomic_directory(target) as tmp:
        open(os.path.join(tmp, "weights"), "w").write("v1")
    with pytest.raises(RuntimeError):
        with atomic_directory(target) as tmp:
            open(os.path.join(tmp, "weights"), "w").write("v2, half")
            raise RuntimeError("crash")
    assert open(os.path.join(target, "weights")).read() == "v1"
    with atomic_directory(target) as tmp:
        open(os.path.join(tmp, "weights"), "w").write("v2")
    assert open(os.path.join(target, "weights")).read() == "v2"
    assert os.listdir(tmp_path) == ["model"]


def test_replace_directory_swaps_in_the_new_folder_and_removes_the_old(tmp_path):
    target, new = tmp_path / "model", tmp_path / "model.tmp"
    target.mkdir()
    (target / "old.txt").write_text("old")
    new.mkdir()
    (new / "new.txt").write_text("new")
    replace_directory(str(new), str(target))
    assert os.listdir(target) == ["new.txt"] and (target / "new.txt").read_text() == "new"
    assert sorted(os.listdir(tmp_path)) == ["model"]  # neither the temporary folder nor the old one is left
    fresh = tmp_path / "fresh.tmp"
    fresh.mkdir()
    replace_directory(str(fresh), str(tmp_path / "fresh"))  # nothing to replace
    assert sorted(os.listdir(tmp_path)) == ["fresh", "model"]


def test_replace_directory_after_a_swap_killed_half_way(tmp_path):
    target, new = tmp_path / "model", tmp_path / "model.tmp"
    (tmp_path / "model.tmp.old").mkdir()  # the old folder of a swap killed before it was removed
    (tmp_path / "model.tmp.old" / "stale.txt").write_text("stale")
    target.mkdir()
    new.mkdir()
    (new / "new.txt").write_text("new")
    replace_directory(str(new), str(target))
    assert os.listdir(target) == ["new.txt"] and sorted(os.listdir(tmp_path)) == ["model"]


def test_copy_file_makes_the_folder_and_copies_every_byte(tmp_path):
    source = tmp_path / "a.npz"
    source.write_bytes(bytes(range(256)) * 100)
    copy_file(str(source), str(tmp_path / "store" / "seed1" / "a.npz"))
    assert (tmp_path / "store" / "seed1" / "a.npz").read_bytes() == source.read_bytes()
    assert os.listdir(tmp_path / "store" / "seed1") == ["a.npz"]
    with pytest.raises(FileNotFoundError):
        copy_file(str(tmp_path / "missing.npz"), str(tmp_path / "store" / "b.npz"))
    assert not (tmp_path / "store" / "b.npz").exists()


def test_files_and_folders_get_the_modes_open_and_makedirs_would_give(tmp_path):
    # tempfile's 0600 / 0700 would leave results readable by their owner only.
    umask = os.umask(0o022)
    os.umask(umask)
    write_text(str(tmp_path / "x.txt"), "x")
    with open(tmp_path / "plain.txt", "w") as f:
        f.write("x")
    assert (tmp_path / "x.txt").stat().st_mode & 0o777 == (tmp_path / "plain.txt").stat().st_mode & 0o777
    with atomic_directory(str(tmp_path / "model")) as tmp:
        write_text(os.path.join(tmp, "a.json"), "{}")
    os.makedirs(tmp_path / "plain_dir")
    assert (tmp_path / "model").stat().st_mode & 0o777 == (tmp_path / "plain_dir").stat().st_mode & 0o777
    assert (tmp_path / "x.txt").stat().st_mode & 0o777 == 0o666 & ~umask


def test_check_can_write_names_what_is_in_the_way(tmp_path):
    (tmp_path / "a_file").write_text("x")
    (tmp_path / "a_folder").mkdir()
    for path, folder in ((tmp_path / "new.zip", False), (tmp_path / "new" / "deeper" / "x.zip", False),
                         (tmp_path / "a_file", False), (tmp_path / "a_folder", True), (tmp_path / "n" / "m", True)):
        atomic_files.check_can_write(str(path), "--out", folder=folder)  # no error
    cases = [(tmp_path / "a_folder", False, "--out is a folder, not a file"),
             (tmp_path / "a_file", True, "--out is a file, not a folder"),
             (tmp_path / "a_file" / "x" / "y.zip", False, f"--out: {tmp_path / 'a_file'} is a file, so nothing"),
             (tmp_path / "a_file" / "x", True, f"--out: {tmp_path / 'a_file'} is a file, so nothing")]
    for path, folder, message in cases:
        with pytest.raises(InputError, match=re.escape(message)):
            atomic_files.check_can_write(str(path), "--out", folder=folder)
    assert sorted(os.listdir(tmp_path)) == ["a_file", "a_folder"]  # a check writes nothing
