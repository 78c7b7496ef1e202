"""--task_defs: definition files (YAML and JSON) → Tasks, their validation errors, reading a user task's
TSV/CSV/JSON-lines files, the run's task set and averages, and the whole CLI chain on a task that is not in GLUE."""

import copy
import csv
import dataclasses
import json
import os
import pathlib
import re
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import yaml

from bam_tf import metrics, task_defs
from bam_tf.glue_reader import GlueDataError, read_split
from bam_tf.glue_tasks import TASKS
from bam_tf.task_set import GLUE, TaskSet, glue_task, task_set_of
from bam_tf.task_defs import TaskDefinitionError, definition_of, load_task_definitions, record_changes
from support import GLUE_DIR, needs_glue, run_train_in_process

PAIR_YAML = """\
tasks:
  - name: paraphrase
    files:
      train: data/train.csv
      dev: data/dev.jsonl
      test: {path: data/test.tsv, text_a: 1, text_b: 2, id: 0, label: null}
    text_a: sentence1
    text_b: sentence2
    label: quality
    labels: [different, same]
    metrics: [f1, accuracy]
    symmetric: true
  - name: rating
    files: {train: data/rating.tsv, dev: data/rating.tsv}
    text_a: 0
    label: 1
    regression: {min: 1, max: 10}
    metrics: [pearson, spearman]
"""


def _write(root: pathlib.Path, relpath: str, content: str | bytes) -> str:
    path = root / relpath
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content.encode("utf-8") if isinstance(content, str) else content)
    return str(path)


def _data_files(root: pathlib.Path) -> None:
    _write(root, "data/train.csv", 'sentence1,sentence2,quality\n"He said, ""hi""",A greeting.,same\n'
                                   'One,"Two\nlines",different\n')
    _write(root, "data/dev.jsonl", '{"sentence1": "a", "sentence2": "b", "quality": "same"}\n'
                                   '{"sentence1": "c", "sentence2": "d", "quality": "different"}\n')
    _write(root, "data/test.tsv", '7\tx "quoted\ty\n8\tz\tw\n')
    _write(root, "data/rating.tsv", "good film\t9\nbad film\t1.5\n")


@pytest.fixture
def defs(tmp_path):
    _data_files(tmp_path)
    return _write(tmp_path, "tasks.yaml", PAIR_YAML)


# ---- parsing ---------------------------------------------------------------------------------------------
def test_yaml_definition_gives_tasks_with_absolute_paths(defs, tmp_path):
    paraphrase, rating = load_task_definitions(defs)
    assert paraphrase.name == paraphrase.head == "paraphrase" and paraphrase.is_user_task
    assert paraphrase.labels == ("different", "same") and not paraphrase.is_regression
    assert paraphrase.metrics == ("f1", "accuracy") and paraphrase.symmetric and paraphrase.is_pair
    assert paraphrase.trainable and paraphrase.num_outputs == 2 and paraphrase.definition_file == defs
    train, dev, test = (paraphrase.splits[s] for s in ("train", "dev", "test"))
    assert train.filename == str(tmp_path / "data" / "train.csv") and train.file_format == "csv"
    assert train.has_header and (train.text_a_column, train.text_b_column, train.label_column) == (
        "sentence1", "sentence2", "quality")
    assert dev.file_format == "jsonl" and not dev.has_header
    assert test.file_format == "tsv" and not test.has_header and test.label_column is None
    assert (test.text_a_column, test.text_b_column, test.id_column) == (1, 2, 0)
    assert rating.is_regression and rating.label_range == (1.0, 10.0) and rating.num_outputs == 1
    assert not rating.is_pair and list(rating.splits) == ["train", "dev"]
    np.testing.assert_allclose(rating.training_targets(np.array([1.0, 5.5, 10.0])), [0.0, 0.5, 1.0])
    np.testing.assert_allclose(rating.label_scale(np.array([0.0, 0.5, 1.0])), [1.0, 5.5, 10.0])


def test_json_definition_equals_the_yaml_one(defs, tmp_path):
    json_path = _write(tmp_path, "tasks.json", json.dumps(yaml.safe_load(PAIR_YAML)))
    from_yaml, from_json = load_task_definitions(defs), load_task_definitions(json_path)
    assert [dataclasses.replace(t, definition_file=defs) for t in from_json] == from_yaml


def test_the_normalised_definition_reads_back_without_the_data(defs, tmp_path):
    tasks = load_task_definitions(defs)
    stored = json.loads(json.dumps([task_defs.definition_of(t) for t in tasks]))  # as model_config.json keeps it
    for name in os.listdir(tmp_path / "data"):
        os.remove(tmp_path / "data" / name)
    again = task_defs.tasks_from_definitions({"tasks": stored}, "model_config.json", check_files=False)
    assert [dataclasses.replace(t, definition_file=defs, directory=str(tmp_path)) for t in again] == tasks


def test_the_documented_examples_are_valid_definitions(tmp_path):
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    for doc, after in (("BUILD.md", "### A task of your own"), ("README.md", "## Your own tasks")):
        with open(os.path.join(root, doc), encoding="utf-8") as f:
            text = f.read()
        example = text[text.index(after):].split("```yaml\n", 1)[1].split("```", 1)[0]
        folder = tmp_path / doc
        for task in yaml.safe_load(example)["tasks"]:
            for spec in task["files"].values():
                _write(folder, spec if isinstance(spec, str) else spec["path"], "")
        tasks = load_task_definitions(_write(folder, "tasks.yaml", example))
        assert tasks and all(t.is_user_task for t in tasks), doc
        for task in tasks:  # and every file shaped as the example says reads as one example
            for split, layout in task.splits.items():
                pathlib.Path(layout.filename).write_text(_one_example_file(task, layout, split), encoding="utf-8")
                data = read_split("", task, split)
                assert (data.text_a, len(data.ids)) == (["first text"], 1), (doc, task.name, split)


