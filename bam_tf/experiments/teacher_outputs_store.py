"""A small folder that keeps each seed's single-task teachers' outputs on the train splits, outside the
experiment dir: DIR/seed<k>/<TASK>.npz (2.2 MB a seed for five GLUE tasks) and DIR/seed<k>/teacher_flags.json.

The experiment dir holds every model (hundreds of MB a seed) and may not survive a move to another
machine; the store is small enough to commit beside the results file. A bam run whose seed's outputs are
in the store needs neither the teachers nor their training (half an hour a seed on a 2-core CPU). The
outputs carry the fingerprint of their training data (a student refuses others); teacher_flags.json
refuses outputs of teachers trained with other flags (the runner leaves out flags that
only act on multi-task runs) or other definitions of the user's own tasks.
"""

from __future__ import annotations

import os
from collections.abc import Callable

from bam_tf import atomic_files
from bam_tf.experiments.methods import changed_settings
from bam_tf.experiments.results_file import ExperimentError
from bam_tf.teacher_outputs import load_teacher_outputs

FLAGS_FILE = "teacher_flags.json"


class TeacherOutputsStore:
    def __init__(self, directory: str):
        self.directory = directory

    def seed_dir(self, seed: int) -> str:
        return os.path.join(self.directory, f"seed{seed}")

    def fetch(self, seed: int, teacher_flags: dict, target_dir: str, tasks: list[str],
              fingerprints: Callable[[str], str]) -> list[str]:
        """Copies the stored outputs of `tasks` that `target_dir` lacks into it; returns those tasks. Outputs
        of teachers with other flags, or computed on other training data than `fingerprints(task)`'s (the
        fingerprint of the task's training data as the runs read it), are refused before anything is copied:
        copied, they would stop every later run in the experiment dir too."""
        source_dir = self.seed_dir(seed)
        wanted = [t for t in missing_outputs(target_dir, tasks) if _has(source_dir, t)]
        if wanted:
            self.check_flags(seed, teacher_flags)
        for task in wanted:
            stored = load_teacher_outputs(_path(source_dir, task)).data_fingerprint
            if stored != fingerprints(task):
                raise ExperimentError(f"{_path(source_dir, task)}: computed on other {task} training data than "
                                      f"this experiment reads (fingerprint {stored[:12]}…, this data "
                                      f"{fingerprints(task)[:12]}…: other files, or the same files changed?); "
                                      "use another --teacher_outputs_store for other data")
        return copy_outputs(source_dir, target_dir, wanted)

    def keep(self, seed: int, teacher_flags: dict, source_dir: str, tasks: list[str]) -> list[str]:
        """Copies the outputs of `tasks` in `source_dir` that the store lacks into it; returns those tasks."""
        target_dir = self.seed_dir(seed)
        new = [t for t in missing_outputs(target_dir, tasks) if _has(source_dir, t)]
        if new:
            flags_path = os.path.join(target_dir, FLAGS_FILE)
            if os.path.exists(flags_path):
                self.check_flags(seed, teacher_flags)
            else:
                atomic_files.write_json(flags_path, teacher_flags)
        return copy_outputs(source_dir, target_dir, new)

    def check_flags(self, seed: int, teacher_flags: dict) -> None:
        """An ExperimentError unless the stored outputs of `seed` come from teachers with `teacher_flags`."""
        flags_path = os.path.join(self.seed_dir(seed), FLAGS_FILE)
        if not os.path.exists(flags_path):
            raise ExperimentError(f"{flags_path} is missing: cannot tell which teachers wrote "
                                  f"{self.seed_dir(seed)}/*.npz")
        details = changed_settings(atomic_files.read_json(flags_path), teacher_flags)
        if details:
            raise ExperimentError(f"{flags_path}: these teacher outputs come from teachers with other flags "
                                  f"({details}); use another --teacher_outputs_store for other settings")


def missing_outputs(directory: str, tasks: list[str]) -> list[str]:
    """The tasks of `tasks` whose <TASK>.npz `directory` lacks."""
    return [t for t in tasks if not _has(directory, t)]


def copy_outputs(source_dir: str, target_dir: str, tasks: list[str]) -> list[str]:
    """Copies <TASK>.npz of the `tasks` that `target_dir` lacks from `source_dir`; returns those tasks."""
    copied = missing_outputs(target_dir, tasks)
    for task in copied:
        atomic_files.copy_file(_path(source_dir, task), _path(target_dir, task))
    return copied


def _path(directory: str, task: str) -> str:
    return os.path.join(directory, f"{task}.npz")


def _has(directory: str, task: str) -> bool:
    return os.path.exists(_path(directory, task))
