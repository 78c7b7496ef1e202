"""The tasks a run can name: the GLUE tasks and the user's own (`--task_defs`), as one explicit object.

A run builds its TaskSet once from its config (`task_set_of`) and hands it to whatever needs to find a
task by name; nothing is registered process-wide, so two runs in one process (the experiment runner,
tests) cannot see each other's tasks. Names are found ignoring case and punctuation ("sst-2", "SST2").
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from bam_tf.glue_tasks import ALIASES, TASKS, name_clash
from bam_tf.task import Task, normalized_name
from bam_tf.user_errors import InputError


def task_list_key(text: str) -> tuple[str, ...]:
    """What a comma-separated task list names, in order, as every TaskSet reads it (case and punctuation
    ignored, GLUE's aliases resolved): equal for "rte, sts-b" and "RTE,STS-B"."""
    keys = [normalized_name(item) for item in text.split(",") if item.strip()]
    return tuple(normalized_name(ALIASES.get(key, key)) for key in keys)


class TaskSet:
    def __init__(self, user_tasks: Iterable[Task] = ()):
        """The GLUE tasks plus `user_tasks`; a name that spells a GLUE task or another user task is an
        InputError naming the definition file."""
        self._user: dict[str, Task] = {}
        for task in user_tasks:
            where = f"{task.definition_file}: " if task.definition_file else ""
            if not task.is_user_task:
                raise ValueError(f"{task.name} is a GLUE task; a TaskSet adds user tasks only")
            clash = name_clash(task.name)
            if clash:
                raise InputError(f"{where}task name {task.name!r} is taken: {clash}")
            existing = self._user.get(normalized_name(task.name))
            if existing is not None and existing != task:
                raise InputError(f"{where}task {task.name!r} is defined twice (by {existing.definition_file}, "
                                 f"as {existing.name!r})")
            self._user[normalized_name(task.name)] = task

    @property
    def user_tasks(self) -> Mapping[str, Task]:
        """The user tasks by name, in definition order."""
        return {task.name: task for task in self._user.values()}

    def get(self, name: str) -> Task:
        """The task called `name`, ignoring case and punctuation; an InputError listing the valid names."""
        key = normalized_name(name)
        if key in ALIASES:
            return TASKS[ALIASES[key]]
        if key in self._user:
            return self._user[key]
        if self._user:
            raise InputError(f"Unknown task {name!r}; your tasks: {', '.join(self.user_tasks)}; GLUE tasks: "
                             f"{', '.join(TASKS)}")
        raise InputError(f"Unknown GLUE task {name!r}; valid names: {', '.join(TASKS)} (a task of your own needs "
                         "--task_defs=FILE, see BUILD.md)")

    def parse_list(self, text: str) -> list[Task]:
        """A comma-separated task list such as "rte,mrpc, sts-b", in the given order."""
        tasks: list[Task] = []
        for item in text.split(","):
            if not item.strip():
                continue  # tolerate "rte,mrpc," and doubled commas
            task = self.get(item.strip())
            if any(t.name == task.name for t in tasks):
                raise InputError(f"Task {task.name} is listed more than once in {text!r}")
            tasks.append(task)
        if not tasks:
            raise InputError(f"No tasks given in {text!r}; valid names: {', '.join(TASKS)}")
        return tasks

    def dev_tasks(self, task: Task) -> list[Task]:
        """The dev sets that score `task`'s head: its own, then every dev-only set read by that head
        (MNLI: MNLI, MNLI-mm)."""
        others = [t for t in (*TASKS.values(), *self._user.values())
                  if t.head == task.name and t.name != task.name and "dev" in t.splits]
        return [task] + others

    def with_stored(self, stored: Iterable[Task], source: str) -> TaskSet:
        """This set plus the user tasks a trained model folder stored (`source`: its model_config.json).

        A task this set already defines is kept -- the current definition decides where data comes from
        and how it is scored -- if its head is the same (bam_tf.task.Task.head_signature); otherwise an
        InputError says how the two differ.
        """
        added = []
        for task in stored:
            current = self._user.get(normalized_name(task.name))
            if current is None:
                added.append(task)
            elif current.name != task.name or current.head_signature() != task.head_signature():
                raise InputError(
                    f"{source}: this model's {task.name} head was trained with {task.head_description()}, but "
                    f"{current.definition_file} defines {current.name} with {current.head_description()}")
        return TaskSet([*self._user.values(), *added]) if added else self


GLUE = TaskSet()


def glue_task(name: str) -> Task:
    """A GLUE task by name, ignoring case and punctuation ("sts-b", "STSB", "mnli-m")."""
    return GLUE.get(name)


def task_set_of(task_defs: str) -> TaskSet:
    """A run's tasks: GLUE's, plus those of its --task_defs file if it names one (their data files are checked
    for the tasks a run uses: bam_tf.task_defs.check_data_files)."""
    if not task_defs:
        return GLUE
    from bam_tf.task_defs import load_task_definitions

    return TaskSet(load_task_definitions(task_defs, check_files=False))