def _one_example_file(task, layout, split) -> str:
    """A data file of one example with the columns `layout` reads (header row, indices or JSON keys); an id
    column in test files only, as the documentation describes them."""
    values = {"text_a": "first text", "text_b": "second text", "label": task.labels[0] if task.labels else
              f"{task.label_range[0]:g}", **({"id": "x1"} if split == "test" else {})}
    columns = {role: getattr(layout, f"{role}_column") for role in values}
    columns = {role: column for role, column in columns.items() if column is not None}
    if layout.file_format == "jsonl":
        return json.dumps({column: values[role] for role, column in columns.items()}) + "\n"
    separator = "\t" if layout.file_format == "tsv" else ","
    if all(isinstance(column, str) for column in columns.values()):
        return separator.join(columns.values()) + "\n" + separator.join(values[r] for r in columns) + "\n"
    fields = ["unused"] * (max(columns.values()) + 1)
    for role, column in columns.items():
        fields[column] = values[role]
    header = separator.join(f"column{i}" for i in range(len(fields))) + "\n" if layout.has_header else ""
    return header + separator.join(fields) + "\n"


# ---- validation: every error names the file and the key --------------------------------------------------
GOOD = {"name": "para", "files": {"train": "data/train.csv", "dev": "data/dev.jsonl"}, "text_a": "sentence1",
        "text_b": "sentence2", "label": "quality", "labels": ["different", "same"], "metrics": ["accuracy"]}


def _with(**changes):
    task = dict(GOOD)
    for key, value in changes.items():
        if value is _DROP:
            task.pop(key)
        else:
            task[key] = value
    return task


_DROP = object()
BAD_TASKS = [
    (_with(metrics=["accuracy", "auc"]), "tasks[1].metrics",
     "unknown metric 'auc'; choose from accuracy, f1, mcc, pearson, spearman"),
    (_with(metrics=["pearson"]), "tasks[1].metrics", "'pearson' does not apply to a classification task"),
    (_with(metrics=[]), "tasks[1].metrics", "expected a non-empty list"),
    (_with(metrics=[{"f1": 1}]), "tasks[1].metrics", "unknown metric {'f1': 1}; choose from"),
    (_with(metrics=_DROP), "tasks[1].metrics", "missing; choose from accuracy, f1"),
    (_with(labels=["a", "b", "c"], metrics=["f1"]), "tasks[1].metrics", "f1 is binary"),
    (_with(name="RTE"), "tasks[1].name", "'RTE' is taken: it is a spelling of the GLUE task RTE"),
    (_with(name="sts_b"), "tasks[1].name", "'sts_b' is taken: it is a spelling of the GLUE task STS-B"),
    (_with(name="token-ids"), "tasks[1].name", "token_ids is the name of another export signature"),
    (_with(name="Signatures"), "tasks[1].name", "signatures is where a SavedModel keeps its signatures"),
    (_with(name="ALL"), "tasks[1].name", "all is the serving client's name for every task at once"),
    (_with(name="my task"), "tasks[1].name", "'my task' is not a valid task name"),
    (_with(name="Other"), "tasks[1].name", "'Other' is the name of tasks[0] ('other') once case and punctuation"),
    (_with(name="other"), "tasks[1].name", "'other' is the name of tasks[0]: each task needs its own name"),
    (_with(name=_DROP), "tasks[1].name", "missing"),
    (_with(lables=["a", "b"]), "tasks[1].lables", "unknown key; valid keys: files, id, label, labels, metrics, "
                                                  "name, regression, symmetric, text_a, text_b"),
    (_with(regression={"min": 0, "max": 1}), "tasks[1]", "give either labels (classification) or regression"),
    (_with(labels=_DROP), "tasks[1]", "missing labels or regression"),
    (_with(labels=_DROP, regression={"min": 5, "max": 5}, metrics=["pearson"]), "tasks[1].regression",
     "min (5) must be below max (5)"),
    (_with(labels=_DROP, regression={"min": 0}, metrics=["pearson"]), "tasks[1].regression.max", "missing"),
    (_with(labels=_DROP, regression={"min": 0, "max": 1, "step": 1}, metrics=["pearson"]),
     "tasks[1].regression.step", "unknown key; valid keys: max, min"),
    (_with(labels=["same", "same"]), "tasks[1].labels[1]", "'same' is listed twice"),
    (_with(labels=[False, True]), "tasks[1].labels[0]", "expected a non-empty string, found False"),
    (_with(labels=["a", "b\tc"]), "tasks[1].labels[1]", "'b\\tc' contains a tab or a line break"),
    (_with(labels=["only"]), "tasks[1].labels", "at least 2 label strings"),
    (_with(text_a=_DROP), "tasks[1].text_a", "missing (the column of the first text"),
    (_with(label=_DROP), "tasks[1].label", "missing (the column of the gold label"),
    (_with(text_a=-1), "tasks[1].text_a", "expected a column name or a 0-based column index, found -1"),
    (_with(text_a=True), "tasks[1].text_a", "expected a column name or a 0-based column index, found True"),
    (_with(files={"train": "data/train.csv"}), "tasks[1].files.dev", "missing (every task needs train and dev"),
    (_with(files={"train": "data/train.csv", "dev": "data/dev.jsonl", "validation": "x.csv"}),
     "tasks[1].files.validation", "unknown split; valid splits: dev, test, train"),
    (_with(files={"train": "data/train.csv", "dev": "data/missing.csv"}), "tasks[1].files.dev",
     "data/missing.csv: no such file"),
    (_with(files={"train": "data/train.csv", "dev": "data"}), "tasks[1].files.dev", "data: not a regular file"),
    (_with(files={"train": "data/train.csv", "dev": {"path": "data/dev.jsonl", "label": None}}),
     "tasks[1].files.dev.label", "cannot be null for dev: only a test file may be unlabeled"),
    (_with(files={"train": "data/train.csv", "dev": {"path": "data/dev.jsonl", "format": "xlsx"}}),
     "tasks[1].files.dev.format", "unknown format 'xlsx'; choose from tsv, csv, jsonl"),
    (_with(files={"train": "data/train.csv", "dev": {"path": "data/dev.jsonl", "sep": ";"}}),
     "tasks[1].files.dev.sep", "unknown key; valid keys: format, header, id, label, path, text_a, text_b"),
    (_with(files={"train": "data/train.csv", "dev": "data/notes.txt"}), "tasks[1].files.dev",
     "cannot tell the format of notes.txt from its extension; give {path: ..., format: tsv|csv|jsonl}"),
    (_with(files={"train": "data/train.csv", "dev": {"path": "data/dev.jsonl", "text_a": 0}}),
     "tasks[1].files.dev", "a jsonl file names its columns by JSON key, but text_a: 0 is an index"),
    (_with(files={"train": {"path": "data/train.csv", "label": 2}, "dev": "data/dev.jsonl"}),
     "tasks[1].files.train", "columns mix names (text_a: 'sentence1', text_b: 'sentence2') and indices (label: 2)"),
    (_with(files={"train": "data/train.csv", "dev": {"path": "data/dev.jsonl", "text_b": None}}),
     "tasks[1].files.dev.text_b", "every file of a task needs text_b, or none does"),
    (_with(text_b=_DROP, symmetric=True), "tasks[1].symmetric", "only a sentence-pair task (with text_b)"),
    (_with(symmetric="yes"), "tasks[1].symmetric", "expected true or false"),
    ("just a string", "tasks[1]", "expected a mapping (one task), found a string"),
]


