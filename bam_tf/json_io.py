"""JSON files written atomically: readers see the old file or the new one, never half of one."""

import json
import os
import tempfile


def write_json(path: str, value) -> None:
    write_text(path, json.dumps(value, indent=2, sort_keys=False) + "\n")


def write_text(path: str, text: str) -> None:
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp_path = tempfile.mkstemp(dir=directory, suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp_path, path)
    except BaseException:
        os.unlink(tmp_path)
        raise


def read_json(path: str):
    with open(path, encoding="utf-8") as f:
        return json.load(f)
