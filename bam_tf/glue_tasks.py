"""The GLUE task registry: file layouts, labels, metrics and heads for every task we read or predict.

Tasks of a user's own (`--task_defs=FILE`, read by bam_tf.task_defs) are added with `register_tasks`;
`get_task` and `parse_task_list` then find them like the GLUE tasks.
"""

from __future__ import annotations

import dataclasses
import re
import types
from typing import Iterable, Mapping

import numpy as np

from bam_tf.user_errors import InputError


FILE_FORMATS = ("tsv", "csv", "jsonl")


@dataclasses.dataclass(frozen=True)
class SplitLayout:
    """Where the fields of one split's file live.

    A column is a 0-based index (TSV/CSV), or a name: a header-row column (TSV/CSV with has_header) or
    a JSON key (jsonl). GLUE tasks use indices; user tasks (bam_tf.task_defs) may use either.
    """

    filename: str  # relative to <glue_dir>/<task.directory>, or an absolute path (user tasks)
    # Exact count on every data row; catches silently shifted columns early. None: every row must have
    # as many columns as the file's first row (its header, if any); not used for jsonl.
    num_columns: int | None
    text_a_column: int | str
    text_b_column: int | str | None
    label_column: int | str | None  # None for unlabeled (test) files
    id_column: int | str | None  # official index for submissions; None -> row number
    has_header: bool
    file_format: str = "tsv"  # one of FILE_FORMATS


@dataclasses.dataclass(frozen=True)
class GlueTask:
    """One GLUE task (or evaluation-only variant such as MNLI-mm and AX)."""

    name: str
    directory: str  # folder under glue_dir
    head: str  # task whose output head scores it (MNLI-mm and AX reuse MNLI's)
    labels: tuple[str, ...]  # TSV strings in TFDS ClassLabel order, so class ids agree across sources
    is_regression: bool
    metrics: tuple[str, ...]  # among "mcc", "accuracy", "f1", "pearson", "spearman"
    # Mappings are read-only proxies, which are unhashable; hash=False keeps GlueTask usable as a dict key.
    splits: Mapping[str, SplitLayout] = dataclasses.field(hash=False)  # keys among "train", "dev", "test"
    submission_file: str  # file name the GLUE server expects in the submission zip
    tfds_name: str
    tfds_splits: Mapping[str, str] = dataclasses.field(hash=False)  # our split name -> TFDS split name
    symmetric: bool  # sentence order carries no meaning, so swapping is valid augmentation
    # Regression labels span [low, high]; heads train on (label − low) / (high − low) ∈ [0, 1], as the
    # original BAM code does for STS-B, so a squared error weighs like a classification loss.
    label_range: tuple[float, float] | None = None
    # The file a user task was defined in (bam_tf.task_defs), or the model_config.json it was restored
    # from; None for the GLUE tasks of this registry.
    definition_file: str | None = None

    @property
    def is_user_task(self) -> bool:
        return self.definition_file is not None

    @property
    def num_outputs(self) -> int:
        return 1 if self.is_regression else len(self.labels)

    def training_targets(self, labels: np.ndarray) -> np.ndarray:
        """Gold labels as a head is trained on them: class ids unchanged, regression scaled to [0, 1]."""
        labels = np.asarray(labels, np.float32)
        if not self.is_regression:
            return labels
        low, high = self.label_range
        return ((labels - low) / (high - low)).astype(np.float32)

    def label_scale(self, head_outputs):
        """A regression head's outputs (or teacher scores) back on the label scale, e.g. 0–5 for STS-B.

        Works on NumPy arrays and TF tensors alike (export uses it inside the serving graph).
        """
        low, high = self.label_range
        return head_outputs * (high - low) + low

    @property
    def is_pair(self) -> bool:
        return any(s.text_b_column is not None for s in self.splits.values())

    @property
    def trainable(self) -> bool:
        return "train" in self.splits and self.head == self.name


def _layout(filename: str, num_columns: int, a: int, b: int | None, label: int | None,
            idx: int | None, header: bool = True) -> SplitLayout:
    return SplitLayout(filename, num_columns, a, b, label, idx, header)


_STANDARD_TFDS_SPLITS = types.MappingProxyType({"train": "train", "dev": "validation", "test": "test"})
_NLI_LABELS = ("entailment", "neutral", "contradiction")
_BINARY = ("0", "1")
_RTE_LABELS = ("entailment", "not_entailment")