@pytest.mark.parametrize("bad,key,message", BAD_TASKS, ids=lambda v: v if isinstance(v, str) else None)
def test_a_bad_task_names_the_file_and_the_key(tmp_path, bad, key, message):
    _data_files(tmp_path)
    _write(tmp_path, "data/notes.txt", "x\n")
    first = dict(GOOD, name="other")
    path = _write(tmp_path, "tasks.json", json.dumps({"tasks": [first, bad]}))
    with pytest.raises(TaskDefinitionError) as e:
        load_task_definitions(path)
    assert str(e.value).startswith(f"{path}: {key}: "), str(e.value)
    assert message in str(e.value)


@pytest.mark.parametrize("name,text,message", [
    ("tasks.yaml", "tasks:\n  - name: a\n    name: b\n", "not valid YAML: "),  # a key given twice
    ("tasks.yaml", "tasks: [\n", "not valid YAML: "),
    ("tasks.yaml", "- name: a\n", "expected a mapping with the key 'tasks', found a list"),
    ("tasks.yaml", "task: []\n", "task: unknown key; valid keys: tasks"),
    ("tasks.yaml", "tasks: []\n", "tasks: expected a non-empty list of task definitions"),
    ("tasks.yaml", "tasks: 5\n", "tasks: expected a non-empty list of task definitions, found a number (5)"),
    ("tasks.yaml", "{}\n", "tasks: missing"),
    ("tasks.yaml", "", "expected a mapping with the key 'tasks', found nothing"),
    ("tasks.json", '{"tasks": [], "tasks": []}', "key 'tasks' appears twice in one object"),
    ("tasks.json", '{"tasks": [}', "not valid JSON: "),
    ("tasks.toml", "tasks = []", "a task definition file ends in .json, .yaml or .yml"),
])
def test_a_bad_definition_file_names_itself(tmp_path, name, text, message):
    path = _write(tmp_path, name, text)
    with pytest.raises(TaskDefinitionError, match="^" + re.escape(f"{path}: ")) as e:
        load_task_definitions(path)
    assert message in str(e.value)


def test_yaml_duplicate_key_says_which(tmp_path):
    path = _write(tmp_path, "tasks.yaml", "tasks:\n  - name: a\n    name: b\n")
    with pytest.raises(TaskDefinitionError, match="key 'name' appears twice in one mapping"):
        load_task_definitions(path)


def test_yaml_merge_keys_share_settings_between_tasks(tmp_path):
    _data_files(tmp_path)
    shared = yaml.safe_load(PAIR_YAML)["tasks"][1]
    body = {k: v for k, v in shared.items() if k != "name"}
    text = ("tasks:\n  - &first\n" + textwrap.indent(yaml.safe_dump({"name": "first", **body}), "    ")
            + "  - <<: *first\n    name: second\n")
    first, second = load_task_definitions(_write(tmp_path, "tasks.yaml", text))
    assert (first.name, second.name) == ("first", "second")
    assert {**definition_of(second), "name": "first"} == definition_of(first)
    with pytest.raises(TaskDefinitionError, match="key 'name' appears twice"):  # still refused beside a merge
        load_task_definitions(_write(tmp_path, "tasks.yaml", text + "    name: third\n"))


def test_a_missing_definition_file(tmp_path):
    with pytest.raises(TaskDefinitionError, match=re.escape(f"{tmp_path}/nope.yaml: no such file")):
        load_task_definitions(str(tmp_path / "nope.yaml"))


def test_a_json_definition_file_may_start_with_a_byte_order_mark(tmp_path):
    _data_files(tmp_path)
    document = json.dumps({"tasks": [yaml.safe_load(PAIR_YAML)["tasks"][1]]})
    path = _write(tmp_path, "tasks.json", "\ufeff" + document)  # as Windows Notepad saves UTF-8
    assert [task.name for task in load_task_definitions(path)] == ["rating"]


# ---- the run's task set ------------------------------------------------------------------------------------
def test_a_runs_task_set_finds_its_user_tasks_next_to_glues(defs):
    with pytest.raises(ValueError, match="a task of your own needs --task_defs=FILE"):
        GLUE.get("paraphrase")
    glue_table = dict(TASKS)
    task_set = task_set_of(defs)
    assert task_set.get("Paraphrase") is task_set.get("paraphrase") is task_set.user_tasks["paraphrase"]
    tasks = task_set.parse_list("paraphrase,rte, rating")
    assert [t.name for t in tasks] == ["paraphrase", "RTE", "rating"]
    # a task from the definition file is a user task, a GLUE task is not
    assert [t.is_user_task for t in tasks] == [True, False, True]
    assert task_set.get("RTE") is TASKS["RTE"] and not any(t.is_user_task for t in TASKS.values())
    assert dict(TASKS) == glue_table and "paraphrase" not in TASKS  # the GLUE table is unchanged
    with pytest.raises(ValueError, match="a task of your own needs --task_defs=FILE"):
        GLUE.get("paraphrase")  # nothing process-wide: other runs do not see these tasks
    with pytest.raises(ValueError, match="^Unknown task 'squad'; your tasks: paraphrase, rating; GLUE tasks: CoLA"):
        task_set.get("squad")
    assert task_set_of("") is GLUE


