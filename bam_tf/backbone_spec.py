"""What a `--backbone` value names, without loading anything (the experiment runner's dry run and the flag
comparisons stay TensorFlow-free): the packaged default, a random shape, a local folder or a preset name."""

import os

DEFAULT_BACKBONE = "all-MiniLM-L6-v2"
RANDOM_PREFIX = "random:"


def recorded_backbone(spec: str) -> str:
    """`spec` as a run records it: a local folder as an absolute path (so flags.txt continues the run from any
    folder, and a relative path recorded before compares equal from where it was given), anything else as
    given. A leading ~ is the home folder, as for the other path flags."""
    if spec == DEFAULT_BACKBONE or spec.startswith(RANDOM_PREFIX):
        return spec  # load_backbone reads these before it looks for a folder of that name
    path = os.path.expanduser(spec)
    return os.path.abspath(path) if os.path.isdir(path) else spec
