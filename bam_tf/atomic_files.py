"""Files and folders written atomically: readers see the old version or the new one, never half of one.

Everything bam_tf writes for others to read (JSON, npz, PNG, zip, model folders) goes through here:
the content is written to a temporary sibling and renamed into place, which POSIX makes atomic.
"""

import contextlib
import json
import os
import shutil
import tempfile

from bam_tf.user_errors import InputError

# tempfile creates files 0600 and folders 0700; what bam_tf writes gets the modes open() and os.makedirs()
# would give (0666 and 0777 less the umask), read once: os.umask can only be read by setting it.
_UMASK = os.umask(0o022)
os.umask(_UMASK)


def check_can_write(path: str, name: str, *, folder: bool) -> None:
    """InputError unless `path` can be written as a file (or, `folder`, a folder): check_path_kind, and its
    nearest existing folder is one this process may write in. `name` says whose path it is (e.g.
    "--output=x.zip"). Checked before slow work, so a typo does not surface after it."""
    where = check_path_kind(path, name, folder=folder)
    if not os.access(where, os.W_OK | os.X_OK):
        raise InputError(f"{name}: no permission to write in {where}")


def check_path_kind(path: str, name: str, *, folder: bool) -> str:
    """InputError unless what is at `path` is a file (or, `folder`, a folder), or nothing and its nearest
    existing parent is a folder; returns the folder a write would go in (`path` itself for a folder)."""
    path = os.path.abspath(path)
    if os.path.exists(path):
        if os.path.isdir(path) != folder:
            raise InputError(f"{name} is a {'file' if folder else 'folder'}, not a {'folder' if folder else 'file'}")
        return path if folder else os.path.dirname(path)
    where = os.path.dirname(path)
    while not os.path.exists(where):
        where = os.path.dirname(where)
    if not os.path.isdir(where):
        raise InputError(f"{name}: {where} is a file, so nothing can be made below it")
    return where


@contextlib.contextmanager
def atomic_open(path: str, mode: str = "w"):
    """open() for writing whose result appears at `path` only when the block ends without an error."""
    if mode not in ("w", "wb"):
        raise ValueError(f"atomic_open writes whole files: mode 'w' or 'wb', not {mode!r}")
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp_path = tempfile.mkstemp(dir=directory, prefix=os.path.basename(path) + ".", suffix=".tmp")
    try:
        os.fchmod(fd, 0o666 & ~_UMASK)
        with os.fdopen(fd, mode, **({"encoding": "utf-8"} if mode == "w" else {})) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())  # the content on disk before the name: a crash must not leave an empty file there
        os.replace(tmp_path, path)
    except BaseException:
        os.unlink(tmp_path)
        raise


@contextlib.contextmanager
def atomic_directory(path: str):
    """Yields an empty temporary sibling folder; on success it replaces `path` (an old one is removed)."""
    path = os.path.abspath(path)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = tempfile.mkdtemp(dir=os.path.dirname(path), prefix="." + os.path.basename(path) + ".", suffix=".tmp")
    try:
        os.chmod(tmp, 0o777 & ~_UMASK)
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    replace_directory(tmp, path)


def replace_directory(tmp: str, path: str) -> None:
    """Puts the complete folder `tmp` at `path`. An old `path` is renamed aside first and removed last: POSIX
    cannot rename over a non-empty folder, and a reader must never find half of one."""
    old = tmp + ".old"
    shutil.rmtree(old, ignore_errors=True)  # left by a swap killed half-way, it would block the rename below
    if os.path.exists(path):
        os.replace(path, old)
    os.replace(tmp, path)
    shutil.rmtree(old, ignore_errors=True)


def copy_file(source: str, target: str) -> None:
    with open(source, "rb") as original, atomic_open(target, "wb") as copy:
        shutil.copyfileobj(original, copy)


def write_text(path: str, text: str) -> None:
    with atomic_open(path) as f:
        f.write(text)


def write_json(path: str, value) -> None:
    write_text(path, json.dumps(value, indent=2, sort_keys=False) + "\n")


def read_json(path: str):
    with open(path, encoding="utf-8") as f:
        return json.load(f)
