"""The methods an experiment compares, as the flags of the runs that train them.

What each method trains is told in bam_tf/experiments/runner_cli.py (`bam-experiments --help`). Every
method shares the experiment's flags (no per-method tuning); only what defines the method changes.
"""

from __future__ import annotations

import dataclasses
import os

from bam_tf.config import (FLAGS_FREE_TO_CHANGE, MULTI_TASK_ONLY_FLAGS, VALUES_BEFORE_THE_FLAG_EXISTED, BamConfig,
                           changed_flag_names, describe_flag_changes)
from bam_tf.task_defs import record_changes

METHODS = ("single", "multi", "bam", "bam_no_anneal", "multi_to_multi", "born_again_single", "bam_ensemble")
NO_ANNEAL_DISTILL_WEIGHT = 0.5
DISTILL_FROM_SINGLE = {"bam", "bam_no_anneal", "born_again_single", "bam_ensemble"}  # need single's outputs
# Results lines and teacher_flags.json record the definitions of the user's own tasks under this key: the
# flags hold only the definition file's path, and the file may change while its path stays.
USER_TASKS_KEY = "user_tasks"
# Flags that do not change a run's result: a results line with other values of these still counts (the
# model_dir among them: it follows --experiment_dir, which may move).
FREE_FLAGS = FLAGS_FREE_TO_CHANGE


def method_configs(base: BamConfig, method: str, seed: int, run_dir: str, tasks: list[str]) -> dict[str, BamConfig]:
    """Training task → the flags of the run that trains `method`'s model for it (seed `seed`, in `run_dir`).

    Every method but born_again_single trains one run for all tasks, so all tasks map to one config.
    """
    def config(**changes) -> BamConfig:
        values = dict(model_dir=run_dir, seed=seed, mode="student", distill=True, teacher_annealing=True,
                      distill_weight=default("distill_weight"))
        return dataclasses.replace(base, **{**values, **changes})

    if method == "single":
        one = config(mode="teachers")
    elif method == "multi":  # distillation settings back at their defaults, as --nodistill demands
        one = config(distill=False, temperature=default("temperature"))
    elif method == "bam_no_anneal":
        one = config(teacher_annealing=False, distill_weight=NO_ANNEAL_DISTILL_WEIGHT)
    elif method in ("bam", "multi_to_multi", "bam_ensemble"):
        one = config()
    elif method == "born_again_single":
        return {task: config(tasks=task, model_dir=os.path.join(run_dir, task),
                             learning_rate=base.teacher_learning_rate, train_batch_size=base.teacher_batch_size,
                             num_train_epochs=base.teacher_epochs,
                             task_loss_weights=default("task_loss_weights"))  # one task: nothing to weigh
                for task in tasks}
    else:
        raise ValueError(f"unknown method {method!r}; choose from {', '.join(METHODS)}")
    return {task: one for task in tasks}


def default(name: str):
    """BamConfig's default value of flag `name`."""
    return next(f.default for f in dataclasses.fields(BamConfig) if f.name == name)


def changed_flags(recorded: dict, current: dict) -> str:
    """'--name: recorded → current, ...' for the flags, set in both, whose change changes a result ('' if none).

    A flag only one side has is skipped: a results line or a store from before a flag existed still counts,
    unless the flag's default changed when it came (VALUES_BEFORE_THE_FLAG_EXISTED: what such a run used).
    Flags that only act on multi-task runs are skipped for a run of one task (a teacher)."""
    if recorded:  # a record that lists its flags ran with the old value of those it lacks
        recorded = {**VALUES_BEFORE_THE_FLAG_EXISTED, **recorded}
    ignored = FREE_FLAGS | (MULTI_TASK_ONLY_FLAGS if len(str(current.get("tasks", "")).split(",")) == 1 else set())
    return describe_flag_changes(recorded, current, changed_flag_names(recorded, current, ignored))


def changed_settings(recorded: dict, current: dict) -> str:
    """changed_flags, and how the user's own task definitions differ where both sides record them (under
    USER_TASKS_KEY; where their files lie does not count: data may move)."""
    flags_only = [{k: v for k, v in side.items() if k != USER_TASKS_KEY} for side in (recorded, current)]
    details = [changed_flags(*flags_only)]
    if USER_TASKS_KEY in recorded and USER_TASKS_KEY in current:
        details += [f"--task_defs {change}" for change in record_changes(
            {"tasks": recorded[USER_TASKS_KEY]}, {"tasks": current[USER_TASKS_KEY]})]
    return ", ".join(detail for detail in details if detail)