def _task(name: str, labels: tuple[str, ...], metrics: tuple[str, ...], splits: dict[str, SplitLayout],
          tfds_name: str, *, directory: str | None = None, head: str | None = None,
          submission_file: str | None = None, tfds_splits: Mapping[str, str] = _STANDARD_TFDS_SPLITS,
          symmetric: bool = False, label_range: tuple[float, float] | None = None) -> GlueTask:
    if (label_range is None) != bool(labels):
        raise ValueError(f"{name}: a regression task needs a label_range, a classification task has none")
    return GlueTask(
        name=name,
        directory=directory or name,
        head=head or name,
        labels=labels,
        is_regression=not labels,
        metrics=metrics,
        splits=types.MappingProxyType(splits),
        submission_file=submission_file or f"{name}.tsv",
        tfds_name=tfds_name,
        tfds_splits=types.MappingProxyType(dict(tfds_splits)),
        symmetric=symmetric,
        label_range=label_range,
    )


# Layouts follow the files written by download_glue_data.py; all present tasks were checked against
# real files, MNLI and QQP follow that script's known headers.
_ALL = (
    # CoLA train/dev: source, label, original label (blank), sentence -- no header.
    _task("CoLA", _BINARY, ("mcc",), {
        "train": _layout("train.tsv", 4, 3, None, 1, None, header=False),
        "dev": _layout("dev.tsv", 4, 3, None, 1, None, header=False),
        "test": _layout("test.tsv", 2, 1, None, None, 0),
    }, "glue/cola"),
    _task("SST-2", _BINARY, ("accuracy",), {
        "train": _layout("train.tsv", 2, 0, None, 1, None),
        "dev": _layout("dev.tsv", 2, 0, None, 1, None),
        "test": _layout("test.tsv", 2, 1, None, None, 0),
    }, "glue/sst2"),
    # MRPC train/dev: Quality, #1 ID, #2 ID, #1 String, #2 String (the IDs are per-sentence, not per-pair).
    _task("MRPC", _BINARY, ("f1", "accuracy"), {
        "train": _layout("train.tsv", 5, 3, 4, 0, None),
        "dev": _layout("dev.tsv", 5, 3, 4, 0, None),
        "test": _layout("test.tsv", 5, 3, 4, None, 0),
    }, "glue/mrpc", symmetric=True),
    # STS-B: index, genre, filename, year, old_index, source1, source2, sentence1, sentence2[, score].
    _task("STS-B", (), ("pearson", "spearman"), {
        "train": _layout("train.tsv", 10, 7, 8, 9, 0),
        "dev": _layout("dev.tsv", 10, 7, 8, 9, 0),
        "test": _layout("test.tsv", 9, 7, 8, None, 0),
    }, "glue/stsb", symmetric=True, label_range=(0.0, 5.0)),
    _task("QQP", _BINARY, ("f1", "accuracy"), {
        "train": _layout("train.tsv", 6, 3, 4, 5, 0),
        "dev": _layout("dev.tsv", 6, 3, 4, 5, 0),
        "test": _layout("test.tsv", 3, 1, 2, None, 0),
    }, "glue/qqp"),
    # MNLI: index, promptID, pairID, genre, 4 parse columns, sentence1, sentence2, then
    # label1 + gold_label (train) or label1..label5 + gold_label (dev); test stops after sentence2.
    _task("MNLI", _NLI_LABELS, ("accuracy",), {
        "train": _layout("train.tsv", 12, 8, 9, 11, 0),
        "dev": _layout("dev_matched.tsv", 16, 8, 9, 15, 0),
        "test": _layout("test_matched.tsv", 10, 8, 9, None, 0),
    }, "glue/mnli", submission_file="MNLI-m.tsv",
        tfds_splits={"train": "train", "dev": "validation_matched", "test": "test_matched"}),
    _task("MNLI-mm", _NLI_LABELS, ("accuracy",), {
        "dev": _layout("dev_mismatched.tsv", 16, 8, 9, 15, 0),
        "test": _layout("test_mismatched.tsv", 10, 8, 9, None, 0),
    }, "glue/mnli", directory="MNLI", head="MNLI",
        tfds_splits={"dev": "validation_mismatched", "test": "test_mismatched"}),
    _task("QNLI", _RTE_LABELS, ("accuracy",), {
        "train": _layout("train.tsv", 4, 1, 2, 3, 0),
        "dev": _layout("dev.tsv", 4, 1, 2, 3, 0),
        "test": _layout("test.tsv", 3, 1, 2, None, 0),
    }, "glue/qnli"),
    _task("RTE", _RTE_LABELS, ("accuracy",), {
        "train": _layout("train.tsv", 4, 1, 2, 3, 0),
        "dev": _layout("dev.tsv", 4, 1, 2, 3, 0),
        "test": _layout("test.tsv", 3, 1, 2, None, 0),
    }, "glue/rte"),
    _task("WNLI", _BINARY, ("accuracy",), {
        "train": _layout("train.tsv", 4, 1, 2, 3, 0),
        "dev": _layout("dev.tsv", 4, 1, 2, 3, 0),
        "test": _layout("test.tsv", 3, 1, 2, None, 0),
    }, "glue/wnli"),
    # AX (diagnostic) is scored by the server with R3 (an MCC); no labels exist locally, we only predict.
    _task("AX", _NLI_LABELS, ("mcc",), {
        "test": _layout("diagnostic.tsv", 3, 1, 2, None, 0),
    }, "glue/ax", directory="diagnostic", head="MNLI", tfds_splits={"test": "test"}),
)