def test_a_task_set_refuses_clashing_names(defs, tmp_path):
    paraphrase = load_task_definitions(defs)[0]
    other = load_task_definitions(_write(tmp_path, "other.yaml", PAIR_YAML.replace("[different, same]",
                                                                                   "[same, different]")))[0]
    with pytest.raises(ValueError, match=re.escape(f"{other.definition_file}: task 'paraphrase' is defined twice")):
        TaskSet([paraphrase, other])
    assert TaskSet([paraphrase, paraphrase]).user_tasks == {"paraphrase": paraphrase}  # the same task twice: once
    with pytest.raises(ValueError, match="a TaskSet adds user tasks only"):
        TaskSet([glue_task("RTE")])


def test_a_stored_head_must_match_the_runs_definition(defs, tmp_path):
    stored = task_defs.stored_tasks([task_defs.definition_of(t) for t in load_task_definitions(defs)],
                                    "model/model_config.json")
    restored = GLUE.with_stored(stored, "model/model_config.json")  # the run defines none: the folder's own
    assert restored.get("rating").definition_file == "model/model_config.json"
    swapped = task_set_of(_write(tmp_path, "swapped.yaml", PAIR_YAML.replace("[different, same]",
                                                                             "[same, different]")))
    with pytest.raises(ValueError, match=r"model/model_config.json: this model's paraphrase head was trained with "
                                         r"labels \['different', 'same'\] on sentence pairs, but .*swapped.yaml "
                                         r"defines paraphrase with labels \['same', 'different'\]"):
        swapped.with_stored(stored, "model/model_config.json")
    same = task_set_of(defs)
    assert same.with_stored(stored, "model/model_config.json").get("paraphrase") is same.get("paraphrase")


def test_run_record_notices_changed_definitions_but_not_moved_files(defs, tmp_path):
    before = task_defs.run_record(load_task_definitions(defs), defs)
    assert task_defs.record_changes(before, before) == []
    record = _write(tmp_path, "task_defs.json", json.dumps(before))  # a run's record is a definition file too
    assert ([task_defs.definition_of(t) for t in load_task_definitions(record)]
            == [task_defs.definition_of(t) for t in load_task_definitions(defs)])
    moved = tmp_path / "moved"
    _data_files(moved)
    moved_defs = _write(moved, "tasks.yaml", PAIR_YAML)
    assert task_defs.record_changes(before, task_defs.run_record(load_task_definitions(moved_defs), moved_defs)) == []
    changed = _write(tmp_path, "changed.yaml", PAIR_YAML.replace("metrics: [f1, accuracy]", "metrics: [mcc]"))
    assert task_defs.record_changes(before, task_defs.run_record(load_task_definitions(changed), changed)) == [
        "paraphrase.metrics: ['f1', 'accuracy'] → ['mcc']"]


def test_tfds_does_not_apply_to_user_tasks(defs):
    from bam_tf.tfds_source import load_tfds_split

    task = load_task_definitions(defs)[0]
    with pytest.raises(ValueError, match="paraphrase is a task of your own .*--data_source=tfds reads only GLUE"):
        load_tfds_split(task, "train")


def test_the_average_counts_user_tasks_and_the_table_says_so(defs):
    scores = {"RTE": {"accuracy": 0.6}, "paraphrase": {"f1": 0.9, "accuracy": 0.7}}
    with pytest.raises(ValueError, match="unknown GLUE task"):
        metrics.glue_average(scores)  # not named as a user task: could be a typo
    user_tasks = task_set_of(defs).user_tasks
    assert metrics.glue_average(scores, user_tasks) == pytest.approx((0.6 + 0.8) / 2)
    table = metrics.format_results_table(scores, user_tasks=user_tasks)
    assert "Average" in table and "GLUE avg" not in table and "70.0" in table
    assert "including the user task(s) paraphrase; it is not a GLUE score" in table
    assert "GLUE avg" in metrics.format_results_table({"RTE": {"accuracy": 0.6}})


# ---- reading the files -----------------------------------------------------------------------------------
def test_reading_csv_jsonl_and_headerless_tsv(defs, tmp_path):
    paraphrase, rating = load_task_definitions(defs)
    train = read_split("", paraphrase, "train")  # no GLUE dir needed
    assert train.text_a == ['He said, "hi"', "One"] and train.text_b == ["A greeting.", "Two\nlines"]
    assert train.labels.tolist() == [1, 0] and train.labels.dtype == np.int32
    assert train.ids == ["train-0", "train-1"] and train.official_index == ["0", "1"]
    assert train.source == str(tmp_path / "data" / "train.csv")
    dev = read_split("/nonexistent", paraphrase, "dev")
    assert dev.text_a == ["a", "c"] and dev.labels.tolist() == [1, 0]
    test = read_split("", paraphrase, "test")
    assert test.labels is None and test.text_a == ['x "quoted', "z"] and test.official_index == ["7", "8"]
    scores = read_split("", rating, "train", max_examples=1)
    assert scores.text_b is None and scores.labels.dtype == np.float32 and scores.labels.tolist() == [9.0]
    assert len(train.with_swapped_pairs()) == 4  # symmetric: --swap_pair_order applies
    assert train.fingerprint() == read_split("", paraphrase, "train").fingerprint()


def test_yaml_integer_labels_are_the_labels_as_written(tmp_path):
    _write(tmp_path, "train.tsv", "a\t010\nb\t+1\n")
    path = _write(tmp_path, "tasks.yaml", "tasks:\n  - {name: codes, files: {train: train.tsv, dev: train.tsv}, "
                                          "text_a: 0, label: 1, labels: [010, +1], metrics: [accuracy]}\n")
    task = load_task_definitions(path)[0]
    assert task.labels == ("010", "+1")  # not YAML's numbers 8 and 1
    assert type(task.splits["train"].text_a_column) is int  # other integers stay plain numbers
    assert read_split("", task, "train").labels.tolist() == [0, 1]


