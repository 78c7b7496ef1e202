"""The experiment results file: JSON lines, one per finished (method, seed, task), only ever appended.

A line counts only once its newline is on disk. Each finished (method, seed) is appended with ONE
write and an fsync, so a kill leaves at most a truncated last line: readers report and ignore it, and
the next append drops it first. Any other unreadable line is an error naming the file and line.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable

from bam_tf.user_errors import InputError

REQUIRED_KEYS = ("method", "seed", "task", "metrics", "score")


class ExperimentError(InputError):
    """Bad experiment settings or results: the runner prints the message and stops."""


def read_results(path: str) -> tuple[list[dict], str | None]:
    """Every complete line of a results file, and a warning when its last line was cut off."""
    if not os.path.exists(path):
        return [], None
    with open(path, "rb") as f:
        data = f.read()
    *lines, tail = data.split(b"\n")
    warning = None
    if tail.strip():
        warning = (f"{path}: ignoring a truncated last line ({len(tail)} bytes without a newline, "
                   f"probably from an interrupted run): {tail[:80].decode('utf-8', 'replace')!r}…")
    records = []
    for number, raw in enumerate(lines, start=1):
        if not raw.strip():
            continue
        try:
            record = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as error:
            raise ExperimentError(f"{path}:{number}: not a JSON line ({error})") from None
        missing = [key for key in REQUIRED_KEYS if not isinstance(record, dict) or key not in record]
        if missing:
            raise ExperimentError(f"{path}:{number}: results line lacks {missing}")
        records.append(record)
    return records, warning


def append_results(path: str, records: list[dict]) -> str | None:
    """Append `records` as JSON lines with ONE write, then fsync. Drops a truncated tail first and
    returns a message saying so (None when there was none)."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    payload = "".join(json.dumps(record, ensure_ascii=False) + "\n" for record in records).encode("utf-8")
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        dropped = _drop_truncated_tail(fd, path)
        written = os.write(fd, payload)
        while written < len(payload):  # a regular file takes it all at once; be safe anyway
            written += os.write(fd, payload[written:])
        os.fsync(fd)
    finally:
        os.close(fd)
    return dropped


def _drop_truncated_tail(fd: int, path: str) -> str | None:
    size = os.fstat(fd).st_size
    if size == 0 or os.pread(fd, 1, size - 1) == b"\n":
        return None
    end = size
    while end > 0:  # find the last newline, scanning back in blocks
        start = max(0, end - 65536)
        block = os.pread(fd, end - start, start)
        newline = block.rfind(b"\n")
        if newline >= 0:
            keep = start + newline + 1
            break
        end = start
    else:
        keep = 0
    os.ftruncate(fd, keep)
    return f"{path}: dropped a truncated last line ({size - keep} bytes) before appending"


def latest_records(records: Iterable[dict]) -> dict[tuple[str, int, str], dict]:
    """The last line per (method, seed, task)."""
    return {(r["method"], int(r["seed"]), r["task"]): r for r in records}
