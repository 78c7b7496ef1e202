"""Task definition files (`--task_defs=FILE`): a user's own tasks as Task objects, without code edits.

A definition file is JSON, or YAML when it ends in .yaml/.yml (read with yaml.safe_load), holding
`{"tasks": [<task>, ...]}`. Each task (BUILD.md, "Adding a task", has a complete example):

  name       letters, digits, "-" and "_", starting with a letter; must not spell a GLUE task or a
             reserved name (serving_default, token_ids, signatures, all)
  files      {train: F, dev: F, test: F}; test is optional. F is a path (relative to the definition
             file's folder unless absolute) or {path: ..., format: ..., <column keys>} to override the
             task's columns for that file (`label: null` marks an unlabeled test file)
  format     (inside a file mapping) tsv, csv or jsonl; default from the extension (.tsv, .csv, .jsonl)
  header     (inside a file mapping, optional) true: the TSV/CSV file's first line is a header row to skip,
             for columns given by index (with names it is implied)
  text_a     column of the first text; text_b (optional) of the second, for sentence-pair tasks
  label      column of the gold label
  id         (optional) column of an example id: the index of test predictions (tools/glue_submission.py);
             read from test files only (train and dev files need no such column)
  labels     the label strings, in the order of the head's classes (f1 scores the second one), or
  regression {min: .., max: ..}: the score range (heads train on (y − min) / (max − min))
  metrics    among accuracy, f1, mcc (classification) and pearson, spearman (regression)
  symmetric  (optional, default false) the pair's order carries no meaning: --swap_pair_order applies

A column is a name -- of a header-row column (TSV/CSV files whose first line names the columns) or a
JSON key (jsonl) -- or a 0-based index for TSV/CSV files without a header row (or with `header: true`).
TSV is read like GLUE (tab-separated, quotes are text); CSV with standard double-quote quoting (fields may
span lines).

Every mistake is a ValueError naming the file and the key at fault, e.g.
`tasks.yaml: tasks[1].metrics: unknown metric 'auc'; choose from accuracy, f1, mcc, pearson, spearman`.
Nothing required has a default.

The parsed tasks carry absolute paths. `definition_of(task)` is the normalised definition (every file
with all its columns) that trained models store in model_config.json and runs in task_defs.json; it
is itself a valid definition, so `tasks_from_definitions` reads it back without the original file.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import types
from typing import Any

from bam_tf import metrics
from bam_tf.glue_tasks import name_clash
from bam_tf.task import FILE_FORMATS, ClassificationTask, RegressionTask, SplitLayout, Task, normalized_name
from bam_tf.user_errors import InputError

SPLITS = ("train", "dev", "test")
REQUIRED_SPLITS = ("train", "dev")
CLASSIFICATION_METRICS = ("accuracy", "f1", "mcc")
REGRESSION_METRICS = ("pearson", "spearman")
assert sorted(CLASSIFICATION_METRICS + REGRESSION_METRICS) == sorted(metrics.METRIC_FUNCTIONS)

COLUMN_KEYS = ("text_a", "text_b", "label", "id")
TASK_KEYS = ("name", "files", *COLUMN_KEYS, "labels", "regression", "metrics", "symmetric")
FILE_KEYS = ("path", "format", "header", *COLUMN_KEYS)
_EXTENSIONS = {".tsv": "tsv", ".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl"}
_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_-]{0,63}")


class TaskDefinitionError(InputError):
    """A bad task definition; the message is "<file>: <key>: <problem>"."""

    def __init__(self, source: str, key: str, message: str):
        super().__init__(f"{source}: {key}: {message}" if key else f"{source}: {message}")
        self.source, self.key = source, key


# ---- reading a definition file ------------------------------------------------------------------------
def load_task_definitions(path: str, check_files: bool = True) -> list[Task]:
    """The tasks of a definition file, validated (with check_files, every task's data files must exist).
    A run's own record (<model_dir>/task_defs.json, run_record) is one too: the definitions it was made with."""
    document = _read_document(path)
    if isinstance(document, dict) and set(document) == {"task_defs", "sha256", "tasks"}:
        document = {"tasks": document["tasks"]}
    return tasks_from_definitions(document, source=path, base_dir=os.path.dirname(os.path.abspath(path)),
                                  check_files=check_files)


def check_data_files(task: Task) -> None:
    """A user task's data files exist. A run checks the tasks it uses, so that a shared definition file with
    one task whose data is not downloaded does not stop runs of the others."""
    for split, layout in task.splits.items():
        problem = _missing_file_problem(layout.filename)
        if problem:
            raise TaskDefinitionError(task.definition_file, f"{task.name}.files.{split}", problem)


def _missing_file_problem(path: str) -> str | None:
    if os.path.exists(path) and not os.path.isfile(path):
        return f"{path}: not a regular file"
    return None if os.path.isfile(path) else f"{path}: no such file"


def _read_document(path: str) -> Any:
    extension = os.path.splitext(path)[1].lower()
    if extension not in (".json", ".yaml", ".yml"):
        raise TaskDefinitionError(path, "", "a task definition file ends in .json, .yaml or .yml")
    try:
        with open(path, encoding="utf-8-sig") as f:  # -sig: a byte-order mark (Windows editors) is dropped
            text = f.read()
    except FileNotFoundError:
        raise TaskDefinitionError(path, "", "no such file (--task_defs)") from None
    except (OSError, UnicodeDecodeError) as error:
        raise TaskDefinitionError(path, "", f"cannot read file: {error}") from None
    if extension == ".json":
        try:
            return json.loads(text, object_pairs_hook=_json_object_without_duplicates)
        except json.JSONDecodeError as error:
            raise TaskDefinitionError(path, "", f"not valid JSON: {error.msg} (line {error.lineno}, "
                                                f"column {error.colno})") from None
        except _DuplicateKey as error:
            raise TaskDefinitionError(path, "", f"key {error.args[0]!r} appears twice in one object") from None
    import yaml

    try:
        document = yaml.load(text, Loader=_strict_safe_loader(yaml))  # safe_load, plus duplicate-key errors
    except yaml.YAMLError as error:
        raise TaskDefinitionError(path, "", f"not valid YAML: {error}") from None
    return _labels_as_written(document)


class _DuplicateKey(ValueError):
    pass


def _json_object_without_duplicates(pairs):
    result = {}
    for key, value in pairs:
        if key in result:
            raise _DuplicateKey(key)
        result[key] = value
    return result


def _strict_safe_loader(yaml):
    """yaml.SafeLoader that rejects a key given twice in one mapping (safe_load keeps the last silently)."""

    class StrictSafeLoader(yaml.SafeLoader):
        def construct_yaml_int(self, node):
            return _YamlInt(super().construct_yaml_int(node), node.value)

        def construct_mapping(self, node, deep=False):
            seen = set()
            for key_node, _ in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":  # `<<: *anchor`: merged by the base class, whose
                    continue                                     # explicit keys win over merged ones
                key = self.construct_object(key_node, deep=deep)
                if isinstance(key, (str, int, float, bool)) or key is None:
                    if key in seen:
                        raise yaml.constructor.ConstructorError(
                            None, None, f"key {key!r} appears twice in one mapping", key_node.start_mark)
                    seen.add(key)
            return super().construct_mapping(node, deep=deep)

    StrictSafeLoader.add_constructor("tag:yaml.org,2002:int", StrictSafeLoader.construct_yaml_int)
    return StrictSafeLoader


class _YamlInt(int):
    """A YAML integer that remembers how it was written, until _labels_as_written."""

    def __new__(cls, value: int, text: str):
        number = super().__new__(cls, value)
        number.text = text
        return number


def _labels_as_written(node: Any, key: Any = None) -> Any:
    """The document with plain ints, except that integers in a `labels` list become the strings they were
    written as: `labels: [010, +1]` names the labels "010" and "+1", not YAML's numbers 8 and 1."""
    if isinstance(node, dict):
        return {k: _labels_as_written(v, k) for k, v in node.items()}
    if isinstance(node, list):
        if key == "labels":
            return [item.text if isinstance(item, _YamlInt) else _labels_as_written(item) for item in node]
        return [_labels_as_written(item) for item in node]
    return int(node) if isinstance(node, _YamlInt) else node


# ---- validation -------------------------------------------------------------------------------------
def tasks_from_definitions(document: Any, source: str, base_dir: str = "", check_files: bool = True
                           ) -> list[Task]:
    """Tasks from a parsed definition document ({"tasks": [...]}); every error names source and key.

    base_dir resolves relative file paths; check_files=False skips checking that data files exist (a
    trained model restores its tasks on a machine that may not have the data).
    """
    if not isinstance(document, dict):
        raise TaskDefinitionError(source, "", f"expected a mapping with the key 'tasks', found {_kind(document)}")
    _no_unknown_keys(source, "", document, ("tasks",))
    if "tasks" not in document:
        raise TaskDefinitionError(source, "tasks", "missing (a list of task definitions)")
    entries = document["tasks"]
    if not isinstance(entries, list) or not entries:
        raise TaskDefinitionError(source, "tasks", f"expected a non-empty list of task definitions, "
                                                   f"found {_kind(entries)}")
    tasks: list[Task] = []
    for i, entry in enumerate(entries):
        task = _task(entry, source, f"tasks[{i}]", base_dir, check_files)
        for j, other in enumerate(tasks):
            if normalized_name(other.name) == normalized_name(task.name):
                same = ("" if other.name == task.name else
                        f" ({other.name!r}) once case and punctuation are ignored")
                raise TaskDefinitionError(source, f"tasks[{i}].name", f"{task.name!r} is the name of tasks[{j}]"
                                          f"{same}: each task needs its own name")
        tasks.append(task)
    return tasks


def _task(entry: Any, source: str, key: str, base_dir: str, check_files: bool) -> Task:
    if not isinstance(entry, dict):
        raise TaskDefinitionError(source, key, f"expected a mapping (one task), found {_kind(entry)}")
    _no_unknown_keys(source, key, entry, TASK_KEYS)
    name = _name(entry, source, key)
    if "files" not in entry:
        raise TaskDefinitionError(source, f"{key}.files", "missing (train and dev files, optionally test)")

    has_labels, has_regression = "labels" in entry, "regression" in entry
    if has_labels and has_regression:
        raise TaskDefinitionError(source, key, "give either labels (classification) or regression (a score "
                                               "range), not both")
    if not (has_labels or has_regression):
        raise TaskDefinitionError(source, key, "missing labels or regression: give labels (the label strings, in "
                                               "the order of the head's classes) or regression: {min: .., max: ..}")
    labels = _labels(entry["labels"], source, f"{key}.labels") if has_labels else ()
    label_range = _range(entry["regression"], source, f"{key}.regression") if has_regression else None
    task_metrics = _metrics(entry, source, key, labels)

    splits = _splits(entry, source, key, base_dir, check_files)
    is_pair = splits["train"].text_b_column is not None
    symmetric = entry.get("symmetric", False)
    if not isinstance(symmetric, bool):
        raise TaskDefinitionError(source, f"{key}.symmetric", f"expected true or false, found {_kind(symmetric)}")
    if symmetric and not is_pair:
        raise TaskDefinitionError(source, f"{key}.symmetric", "only a sentence-pair task (with text_b) can be "
                                                              "symmetric")
    common = dict(name=name, directory=base_dir, head=name, metrics=task_metrics,
                  splits=types.MappingProxyType(splits), submission_file=f"{name}.tsv", symmetric=symmetric,
                  definition_file=source)
    if label_range is not None:
        return RegressionTask(label_range=label_range, **common)
    return ClassificationTask(labels=labels, **common)


def _name(entry: dict, source: str, key: str) -> str:
    if "name" not in entry:
        raise TaskDefinitionError(source, f"{key}.name", "missing (the task's name, as --tasks spells it)")
    name = entry["name"]
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise TaskDefinitionError(source, f"{key}.name", f"{name!r} is not a valid task name: start with a letter, "
                                                         "then letters, digits, '-' or '_' (at most 64)")
    clash = name_clash(name)
    if clash:
        raise TaskDefinitionError(source, f"{key}.name", f"{name!r} is taken: {clash}")
    return name


def _labels(value: Any, source: str, key: str) -> tuple[str, ...]:
    if not isinstance(value, list) or len(value) < 2:
        raise TaskDefinitionError(source, key, f"expected a list of at least 2 label strings, found {_kind(value)}")
    labels = []
    for i, label in enumerate(value):
        # JSON's `[0, 1]` are integers, which name the labels "0" and "1" as well (YAML's arrive as the
        # strings they were written as: _labels_as_written); YAML reads `yes`/`no` as booleans.
        if isinstance(label, int) and not isinstance(label, bool):
            label = str(label)
        if not isinstance(label, str) or not label:
            raise TaskDefinitionError(source, f"{key}[{i}]", f"expected a non-empty string, found {label!r} (quote "
                                                             "it in YAML)")
        if any(ch in label for ch in "\t\r\n"):
            raise TaskDefinitionError(source, f"{key}[{i}]", f"{label!r} contains a tab or a line break, which "
                                                             "would break tab-separated predictions files")
        if label in labels:
            raise TaskDefinitionError(source, f"{key}[{i}]", f"{label!r} is listed twice")
        labels.append(label)
    return tuple(labels)


def _range(value: Any, source: str, key: str) -> tuple[float, float]:
    if not isinstance(value, dict):
        raise TaskDefinitionError(source, key, f"expected {{min: .., max: ..}}, found {_kind(value)}")
    _no_unknown_keys(source, key, value, ("min", "max"))
    bounds = []
    for bound in ("min", "max"):
        if bound not in value:
            raise TaskDefinitionError(source, f"{key}.{bound}", "missing")
        number = value[bound]
        if isinstance(number, bool) or not isinstance(number, (int, float)) or not math.isfinite(number):
            raise TaskDefinitionError(source, f"{key}.{bound}", f"expected a finite number, found {number!r}")
        bounds.append(float(number))
    if not bounds[0] < bounds[1]:
        raise TaskDefinitionError(source, key, f"min ({bounds[0]:g}) must be below max ({bounds[1]:g})")
    return bounds[0], bounds[1]


def _metrics(entry: dict, source: str, key: str, labels: tuple[str, ...]) -> tuple[str, ...]:
    key = f"{key}.metrics"
    if "metrics" not in entry:
        raise TaskDefinitionError(source, key, f"missing; choose from {', '.join(sorted(metrics.METRIC_FUNCTIONS))}")
    value = entry["metrics"]
    if not isinstance(value, list) or not value:
        raise TaskDefinitionError(source, key, f"expected a non-empty list of metric names, found {_kind(value)}")
    fitting = CLASSIFICATION_METRICS if labels else REGRESSION_METRICS
    kind = "a classification task (labels)" if labels else "a regression task"
    for name in value:
        if not isinstance(name, str) or name not in metrics.METRIC_FUNCTIONS:
            raise TaskDefinitionError(source, key, f"unknown metric {name!r}; choose from "
                                                   f"{', '.join(sorted(metrics.METRIC_FUNCTIONS))}")
        if name not in fitting:
            raise TaskDefinitionError(source, key, f"{name!r} does not apply to {kind}; choose from "
                                                   f"{', '.join(fitting)}")
        if name == "f1" and len(labels) != 2:
            raise TaskDefinitionError(source, key, f"f1 is binary (the F1 of the second label) but the task has "
                                                   f"{len(labels)} labels")
    if len(set(value)) != len(value):
        raise TaskDefinitionError(source, key, "a metric is listed twice")
    return tuple(value)


def _splits(entry: dict, source: str, key: str, base_dir: str, check_files: bool) -> dict[str, SplitLayout]:
    files = entry["files"]
    files_key = f"{key}.files"
    if not isinstance(files, dict):
        raise TaskDefinitionError(source, files_key, f"expected a mapping of split to file, found {_kind(files)}")
    _no_unknown_keys(source, files_key, files, SPLITS, what="split")
    for split in REQUIRED_SPLITS:
        if split not in files:
            raise TaskDefinitionError(source, f"{files_key}.{split}", "missing (every task needs train and dev files)")
    layouts = {}
    for split in (s for s in SPLITS if s in files):
        layouts[split] = _layout(entry, files[split], split, source, key, f"{files_key}.{split}", base_dir,
                                 check_files)
    pair = {split: layout.text_b_column is not None for split, layout in layouts.items()}
    for split in layouts:
        if pair[split] != pair["train"]:
            raise TaskDefinitionError(source, f"{files_key}.{split}.text_b", "every file of a task needs text_b, or "
                                      f"none does (train {'has' if pair['train'] else 'has none'})")
    return layouts


def _layout(entry: dict, spec: Any, split: str, source: str, task_key: str, key: str, base_dir: str,
            check_files: bool) -> SplitLayout:
    if isinstance(spec, str):
        spec = {"path": spec}
    if not isinstance(spec, dict):
        raise TaskDefinitionError(source, key, f"expected a path or a mapping with 'path', found {_kind(spec)}")
    _no_unknown_keys(source, key, spec, FILE_KEYS)
    path = spec.get("path")
    if not isinstance(path, str) or not path:
        raise TaskDefinitionError(source, f"{key}.path", f"expected the data file's path, found {path!r}")
    path = os.path.normpath(os.path.join(base_dir, os.path.expanduser(path)))
    if not os.path.isabs(path):
        raise TaskDefinitionError(source, f"{key}.path", f"{path}: not an absolute path (internal: no base_dir)")
    problem = _missing_file_problem(path) if check_files else None
    if problem:
        raise TaskDefinitionError(source, key, problem)

    file_format = spec.get("format")
    if file_format is None:
        extension = os.path.splitext(path)[1].lower()
        if extension not in _EXTENSIONS:
            raise TaskDefinitionError(source, key, f"cannot tell the format of {os.path.basename(path)} from its "
                                                   f"extension; give {{path: ..., format: tsv|csv|jsonl}}")
        file_format = _EXTENSIONS[extension]
    elif file_format not in FILE_FORMATS:
        raise TaskDefinitionError(source, f"{key}.format", f"unknown format {file_format!r}; choose from "
                                                           f"{', '.join(FILE_FORMATS)}")

    columns = {}
    for column_key in COLUMN_KEYS:  # a file's own mapping overrides the task's columns
        owner, owner_key = (spec, key) if column_key in spec else (entry, task_key)
        if column_key not in owner:
            if column_key in ("text_a", "label"):
                raise TaskDefinitionError(source, f"{task_key}.{column_key}", f"missing (the column of "
                                          f"{_COLUMN_ROLES[column_key]}; give it for the task or in every file's "
                                          "mapping)")
            columns[column_key] = None
            continue
        column = owner[column_key]
        if column is None and column_key == "text_a":
            raise TaskDefinitionError(source, f"{owner_key}.text_a", "cannot be null: every example has a first text")
        if column is None and column_key == "label" and split != "test":
            raise TaskDefinitionError(source, f"{owner_key}.label", f"cannot be null for {split}: only a test file "
                                                                    "may be unlabeled")
        if column is not None and (isinstance(column, bool) or not isinstance(column, (str, int))
                                   or column == "" or (isinstance(column, int) and column < 0)):
            raise TaskDefinitionError(source, f"{owner_key}.{column_key}", f"expected a column name or a 0-based "
                                                                           f"column index, found {column!r}")
        columns[column_key] = column
    if split != "test":  # an id only indexes test predictions: train and dev files need no such column
        columns["id"] = None

    used = {k: v for k, v in columns.items() if v is not None}
    named = sorted(k for k, v in used.items() if isinstance(v, str))
    indexed = sorted(k for k, v in used.items() if isinstance(v, int))
    if file_format == "jsonl" and indexed:
        raise TaskDefinitionError(source, key, f"a jsonl file names its columns by JSON key, but "
                                               f"{', '.join(f'{k}: {used[k]}' for k in indexed)} is an index")
    if named and indexed:
        raise TaskDefinitionError(source, key, "columns mix names (" + ", ".join(f"{k}: {used[k]!r}" for k in named)
                                  + ") and indices (" + ", ".join(f"{k}: {used[k]}" for k in indexed) + "); use names "
                                  "for a file whose first line names the columns, indices for one without")
    has_header = file_format != "jsonl" and bool(named)
    if "header" in spec:  # for indexed columns of a file whose first line is a header all the same
        header = spec["header"]
        if not isinstance(header, bool) or (header if file_format == "jsonl" else named and not header):
            problem = (f"expected true or false, found {_kind(header)}" if not isinstance(header, bool) else
                       "a jsonl file has no header row" if file_format == "jsonl" else
                       "columns named by a header row need that header row (header: true, or leave it out)")
            raise TaskDefinitionError(source, f"{key}.header", problem)
        has_header = header
    return SplitLayout(filename=path, num_columns=None, text_a_column=columns["text_a"],
                       text_b_column=columns["text_b"], label_column=columns["label"], id_column=columns["id"],
                       has_header=has_header, file_format=file_format)


_COLUMN_ROLES = {"text_a": "the first text", "label": "the gold label"}


def _no_unknown_keys(source: str, key: str, mapping: dict, valid: tuple[str, ...], what: str = "key") -> None:
    for name in mapping:
        if name not in valid:
            raise TaskDefinitionError(source, f"{key}.{name}" if key else str(name),
                                      f"unknown {what}; valid {what}s: {', '.join(sorted(valid))}")


def _kind(value: Any) -> str:
    return {dict: "a mapping", list: "a list", str: "a string", type(None): "nothing (null)", bool: "a boolean",
            int: "a number", float: "a number"}.get(type(value), type(value).__name__) + (
        f" ({value!r})" if isinstance(value, (str, bool, int, float)) else "")


# ---- the normalised form: model folders and runs ---------------------------------------------------------
def definition_of(task: Task) -> dict:
    """A user task as a JSON-able definition: every file spelled out with all its columns."""
    if not task.is_user_task:
        raise ValueError(f"{task.name} is a GLUE task, not a user-defined one")
    definition: dict[str, Any] = {"name": task.name, "files": {
        split: {"path": layout.filename, "format": layout.file_format, "text_a": layout.text_a_column,
                "text_b": layout.text_b_column, "label": layout.label_column, "id": layout.id_column,
                # only where the columns do not imply it: records written before the key existed stay equal
                **({"header": True} if layout.has_header and _indexed(layout) else {})}
        for split, layout in task.splits.items()}}
    definition.update(task.label_definition())
    definition["metrics"] = list(task.metrics)
    definition["symmetric"] = task.symmetric
    return definition


def _indexed(layout: SplitLayout) -> bool:
    return any(isinstance(column, int) for column in (layout.text_a_column, layout.text_b_column,
                                                      layout.label_column, layout.id_column))


def stored_tasks(definitions: list[dict], source: str) -> list[Task]:
    """The user tasks a model folder stored (model_config.json: `source`), without their data files."""
    return tasks_from_definitions({"tasks": definitions}, source=source, check_files=False) if definitions else []


def run_record(tasks: list[Task], task_defs_path: str) -> dict:
    """What a run stores about its user tasks (<model_dir>/task_defs.json)."""
    with open(task_defs_path, "rb") as f:
        digest = hashlib.sha256(f.read()).hexdigest()
    return {"task_defs": os.path.abspath(task_defs_path), "sha256": digest,
            "tasks": [definition_of(t) for t in tasks if t.is_user_task]}


def record_changes(previous: dict | None, current: dict | None) -> list[str]:
    """How the user tasks of two run records differ, ignoring where files lie (data may move, as --glue_dir
    may; teacher outputs catch changed training data by fingerprint). E.g. ["paraphrase.labels: [...] → [...]"]."""

    def by_name(record):
        return {d["name"]: _without_paths(d) for d in (record or {}).get("tasks", [])}

    before, after = by_name(previous), by_name(current)
    changes = []
    for name in sorted(set(before) | set(after)):
        if name not in before or name not in after:
            changes.append(f"{name}: {'not defined' if name not in before else 'defined'} → "
                           f"{'not defined' if name not in after else 'defined'}")
            continue
        for key in sorted(set(before[name]) | set(after[name])):
            if before[name].get(key) != after[name].get(key):
                changes.append(f"{name}.{key}: {before[name].get(key)!r} → {after[name].get(key)!r}")
    return changes


def _without_paths(definition: dict) -> dict:
    """The definition as far as it changes a run: no file paths, nor the id columns of train and dev files (which
    runs recorded before ids were read from test files only)."""
    result = dict(definition)
    result["files"] = {split: {k: v for k, v in spec.items() if k != "path" and (k != "id" or split == "test")}
                       for split, spec in definition["files"].items()}
    return result
