"""The GLUE tasks: file layouts, labels, metrics and heads for every GLUE task we read or predict.

An immutable table. A run's tasks -- these and a user's own (`--task_defs`) -- are a bam_tf.task_set.TaskSet.
"""

from __future__ import annotations

import types
from typing import Mapping

from bam_tf.task import ClassificationTask, RegressionTask, SplitLayout, Task, normalized_name


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
          symmetric: bool = False, label_range: tuple[float, float] | None = None) -> Task:
    common = dict(name=name, directory=directory or name, head=head or name, metrics=metrics,
                  splits=types.MappingProxyType(splits), submission_file=submission_file or f"{name}.tsv",
                  tfds_name=tfds_name, tfds_splits=types.MappingProxyType(dict(tfds_splits)), symmetric=symmetric)
    if label_range is not None:
        return RegressionTask(label_range=label_range, **common)
    return ClassificationTask(labels=labels, **common)


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

TASKS: Mapping[str, Task] = types.MappingProxyType({t.name: t for t in _ALL})


# Spellings seen in other codebases and in the GLUE submission file names.
ALIASES = {normalized_name(t.name): t.name for t in _ALL} | {
    "mnlim": "MNLI",
    "mnlimatched": "MNLI",
    "mnlimismatched": "MNLI-mm",
    "diagnostic": "AX",
}


# Names a user task may not take: the export's other signatures, the attribute TensorFlow keeps a
# SavedModel's signatures under (saving refuses a signature of that name), and the serving client's word
# for every task at once.
_RESERVED = {"servingdefault": "serving_default is the name of another export signature",
             "tokenids": "token_ids is the name of another export signature",
             "signatures": "signatures is where a SavedModel keeps its signatures",
             "all": "all is the serving client's name for every task at once"}


def name_clash(name: str) -> str | None:
    """Why `name` cannot be a new task (it spells a GLUE task or a reserved name), or None."""
    key = normalized_name(name)
    if key in ALIASES:
        return f"it is a spelling of the GLUE task {ALIASES[key]}"
    if key in _RESERVED:
        return _RESERVED[key]
    return None
