"""Helpers shared by tests: the GLUE data location, and loading tools/*.py scripts as modules."""

import importlib.util
import os
import sys

import pytest

GLUE_DIR = os.environ.get("GLUE_DIR", "")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def needs_glue(tasks=("MRPC",), split="train"):
    """Skip unless $GLUE_DIR holds `<task>/<split>.tsv` for every task."""
    present = all(os.path.isfile(os.path.join(GLUE_DIR, task, f"{split}.tsv")) for task in tasks)
    return pytest.mark.skipif(not present, reason=f"GLUE_DIR={GLUE_DIR!r} lacks {'/'.join(tasks)} {split}.tsv; "
                                                  "set GLUE_DIR to the GLUE data (download_glue_data.py layout)")


def load_tool(name: str):
    """tools/<name>.py as a module (tools/ is scripts, not a package)."""
    spec = importlib.util.spec_from_file_location(f"bam_tools_{name}", os.path.join(ROOT, "tools", f"{name}.py"))
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module