@pytest.mark.parametrize("fmt", ["tsv", "csv"])
def test_a_field_longer_than_csvs_default_limit_is_read(tmp_path, fmt):
    text = "word " * 30_000  # 150,000 characters; Python's csv refuses fields over 131,072 by default
    _write(tmp_path, f"train.{fmt}", f"{text}\tyes\n" if fmt == "tsv" else f"{text},yes\n")
    task = _one_task(tmp_path, {"train": f"train.{fmt}", "dev": f"train.{fmt}"}, text_a=0, label=1)
    assert read_split("", task, "train").text_a == [text]


def _one_task(tmp_path, files, **columns):
    task = {"name": "mine", "files": files, "labels": ["no", "yes"], "metrics": ["accuracy"], **columns}
    return load_task_definitions(_write(tmp_path, "tasks.json", json.dumps({"tasks": [task]})))[0]


CSV_COLUMNS = {"text_a": "s1", "text_b": "s2", "label": "y"}


@pytest.mark.parametrize("content,line,message", [
    ('s1,s2,y\na,b,yes\n"c\nd",e,maybe\n', 3, "unknown mine label 'maybe'; valid labels: no, yes"),
    ("s1,s2,y\na,b,yes\nc,d\n", 3, "expected 3 columns (as many as the first line), found 2"),
    ('s1,s2,y\na,b,yes\n"never closed,b,yes\n', 3, "cannot parse CSV: "),
    # the quote opened on line 2 swallows line 3 up to its first quote: the row to fix is line 2
    ('s1,s2,y\na,"never closed,yes\nc,"d",no\n', 2, "(the row that starts here runs on to line 3: a quote left open here, or the error is on line 3)"),
    ("s1,s2,label\na,b,yes\n", 1, "column 'y' (label) is not in the header row; columns: 's1', 's2', 'label'"),
    ("s1, s2, y\na,b,yes\n", 1, "columns: 's1', ' s2', ' y'; the header's names have spaces around them"),
    ("s1,s2,y,y\na,b,yes,no\n", 1, "column 'y' (label) appears twice in the header row"),
    ("s1,s2,y\na,b,yes\n\nc,d,no\n", 3, "expected 3 columns, found 0 (blank line)"),
    ("s1,s2,y\na,b,yes\n,,\nc,d,no\n", 3, "a row of empty fields (only the file's last lines may be empty)"),
    ("s1,s2,y\ra,b,yes\rc,d,no\r", 1, "carriage return inside a line, outside quotes (only LF or CRLF"),
    (b"s1,s2,y\na,b,yes\n\xff,b,no\n", 3, "not valid UTF-8"),
])
def test_csv_errors_name_file_and_line(tmp_path, content, line, message):
    path = _write(tmp_path, "train.csv", content)
    _write(tmp_path, "dev.csv", "s1,s2,y\na,b,no\n")
    task = _one_task(tmp_path, {"train": "train.csv", "dev": "dev.csv"}, **CSV_COLUMNS)
    with pytest.raises(GlueDataError) as e:
        read_split("", task, "train")
    assert str(e.value).startswith(f"{path}:{line}: ") and message in str(e.value), str(e.value)


@pytest.mark.parametrize("content,line,message", [
    ('{"s1": "a", "s2": "b", "y": "yes"}\n{"s1": "a", "y": "no"}\n', 2, "no key 's2' (text_b); keys: s1, y"),
    ('{"s1": "a", "s2": "b", "y": "yes"}\n{"s1": "a", "s2": "b", "y": "maybe"}\n', 2,
     "unknown mine label 'maybe'; valid labels: no, yes"),
    ('{"s1": "a", "s2": "b", "y": "yes"}\n{"s1": 3, "s2": "b", "y": "no"}\n', 2,
     "key 's1' (text_a) holds 3; expected a string"),
    ('{"s1": "a", "s2": "b", "y": true}\n', 1, "key 'y' (label) holds true; expected a string or a number"),
    ('{"s1": "a", "s2": "b", "y": "yes"}\n{"s1": "a",\n', 2, "not valid JSON: "),
    ('["a", "b", "yes"]\n', 1, "expected a JSON object, found list"),
    ('{"s1": "a", "s2": "b", "y": "yes"}\n\n{"s1": "a", "s2": "b", "y": "yes"}\n', 2, "blank line"),
    ("", None, "file is empty"),
    ('{"s1": "a", "s2": "b", "y": "yes", "y": "no"}\n', 1, "key 'y' (label) appears twice in one object"),
    ('{"s1": "a", "s2": "b", "y": "yes"}\n{"s1": "cut \\ud83d", "s2": "b", "y": "no"}\n', 2,
     "key 's1' (text_a): '\\ud83d' at character 4 is half of a UTF-16 surrogate pair"),
])
def test_jsonl_errors_name_file_and_line(tmp_path, content, line, message):
    path = _write(tmp_path, "dev.jsonl", content)
    _write(tmp_path, "train.csv", "s1,s2,y\na,b,no\n")
    task = _one_task(tmp_path, {"train": "train.csv", "dev": "dev.jsonl"}, **CSV_COLUMNS)
    _expect_read_error(task, "dev", path, line, message)


def _expect_read_error(task, split, path, line, message):
    """Reading `split` fails with "<path>:<line>: …message…" (or "<path>: …" without a line)."""
    with pytest.raises(GlueDataError) as e:
        read_split("", task, split)
    where = f"{path}:{line}: " if line else f"{path}: "
    assert str(e.value).startswith(where) and message in str(e.value), str(e.value)


def test_jsonl_numbers_are_label_strings_and_ids(tmp_path):
    _write(tmp_path, "train.jsonl", '{"t": "a", "y": 1, "i": 17}\n{"t": "b", "y": "0", "i": "x9"}\n')
    task = _one_task(tmp_path, {"train": "train.jsonl", "dev": "train.jsonl", "test": "train.jsonl"}, text_a="t",
                     label="y", id="i", labels=["0", "1"])
    data = read_split("", task, "test")
    assert data.labels.tolist() == [1, 0] and data.official_index == ["17", "x9"] and data.text_b is None