TASKS: Mapping[str, GlueTask] = types.MappingProxyType({t.name: t for t in _ALL})


def _normalize(name: str) -> str:
    return "".join(ch for ch in name.lower() if ch.isalnum())


# Spellings seen in other codebases and in the GLUE submission file names.
_ALIASES = {_normalize(t.name): t.name for t in _ALL} | {
    "mnlim": "MNLI",
    "mnlimatched": "MNLI",
    "mnlimismatched": "MNLI-mm",
    "diagnostic": "AX",
}


# Names a user task may not take: they would clash with the export's other signatures.
_RESERVED = {"servingdefault": "serving_default", "tokenids": "token_ids"}
_USER_TASKS: dict[str, GlueTask] = {}  # normalized name -> task, filled by register_tasks


def name_clash(name: str) -> str | None:
    """Why `name` cannot be a new task (it spells a GLUE task or a reserved name), or None."""
    key = _normalize(name)
    if key in _ALIASES:
        return f"it is a spelling of the GLUE task {_ALIASES[key]}"
    if key in _RESERVED:
        return f"{_RESERVED[key]} is the name of another export signature"
    return None


def register_tasks(tasks: Iterable[GlueTask]) -> None:
    """Make user tasks (bam_tf.task_defs) known to get_task and parse_task_list for this process.

    Registering a task equal to one already registered is a no-op. A name that spells a GLUE task
    (case and punctuation ignored) or a user task defined differently is a ValueError; nothing is
    registered then.
    """
    tasks = list(tasks)
    new: dict[str, GlueTask] = {}
    for task in tasks:
        where = f"{task.definition_file}: " if task.definition_file else ""
        if not task.is_user_task:
            raise ValueError(f"{task.name} is a GLUE registry task; only user tasks can be registered")
        clash = name_clash(task.name)
        if clash:
            raise InputError(f"{where}task name {task.name!r} is taken: {clash}")
        key = _normalize(task.name)
        existing = new.get(key) or _USER_TASKS.get(key)
        if existing is not None and existing != task:
            raise InputError(f"{where}task {task.name!r} is already defined differently "
                             f"(by {existing.definition_file}, as {existing.name!r})")
        new[key] = task
    _USER_TASKS.update(new)


def unregister_tasks(names: Iterable[str]) -> None:
    """Forget user tasks by name (names not registered are ignored); for tests and long-lived processes."""
    for name in names:
        _USER_TASKS.pop(_normalize(name), None)


def user_tasks() -> dict[str, GlueTask]:
    """The registered user tasks by name, in registration order."""
    return {task.name: task for task in _USER_TASKS.values()}


def get_task(name: str) -> GlueTask:
    """Look up a task by name, ignoring case and punctuation ("sst-2", "SST2", "stsb"); user tasks too."""
    key = _normalize(name)
    canonical = _ALIASES.get(key)
    if canonical is not None:
        return TASKS[canonical]
    if key in _USER_TASKS:
        return _USER_TASKS[key]
    user = f"; user tasks: {', '.join(user_tasks())}" if _USER_TASKS else \
        " (a task of your own needs --task_defs=FILE, see BUILD.md)"
    raise InputError(f"Unknown GLUE task {name!r}; valid names: {', '.join(TASKS)}{user}")


def parse_task_list(text: str) -> list[GlueTask]:
    """Parse a comma-separated task list such as "rte,mrpc, sts-b", keeping the given order."""
    tasks: list[GlueTask] = []
    for item in text.split(","):
        if not item.strip():
            continue  # tolerate "rte,mrpc," and doubled commas
        task = get_task(item.strip())
        if any(t.name == task.name for t in tasks):
            raise InputError(f"Task {task.name} is listed more than once in {text!r}")
        tasks.append(task)
    if not tasks:
        raise InputError(f"No tasks given in {text!r}; valid names: {', '.join(TASKS)}")
    return tasks


def dev_tasks(task: GlueTask) -> list[GlueTask]:
    """The dev sets that score `task`'s head: its own, then every dev-only set read by that head
    (MNLI: MNLI, MNLI-mm)."""
    others = [t for t in (*TASKS.values(), *_USER_TASKS.values())
              if t.head == task.name and t.name != task.name and "dev" in t.splits]
    return [task] + others


def task_slug(task_name: str) -> str:
    """"STS-B" -> "sts_b": the lower-case name of a task in export signatures, output names and layers."""
    return re.sub(r"[^a-z0-9]", "_", task_name.lower())
