"""Where a run's files lie: the one description of a --model_dir, for the pipeline, the experiment
runner, export and the tests.

  teachers/<TASK>/            one fine-tuned single-task model per task (+ its dev_results.json)
  teacher_outputs/<TASK>.npz  each teacher's outputs on its task's training split
  student/                    the multi-task student (+ dev_results.json, training_summary.json)
  dev_results.json            teachers' and student's dev scores side by side
  flags.txt, config.json      the resolved flags (flags.txt works as a --flagfile)
  task_defs.json              with --task_defs: the user tasks' definitions (a changed one is refused)
  tensorboard/<stage>/        summaries for `tensorboard --logdir <model_dir>`
  checkpoints/<stage>/        rolling checkpoints of the stage in progress (removed once it is saved)

Each trained model folder (a teacher, the student) is laid out as bam_tf.trained_model says, and holds
its own DEV_RESULTS and TRAINING_SUMMARY.
"""

from __future__ import annotations

import dataclasses
import os

from bam_tf.user_errors import MissingInputError

DEV_RESULTS = "dev_results.json"
TRAINING_SUMMARY = "training_summary.json"
CONFIG = "config.json"
FLAGS = "flags.txt"
TASK_DEFS_RECORD = "task_defs.json"
# What finished or interrupted stages leave: a model_dir holding any of them cannot change its flags.
STAGE_OUTPUTS = ("teachers", "teacher_outputs", "student", "checkpoints")


@dataclasses.dataclass(frozen=True)
class RunLayout:
    model_dir: str

    def path(self, *parts: str) -> str:
        return os.path.join(self.model_dir, *parts)

    def teacher_dir(self, task_name: str) -> str:
        return self.path("teachers", task_name)

    @property
    def teacher_outputs_dir(self) -> str:
        return self.path("teacher_outputs")

    def teacher_outputs_path(self, task_name: str) -> str:
        return self.path("teacher_outputs", f"{task_name}.npz")

    @property
    def student_dir(self) -> str:
        return self.path("student")

    def checkpoint_dir(self, stage: str) -> str:
        return self.path("checkpoints", stage)

    def tensorboard_dir(self, stage: str) -> str:
        return self.path("tensorboard", stage)

    @property
    def config_path(self) -> str:
        return self.path(CONFIG)

    @property
    def flags_path(self) -> str:
        return self.path(FLAGS)

    @property
    def task_defs_record(self) -> str:
        return self.path(TASK_DEFS_RECORD)

    @property
    def dev_results_path(self) -> str:
        return self.path(DEV_RESULTS)


def resolve_model_dir(model_dir: str) -> str:
    """A trained model folder, or a run dir (then its student/): what export, prediction and submission load."""
    model_dir = os.path.expanduser(model_dir)  # a leading ~ no shell expanded (--model_dir=~/runs/x), as training does
    # bam_tf.trained_model.is_trained_model_dir, without importing keras-hub just to say no.
    for candidate in (model_dir, RunLayout(model_dir).student_dir):
        if os.path.exists(os.path.join(candidate, "model_config.json")):
            return candidate
    if os.path.isfile(model_dir):
        kind = "a Keras file (keras.saving.load_model reads it)" if model_dir.endswith(".keras") else "a file"
        raise MissingInputError(f"{model_dir}: {kind}, not a trained model folder or a run dir")
    if not os.path.isdir(model_dir):
        raise MissingInputError(f"{model_dir}: no such folder (a trained model folder or a run dir)")
    teachers = RunLayout(model_dir).path("teachers")
    trained = sorted(name for name in (os.listdir(teachers) if os.path.isdir(teachers) else [])
                     if not name.endswith((".tmp", ".old"))  # what a killed save leaves
                     and os.path.exists(os.path.join(teachers, name, "model_config.json")))
    hint = f"; its trained teachers: {', '.join(os.path.join(teachers, name) for name in trained)}" if trained else ""
    raise MissingInputError(f"{model_dir}: neither a trained model folder (model_config.json) nor a run dir "
                            f"with a trained student/{hint}")