def test_an_id_is_read_from_test_files_only(tmp_path):
    # As BUILD.md's example: the task's id column names the test file's index; train and dev have none.
    _write(tmp_path, "train.csv", "s1,y\na,yes\nb,no\n")
    _write(tmp_path, "dev.jsonl", '{"s1": "c", "y": "no"}\n')
    _write(tmp_path, "test.csv", "pair_id,s1\nq7,d\nq8,e\n")
    task = _one_task(tmp_path, {"train": "train.csv", "dev": "dev.jsonl", "test": {"path": "test.csv", "label": None}},
                     text_a="s1", label="y", id="pair_id")
    assert read_split("", task, "train").official_index == ["0", "1"]
    assert read_split("", task, "dev").labels.tolist() == [0]
    assert read_split("", task, "test").official_index == ["q7", "q8"]
    assert [definition_of(task)["files"][split]["id"] for split in ("train", "dev", "test")] == [None, None, "pair_id"]
    # A run recorded when train and dev files carried the id too holds the same definition.
    before = copy.deepcopy(definition_of(task))
    before["files"]["train"]["id"] = before["files"]["dev"]["id"] = "pair_id"
    assert record_changes({"tasks": [before]}, {"tasks": [definition_of(task)]}) == []
    before["files"]["test"]["id"] = "other"  # the test file's id still counts
    changes = record_changes({"tasks": [before]}, {"tasks": [definition_of(task)]})
    assert len(changes) == 1 and changes[0].startswith("mine.files: ") and "'other'" in changes[0], changes


@pytest.mark.parametrize("fmt,content,line,message", [
    ("tsv", "a\tyes\nb\tyes\tz\n", 2, "expected 2 columns (as many as the first line), found 3"),
    ("tsv", "a\tyes\nb\tperhaps\n", 2, "unknown mine label 'perhaps'"),
    ("tsv", "text\tanswer\nb\tyes\n", 1,
     "unknown mine label 'answer'; valid labels: no, yes; if line 1 is a header row, name the columns"),
    ("csv", "a\n", 1, "column 1 (label) does not exist: the row has 1 columns, numbered from 0"),
    ("csv", "", None, "file is empty"),
])
def test_headerless_files_by_column_index(tmp_path, fmt, content, line, message):
    path = _write(tmp_path, f"train.{fmt}", content)
    task = _one_task(tmp_path, {"train": f"train.{fmt}", "dev": f"train.{fmt}"}, text_a=0, label=1)
    _expect_read_error(task, "train", path, line, message)


@pytest.mark.parametrize("fmt", ["tsv", "csv"])
def test_trailing_lines_of_spaces_are_blank_lines(tmp_path, fmt):
    sep = "\t" if fmt == "tsv" else ","
    _write(tmp_path, f"train.{fmt}", f"a{sep}yes\nb{sep}no\n  \n")  # the last line: two spaces
    task = _one_task(tmp_path, {"train": f"train.{fmt}", "dev": f"train.{fmt}"}, text_a=0, label=1)
    assert read_split("", task, "train").labels.tolist() == [1, 0]
    path = _write(tmp_path, f"train.{fmt}", f"a{sep}yes\n   \nb{sep}no\n")
    _expect_read_error(task, "train", path, 2, "blank line")


def test_trailing_rows_of_empty_fields_are_blank_lines(tmp_path):
    # A spreadsheet's CSV export ends with the rows it counted as used: "," or ",," and CRLF line ends.
    _write(tmp_path, "train.csv", "s1,y\r\na,yes\r\nb,no\r\n,\r\n,\r\n")
    _write(tmp_path, "test.csv", "id,s1\r\nq1,c\r\n,\r\n")
    task = _one_task(tmp_path, {"train": "train.csv", "dev": "train.csv", "test": {"path": "test.csv", "label": None}},
                     text_a="s1", label="y", id="id")
    assert read_split("", task, "train").labels.tolist() == [1, 0]
    assert read_split("", task, "test").text_a == ["c"]  # an example has an id: that row is none
    # Without labels or ids, a row of empty fields may be an example of empty texts, as before.
    _write(tmp_path, "test.csv", "s1,s2\r\nc,x\r\n,\r\nd,y\r\n")
    task = _one_task(tmp_path, {"train": "train.csv", "dev": "train.csv", "test": {"path": "test.csv", "label": None}},
                     text_a="s1", text_b="s2", label="y")
    assert read_split("", task, "test").text_b == ["x", "", "y"]


def test_jsonl_keys_not_read_may_repeat(tmp_path):
    _write(tmp_path, "train.jsonl", '{"t": "a", "y": "yes", "note": 1, "note": 2, "meta": {"src": 1, "src": 2}}\n')
    task = _one_task(tmp_path, {"train": "train.jsonl", "dev": "train.jsonl"}, text_a="t", label="y")
    assert read_split("", task, "train").text_a == ["a"]


def test_a_regression_score_with_a_digit_separator_is_not_a_number(tmp_path):
    path = _write(tmp_path, "train.tsv", "a\t1_0\n")
    definition = {"name": "mine", "files": {"train": "train.tsv", "dev": "train.tsv"}, "text_a": 0, "label": 1,
                  "regression": {"min": 0, "max": 20}, "metrics": ["pearson"]}
    task = load_task_definitions(_write(tmp_path, "tasks.json", json.dumps({"tasks": [definition]})))[0]
    _expect_read_error(task, "train", path, 1, "mine score '1_0' is not a number")


def test_a_header_row_above_indexed_columns(tmp_path):
    # A GLUE-style unlabeled test file (its first line "index<TAB>sentence") read by column index: without
    # `header: true` the header would be predicted as an example.
    _write(tmp_path, "train.tsv", "text\tanswer\na\tyes\n")
    _write(tmp_path, "test.tsv", "index\tsentence\n7\tb\n")
    test = {"path": "test.tsv", "text_a": 1, "id": 0, "label": None, "header": True}
    task = _one_task(tmp_path, {"train": {"path": "train.tsv", "header": True}, "dev": "train.tsv", "test": test},
                     text_a=0, label=1)
    assert read_split("", task, "train").text_a == ["a"]
    data = read_split("", task, "test")
    assert (data.text_a, data.official_index) == (["b"], ["7"])
    with pytest.raises(GlueDataError, match="if line 1 is a header row, name the columns .* `header: true`"):
        read_split("", task, "dev")  # the same file without header: true
    stored = definition_of(task)["files"]
    assert (stored["train"].get("header"), stored["dev"].get("header"), stored["test"].get("header")) == (True, None, True)
    again, = task_defs.tasks_from_definitions({"tasks": [definition_of(task)]}, source="record", check_files=False)
    assert again.splits == task.splits  # the normalised form keeps the header


