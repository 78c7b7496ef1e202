"""Helpers shared by tests: the GLUE data location and the repository root."""

import os

import pytest

GLUE_DIR = os.environ.get("GLUE_DIR", "")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def needs_glue(tasks=("MRPC",), split="train"):
    """Skip unless $GLUE_DIR holds `<task>/<split>.tsv` for every task."""
    present = all(os.path.isfile(os.path.join(GLUE_DIR, task, f"{split}.tsv")) for task in tasks)
    return pytest.mark.skipif(not present, reason=f"GLUE_DIR={GLUE_DIR!r} lacks {'/'.join(tasks)} {split}.tsv; "
                                                  "set GLUE_DIR to the GLUE data (download_glue_data.py layout)")