@pytest.mark.parametrize("header, extra, message", [
    ("yes", {}, "header: expected true or false, found a string ('yes')"),
    (False, {"text_a": "s1", "label": "y"}, "header: columns named by a header row need that header row"),
])
def test_a_bad_header_key(tmp_path, header, extra, message):
    _write(tmp_path, "train.tsv", "s1\ty\na\tyes\n")
    with pytest.raises(TaskDefinitionError, match=re.escape(f"tasks[0].files.train.{message}")):
        _one_task(tmp_path, {"train": {"path": "train.tsv", "header": header, **extra}, "dev": "train.tsv"},
                  text_a=0, label=1)
    _write(tmp_path, "dev.jsonl", "")
    with pytest.raises(TaskDefinitionError, match=re.escape("tasks[0].files.dev.header: a jsonl file has no header")):
        _one_task(tmp_path, {"train": "train.tsv", "dev": {"path": "dev.jsonl", "header": True}}, text_a="s1", label="y")
    _one_task(tmp_path, {"train": "train.tsv", "dev": {"path": "dev.jsonl", "header": False}}, text_a="s1", label="y")


def test_in_a_one_column_file_spaces_are_a_rows_text(tmp_path):
    _write(tmp_path, "train.tsv", "a\tyes\n")
    _write(tmp_path, "test.tsv", "first\n  \nlast\n \n")
    task = _one_task(tmp_path, {"train": "train.tsv", "dev": "train.tsv",
                                "test": {"path": "test.tsv", "label": None}}, text_a=0, label=1)
    assert read_split("", task, "test").text_a == ["first", "  ", "last", " "]


def test_header_only_file_and_regression_range(tmp_path):
    _write(tmp_path, "train.tsv", "text\tscore\n")
    _write(tmp_path, "dev.tsv", "text\tscore\ngood\t7.5\nodd\t-2\n")
    task = load_task_definitions(_write(tmp_path, "tasks.yaml", textwrap.dedent("""\
        tasks:
          - name: stars
            files: {train: train.tsv, dev: dev.tsv}
            text_a: text
            label: score
            regression: {min: -1, max: 7.5}
            metrics: [spearman]
        """)))[0]
    with pytest.raises(GlueDataError, match="train.tsv: file has only a header row"):
        read_split("", task, "train")
    with pytest.raises(GlueDataError, match=r"dev.tsv:3: stars score '-2' is outside \[-1, 7.5\]"):
        read_split("", task, "dev")
    assert read_split("", task, "dev", max_examples=1).labels.tolist() == [7.5]


def test_a_run_checks_the_data_files_of_the_tasks_it_uses_only(defs, tmp_path):
    from bam_tf.config import BamConfig
    from bam_tf.pipeline import BamPipeline

    os.remove(tmp_path / "data" / "test.tsv")  # paraphrase's data is incomplete; rating's is whole
    with pytest.raises(TaskDefinitionError, match=r"test.tsv: no such file"):
        load_task_definitions(defs)  # a definition file alone: every task's files are checked
    run = dict(model_dir=str(tmp_path / "run"), task_defs=defs)
    assert [t.name for t in BamPipeline(BamConfig(tasks="rating", **run), verbose=False).tasks] == ["rating"]
    with pytest.raises(TaskDefinitionError) as e:
        BamPipeline(BamConfig(tasks="rating,paraphrase", **run), verbose=False)
    assert str(e.value) == f"{defs}: paraphrase.files.test: {tmp_path / 'data' / 'test.tsv'}: no such file"


def test_a_test_files_ids_are_unique(defs, tmp_path):
    path = _write(tmp_path, "data/test.tsv", "7\ta\tb\n8\tc\td\n7\te\tf\n")
    _expect_read_error(load_task_definitions(defs)[0], "test", path, 3, "id '7' is also the id of line 1")


def test_a_test_file_without_the_label_column_is_told_about_label_null(tmp_path):
    _write(tmp_path, "train.csv", "s1,y\na,yes\n")
    path = _write(tmp_path, "test.csv", "s1\nb\n")
    task = _one_task(tmp_path, {"train": "train.csv", "dev": "train.csv", "test": "test.csv"}, text_a="s1", label="y")
    _expect_read_error(task, "test", path, 1, "column 'y' (label) is not in the header row; columns: 's1'; an "
                                               "unlabeled test file needs `label: null` in its file mapping")


def test_a_test_id_with_a_tab_or_line_break_is_refused(tmp_path):
    _write(tmp_path, "train.csv", "s1,y\na,yes\n")
    path = _write(tmp_path, "test.csv", 'i,s1\n1,a\n"2\t3",b\n')
    task = _one_task(tmp_path, {"train": "train.csv", "dev": "train.csv",
                                "test": {"path": "test.csv", "label": None}}, text_a="s1", label="y", id="i")
    _expect_read_error(task, "test", path, 3, "id '2\\t3' contains a tab or a line break")
    _write(tmp_path, "test.csv", 'i,s1\n"1\n2",a\n')
    _expect_read_error(task, "test", path, 2, "id '1\\n2' contains a tab or a line break")


def test_a_bad_test_file_stops_a_run_before_anything_is_written(defs, tmp_path):
    _write(tmp_path, "data/test.tsv", "7\ta\tb\n7\tc\td\n")
    model_dir = tmp_path / "run"
    result = run_train_in_process(f"--task_defs={defs}", "--tasks=paraphrase", f"--model_dir={model_dir}",
                                  "--backbone=random:layers=1,hidden=16,heads=2,intermediate=32",
                                  "--max_seq_length=32")
    assert result.returncode != 0 and "Traceback" not in result.stderr, result.stderr[-3000:]
    assert "test.tsv:2: id '7' is also the id of line 1" in result.stderr, result.stderr[-3000:]
    assert not model_dir.exists()  # data is read before anything is written, and the lock is not left behind


def test_a_data_file_removed_after_loading_the_definition(defs, tmp_path):
    task = load_task_definitions(defs)[0]
    os.remove(tmp_path / "data" / "dev.jsonl")
    with pytest.raises(GlueDataError, match=r"dev.jsonl: missing dev file for paraphrase \(defined in .*tasks.yaml\)"):
        read_split("", task, "dev")


# ---- the whole chain through the CLI, on a task GLUE does not have ----------------------------------------
SERVING_CHECK = r'''
import json, sys
import tensorflow as tf
import tensorflow_text  # noqa: F401  (registers the tokenizer ops)
loaded = tf.saved_model.load(sys.argv[1])
out = loaded.signatures["paraphrase"](sentence1=tf.constant(["A man plays.", "x"]),
                                      sentence2=tf.constant(["Someone plays.", "y"]))
print(json.dumps({"signatures": sorted(loaded.signatures), "outputs": sorted(out),
                  "labels": [v.decode() for v in out["label"].numpy()],
                  "probabilities": out["probabilities"].numpy().shape}))
'''


def _paraphrase_files(root: pathlib.Path) -> str:
    """40 MRPC rows per split, re-labelled as a task of our own: train as CSV with a header, dev as JSON lines."""
    def rows(split):
        with open(os.path.join(GLUE_DIR, "MRPC", f"{split}.tsv"), encoding="utf-8-sig") as f:
            lines = f.read().splitlines()[1:41]
        return [(fields[3], fields[4], ["different", "same"][int(fields[0])])
                for fields in (line.split("\t") for line in lines)]

    (root / "data").mkdir(parents=True)
    with open(root / "data" / "train.csv", "w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["first", "second", "verdict"])
        writer.writerows(rows("train"))
    with open(root / "data" / "dev.jsonl", "w", encoding="utf-8") as f:
        for a, b, verdict in rows("dev"):
            f.write(json.dumps({"first": a, "second": b, "verdict": verdict}) + "\n")
    return _write(root, "tasks.yaml", textwrap.dedent("""\
        tasks:
          - name: paraphrase
            files: {train: data/train.csv, dev: data/dev.jsonl}
            text_a: first
            text_b: second
            label: verdict
            labels: [different, same]
            metrics: [f1, accuracy]
            symmetric: true
        """))


def _cli(module, *flags, check=True):
    result = subprocess.run([sys.executable, "-m", module, *flags], capture_output=True, text=True, timeout=600,
                            env={**os.environ, "GLUE_DIR": GLUE_DIR})
    if check and result.returncode != 0:
        raise AssertionError(f"exit {result.returncode}\n{result.stdout[-3000:]}\n{result.stderr[-5000:]}")
    return result


@needs_glue(("MRPC", "RTE"))
@needs_glue(("MRPC", "RTE"), split="dev")
def test_a_user_task_through_every_stage_and_export(tmp_path):
    definitions = _paraphrase_files(tmp_path / "defs")
    model_dir = str(tmp_path / "run")
    flags = [f"--task_defs={definitions}", "--tasks=paraphrase,RTE", f"--model_dir={model_dir}",
             "--backbone=random:layers=1,hidden=16,heads=2,intermediate=32", "--max_seq_length=32",
             "--max_train_examples=24", "--max_eval_examples=16", "--teacher_epochs=1", "--num_train_epochs=1",
             "--train_batch_size=8", "--teacher_batch_size=8", "--log_every=2"]
    result = _cli("bam_tf.train", "--mode=all", *flags)

    with open(os.path.join(model_dir, "dev_results.json")) as f:
        results = json.load(f)
    for who in ("student", "teachers"):
        assert {t: sorted(m) for t, m in results[who]["tasks"].items()} == {
            "paraphrase": ["accuracy", "f1"], "RTE": ["accuracy"]}
        assert 0.0 <= results[who]["glue_average"] <= 1.0 and results[who]["tasks_in_average"] == [
            "paraphrase", "RTE"]
    assert "Average" in result.stdout and "user task(s) paraphrase" in result.stdout
    with np.load(os.path.join(model_dir, "teacher_outputs", "paraphrase.npz")) as outputs:
        assert outputs["outputs"].shape == (48, 2)  # 24 rows and their swapped pairs (symmetric: true)
    assert any(name.startswith("events") for name in os.listdir(os.path.join(model_dir, "tensorboard", "student")))
    with open(os.path.join(model_dir, "task_defs.json")) as f:
        assert [t["labels"] for t in json.load(f)["tasks"]] == [["different", "same"]]

    # A changed definition is noticed when the run is continued.
    changed = definitions.replace("tasks.yaml", "changed.yaml")
    with open(definitions) as f, open(changed, "w") as g:
        g.write(f.read().replace("[different, same]", "[same, different]"))
    refused = run_train_in_process("--mode=evaluate", *flags, f"--task_defs={changed}")
    assert refused.returncode == 1 and "--task_defs paraphrase.labels: ['different', 'same'] → ['same', " \
                                       "'different']" in refused.stderr, refused.stderr[-2000:]
    record = os.path.join(model_dir, "task_defs.json")
    assert f"--task_defs={record} (the definitions it was made with)" in refused.stderr
    continued = run_train_in_process("--mode=evaluate", *flags, f"--task_defs={record}")  # the run's own record
    assert continued.returncode == 0, continued.stderr[-2000:]

    # The model folder stands alone: export in a fresh process, without the definition file.
    os.rename(tmp_path / "defs", tmp_path / "defs-gone")
    export_dir = str(tmp_path / "export")
    _cli("bam_tf.export", f"--model_dir={model_dir}", f"--export_dir={export_dir}")
    check = subprocess.run([sys.executable, "-c", SERVING_CHECK, os.path.join(export_dir, "1")],
                           capture_output=True, text=True, timeout=300)
    assert check.returncode == 0, check.stderr[-3000:]
    served = json.loads(check.stdout.strip().splitlines()[-1])
    assert {"paraphrase", "rte", "serving_default", "token_ids"} <= set(served["signatures"])
    assert served["outputs"] == ["label", "logits", "probabilities"] and served["probabilities"] == [2, 2]
    assert set(served["labels"]) <= {"different", "same"}
