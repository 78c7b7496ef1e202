"""Reads GLUE TSV files (download_glue_data.py layout), and the TSV/CSV/JSON-lines files of user tasks
(bam_tf.task_defs), into columnar TaskData."""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import json
import os
from typing import Any, Iterator

import numpy as np

from bam_tf.task import SplitLayout, Task
from bam_tf.user_errors import InputError

SWAP_SUFFIX = "/swap"


class GlueDataError(InputError):
    """Bad or missing GLUE data; the message starts with "<path>:<line>: " or "<path>: "."""

    def __init__(self, path: str | os.PathLike, message: str, line: int | None = None):
        where = f"{os.fspath(path)}:{line}" if line is not None else os.fspath(path)
        super().__init__(f"{where}: {message}")
        self.path = os.fspath(path)
        self.line = line
        self.problem = message


@dataclasses.dataclass(eq=False)  # eq on numpy arrays is ambiguous; compare fingerprints instead
class TaskData:
    """Examples of one task split, stored column-wise."""

    task: Task
    split: str
    ids: list[str]
    text_a: list[str]
    text_b: list[str] | None
    labels: np.ndarray | None  # int32 indices into task.labels, float32 for regression
    official_index: list[str]
    source: str

    def __post_init__(self) -> None:
        n = len(self.ids)
        columns = {"text_a": self.text_a, "text_b": self.text_b, "labels": self.labels,
                   "official_index": self.official_index}
        for name, column in columns.items():
            if column is not None and len(column) != n:
                raise ValueError(f"{self.source}: {name} has {len(column)} entries but there are {n} ids")

    def __len__(self) -> int:
        return len(self.ids)

    def fingerprint(self) -> str:
        """sha256 of the content (not the source path), to tell whether two runs saw the same data."""
        h = hashlib.sha256()

        def put(text: str) -> None:
            # Length prefixes keep field boundaries unambiguous: ("ab", "c") != ("a", "bc").
            data = text.encode("utf-8")
            h.update(len(data).to_bytes(8, "big"))
            h.update(data)

        put(self.task.name)
        put(self.split)
        put(str(len(self)))
        for column in (self.ids, self.text_a, self.text_b):
            put("none" if column is None else "column")
            for value in column or ():
                put(value)
        if self.labels is None:
            put("no-labels")
        else:
            # Fixed little-endian dtypes so the digest does not depend on the machine.
            dtype = np.dtype(self.task.label_dtype).newbyteorder("<").str
            put(dtype)
            h.update(np.ascontiguousarray(self.labels, dtype=dtype).tobytes())
        return h.hexdigest()

    def _select(self, index: slice) -> TaskData:
        return dataclasses.replace(
            self,
            ids=self.ids[index],
            text_a=self.text_a[index],
            text_b=None if self.text_b is None else self.text_b[index],
            labels=None if self.labels is None else self.labels[index],
            official_index=self.official_index[index],
        )

    def take(self, n: int | None) -> TaskData:
        """The first n examples (all of them when n is None or larger than the set)."""
        if n is None:
            return self
        if n < 0:
            raise ValueError(f"take() needs n >= 0, got {n}")
        return self._select(slice(0, n))

    def with_swapped_pairs(self) -> TaskData:
        """Appends a copy with the two sentences swapped. Only label-preserving for task.symmetric tasks."""
        if self.text_b is None:
            raise ValueError(f"{self.task.name} is a single-sentence task; there is no pair to swap")
        if any(i.endswith(SWAP_SUFFIX) for i in self.ids):
            # A second swap would create duplicate ids.
            raise ValueError(f"{self.source}: already contains swapped copies")
        return dataclasses.replace(
            self,
            ids=self.ids + [i + SWAP_SUFFIX for i in self.ids],
            text_a=self.text_a + self.text_b,
            text_b=self.text_b + self.text_a,
            labels=None if self.labels is None else np.concatenate([self.labels, self.labels]),
            official_index=self.official_index + self.official_index,
        )


def _lines(path: str) -> Iterator[tuple[int, str]]:
    """Yields (1-based line number, line without its line end); CRLF and LF both accepted."""
    try:
        # Bytes split on b"\n" only, so a stray "\r" inside text is not taken for a line end, and
        # decoding line by line lets a UTF-8 error name its line.
        with open(path, "rb") as f:
            for line_no, raw in enumerate(f, start=1):
                try:
                    # utf-8-sig drops the byte-order mark that starts MRPC's train/dev files.
                    line = raw.decode("utf-8-sig" if line_no == 1 else "utf-8")
                except UnicodeDecodeError as e:
                    raise GlueDataError(path, f"not valid UTF-8 at byte {e.start} of the line: {e.reason}",
                                        line_no) from e
                yield line_no, line.removesuffix("\n").removesuffix("\r")
    except OSError as e:
        raise GlueDataError(path, f"cannot read file: {e.strerror or e}") from e


_MAX_FIELD_CHARS = 2**31 - 1  # csv's C long on every platform


def _fields(path: str, file_format: str) -> Iterator[tuple[int, list[str]]]:
    """Yields (line number where the row starts, fields) of a TSV or CSV file; a blank line gives []."""
    csv.field_size_limit(_MAX_FIELD_CHARS)  # csv's default, 131,072 characters, refuses long documents
    if file_format == "csv":
        # Standard CSV quoting; a quoted field may span lines, so the reader sees the line ends again.
        lines = (line + "\n" for _, line in _lines(path))
        reader = csv.reader(lines, strict=True)
        done = 0
        while True:
            try:
                fields = next(reader)
            except StopIteration:
                return
            except csv.Error as e:
                if "new-line character seen in unquoted field" in str(e):  # csv's hint is about open()
                    raise GlueDataError(path, "carriage return inside a line, outside quotes (only LF or CRLF line "
                                              "ends are accepted; convert a file with CR-only line ends)",
                                        reader.line_num) from None
                start = done + 1  # where the row starts: a quote left open there errs lines later
                spans = (f" (the row that starts here runs on to line {reader.line_num}: a quote left open here, "
                         f"or the error is on line {reader.line_num})" if reader.line_num > start else "")
                raise GlueDataError(path, f"cannot parse CSV: {e}{spans}", start) from e
            yield done + 1, fields
            done = reader.line_num
    for line_no, line in _lines(path):
        if not line:
            yield line_no, []
            continue
        if "\r" in line:
            # csv would reject it with a confusing hint about newline=''.
            raise GlueDataError(path, "carriage return inside a line (only CRLF line ends are accepted)",
                                line_no)
        try:
            # quotechar=None: GLUE text contains unbalanced quotes that must be kept verbatim.
            yield line_no, next(csv.reader([line], delimiter="\t", quotechar=None))
        except csv.Error as e:
            raise GlueDataError(path, f"cannot parse line: {e}", line_no) from e


def _rows(path: str, layout: SplitLayout, max_rows: int | None,
          header: list[str] | None = None) -> Iterator[tuple[int, list[str]]]:
    """Yields (line number, fields) for data rows, checking the column count of every row.

    With layout.has_header the first line is the header; its fields go into `header` when given.
    layout.num_columns None: every row must have as many columns as the first row.
    """
    num_columns = layout.num_columns
    # A blank line is only acceptable among the file's last lines: (line number, what it was)
    pending_blank: tuple[int, str] | None = None
    saw_header = False
    rows = 0
    for line_no, fields in _fields(path, layout.file_format):
        if max_rows is not None and rows >= max_rows:
            return
        # Blank, or spaces only (as JSON lines) where a row has several columns: in a one-column file spaces
        # are a row's text. A row of several empty fields is what a spreadsheet saves for a row it counts as
        # used but empty (",," in CSV); it is no example where one needs a label or an id (neither is empty),
        # but an unlabeled file without ids may hold examples of empty texts.
        if not fields or (len(fields) == 1 and not fields[0].strip() and num_columns not in (None, 1)):
            pending_blank = pending_blank or (line_no, "blank line")
            continue
        if (len(fields) > 1 and not any(fields)
                and (layout.label_column is not None or layout.id_column is not None)):
            pending_blank = pending_blank or (line_no, "a row of empty fields")
            continue
        if pending_blank is not None:
            blank_line, what = pending_blank
            if what != "blank line":
                raise GlueDataError(path, f"{what} (only the file's last lines may be empty)", blank_line)
            expected = f"expected {num_columns} columns, found 0" if num_columns else "found no columns"
            raise GlueDataError(path, f"{expected} (blank line)", blank_line)
        if num_columns is None:
            num_columns = len(fields)
        elif len(fields) != num_columns:
            first = " (as many as the first line)" if layout.num_columns is None else ""
            raise GlueDataError(path, f"expected {num_columns} columns{first}, found {len(fields)}", line_no)
        if not saw_header and rows == 0 and layout.has_header:
            saw_header = True
            if header is not None:
                header.extend(fields)
            continue
        rows += 1
        yield line_no, fields
    if rows == 0 and max_rows != 0:
        raise GlueDataError(path, "file has only a header row" if saw_header else "file is empty")


def _columns(layout: SplitLayout) -> dict[str, int | str]:
    """The columns a split reads, by role ("text_a", "text_b", "label", "id")."""
    columns = {"text_a": layout.text_a_column, "text_b": layout.text_b_column, "label": layout.label_column,
               "id": layout.id_column}
    return {role: column for role, column in columns.items() if column is not None}


def _table_records(path: str, layout: SplitLayout, max_rows: int | None) -> Iterator[tuple[int, dict[str, str]]]:
    """Yields (line number, {role: field}) of a TSV or CSV file; named columns are looked up in its header."""
    columns = _columns(layout)
    header: list[str] = []
    indices: dict[str, int] | None = None
    for line_no, fields in _rows(path, layout, max_rows, header):
        if indices is None:
            indices = {}
            for role, column in columns.items():
                if isinstance(column, str):
                    if header.count(column) != 1:
                        problem = "appears twice in" if column in header else "is not in"
                        spaced = ("; the header's names have spaces around them (a header written as 'a, b')"
                                  if column not in header and column in [h.strip() for h in header] else "")
                        raise GlueDataError(path, f"column {column!r} ({role}) {problem} the header row; columns: "
                                                  f"{', '.join(map(repr, header))}{spaced}", 1)
                    column = header.index(column)
                elif column >= len(fields):
                    raise GlueDataError(path, f"column {column} ({role}) does not exist: the row has {len(fields)} "
                                              "columns, numbered from 0", line_no)
                indices[role] = column
        yield line_no, {role: fields[i] for role, i in indices.items()}


def _jsonl_records(path: str, layout: SplitLayout, max_rows: int | None) -> Iterator[tuple[int, dict[str, str]]]:
    """Yields (line number, {role: value as text}) of a JSON-lines file: one JSON object per line."""
    columns = _columns(layout)
    pending_blank: int | None = None
    rows = 0
    for line_no, line in _lines(path):
        if max_rows is not None and rows >= max_rows:
            return
        if not line.strip():
            pending_blank = pending_blank or line_no
            continue
        if pending_blank is not None:
            raise GlueDataError(path, "blank line (only the file's last lines may be blank)", pending_blank)
        try:
            record = json.loads(line, object_pairs_hook=_JsonObject)
        except json.JSONDecodeError as e:
            raise GlueDataError(path, f"not valid JSON: {e.msg} (column {e.colno})", line_no) from None
        if not isinstance(record, dict):
            raise GlueDataError(path, f"expected a JSON object, found {type(record).__name__}", line_no)
        values = {}
        for role, key in columns.items():
            if key in getattr(record, "repeated", ()):
                raise GlueDataError(path, f"key {key!r} ({role}) appears twice in one object (JSON readers differ "
                                          "in which one they keep)", line_no)
            if key not in record:
                raise GlueDataError(path, f"no key {key!r} ({role}); keys: {', '.join(sorted(record)) or 'none'}",
                                    line_no)
            value = record[key]
            if isinstance(value, str):
                problem = unicode_problem(value)
                if problem:
                    raise GlueDataError(path, f"key {key!r} ({role}): {problem}", line_no)
                values[role] = value
            elif role in ("label", "id") and isinstance(value, (int, float)) and not isinstance(value, bool):
                values[role] = str(value)  # 1 -> "1" (a label string), 0.25 -> "0.25" (a score)
            else:
                expected = "a string or a number" if role in ("label", "id") else "a string"
                raise GlueDataError(path, f"key {key!r} ({role}) holds {json.dumps(value)}; expected {expected}",
                                    line_no)
        rows += 1
        yield line_no, values
    if rows == 0 and max_rows != 0:
        raise GlueDataError(path, "file is empty")


class _JsonObject(dict):
    """A JSON object that remembers which keys it held twice (json.loads keeps the last silently)."""

    def __init__(self, pairs: list[tuple[str, Any]]):
        super().__init__(pairs)
        keys = [key for key, _ in pairs]
        self.repeated = {key for key in keys if keys.count(key) > 1} if len(self) < len(keys) else set()


def unicode_problem(text: str) -> str | None:
    """Why `text` is not Unicode text that can be encoded (None if it is): JSON's "\\ud83d" escapes decode to
    half of a UTF-16 surrogate pair when the other half was cut off, which no UTF-8 encoder accepts."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as error:
        return (f"{text[error.start:error.end]!r} at character {error.start} is half of a UTF-16 surrogate pair "
                "(text cut between the two halves of a character such as an emoji), not valid Unicode")
    return None


def _parse_label(task: Task, raw: str, path: str, line_no: int) -> int | float:
    try:
        return task.parse_label(raw)
    except ValueError as error:
        raise GlueDataError(path, str(error), line_no) from None


def _split_path(glue_dir: str | os.PathLike, task: Task, layout: SplitLayout, split: str) -> str:
    if os.path.isabs(layout.filename):  # a user task names its files itself; glue_dir plays no part
        path = layout.filename
        if os.path.exists(path) and not os.path.isfile(path):
            raise GlueDataError(path, "cannot read file: not a regular file")
        if not os.path.isfile(path):
            raise GlueDataError(path, f"missing {split} file for {task.name} (defined in {task.definition_file})")
        return path
    glue_dir = os.fspath(glue_dir)
    if not glue_dir:
        raise GlueDataError("--glue_dir", f"not set, and {task.name} is a GLUE task (set --glue_dir or $GLUE_DIR)")
    if not os.path.isdir(glue_dir):
        raise GlueDataError(glue_dir, "GLUE data directory does not exist (set it with --glue_dir)")
    folder = os.path.join(glue_dir, task.directory)
    if not os.path.isdir(folder):
        present = sorted(e for e in os.listdir(glue_dir) if os.path.isdir(os.path.join(glue_dir, e)))
        raise GlueDataError(folder, f"no {task.directory} folder for task {task.name}; "
                                    f"folders present: {', '.join(present) or 'none'}")
    path = os.path.join(folder, layout.filename)
    if os.path.exists(path) and not os.path.isfile(path):
        raise GlueDataError(path, "cannot read file: not a regular file")
    if not os.path.isfile(path):
        present = sorted(os.listdir(folder))
        raise GlueDataError(path, f"missing {split} file for {task.name}; "
                                  f"files present: {', '.join(present) or 'none'}")
    return path


def _hinting_unlabeled_test_files(records: Iterator, path: str) -> Iterator:
    """A user's test file without the task's label column: most likely an unlabeled one not marked as such."""
    try:
        yield from records
    except GlueDataError as error:
        missing = ("(label) is not in the header row", "(label) does not exist", "(label); keys:")
        if not any(text in error.problem for text in missing):
            raise
        raise GlueDataError(path, f"{error.problem}; an unlabeled test file needs `label: null` in its file "
                                  "mapping (files: {test: {path: ..., label: null}})", error.line) from None


def _check_id(example_id: str, id_lines: dict[str, int], path: str, line_no: int) -> None:
    """A test file's id indexes a row of the tab-separated predictions file: one field, unique."""
    if any(ch in example_id for ch in "\t\r\n"):
        raise GlueDataError(path, f"id {example_id!r} contains a tab or a line break, which would break the "
                                  "tab-separated predictions file", line_no)
    if example_id in id_lines:
        raise GlueDataError(path, f"id {example_id!r} is also the id of line {id_lines[example_id]}", line_no)
    id_lines[example_id] = line_no


def split_file(glue_dir: str | os.PathLike, task: Task, split: str) -> str:
    """The file read_split reads: <glue_dir>/<task.directory>/<its filename> (a user task: its own file);
    GlueDataError naming what is missing when it is not there."""
    if split not in task.splits:
        raise InputError(f"{task.name} has no {split!r} split; available: {', '.join(task.splits)}")
    return _split_path(glue_dir, task, task.splits[split], split)


def read_split(glue_dir: str | os.PathLike, task: Task, split: str,
               max_examples: int | None = None) -> TaskData:
    """Reads split_file(glue_dir, task, split); max_examples keeps only the first rows."""
    if max_examples is not None and max_examples < 0:
        raise ValueError(f"max_examples must be >= 0, got {max_examples}")
    path = split_file(glue_dir, task, split)
    layout = task.splits[split]
    records = (_jsonl_records if layout.file_format == "jsonl" else _table_records)(path, layout, max_examples)

    ids: list[str] = []
    text_a: list[str] = []
    text_b: list[str] = []
    labels: list[int | float] = []
    official_index: list[str] = []
    id_lines: dict[str, int] = {}
    if split == "test" and task.is_user_task and layout.label_column is not None:
        records = _hinting_unlabeled_test_files(records, path)
    for row, (line_no, values) in enumerate(records):
        ids.append(f"{split}-{row}")
        text_a.append(values["text_a"])
        if layout.text_b_column is not None:
            text_b.append(values["text_b"])
        if layout.label_column is not None:
            try:
                labels.append(_parse_label(task, values["label"], path, line_no))
            except GlueDataError as error:
                if row == 0 and task.is_user_task and layout.file_format != "jsonl" and not layout.has_header:
                    raise GlueDataError(path, f"{error.problem}; if line {line_no} is a header row, name the "
                                              "columns in the task definition instead of numbering them (or give the file "
                                              "`header: true`)",
                                        line_no) from None
                raise
        if split == "test" and "id" in values:  # the predictions file's index
            _check_id(values["id"], id_lines, path, line_no)
        official_index.append(values.get("id", str(row)))

    label_array = None
    if layout.label_column is not None:
        label_array = np.asarray(labels, dtype=task.label_dtype)
    return TaskData(
        task=task,
        split=split,
        ids=ids,
        text_a=text_a,
        text_b=text_b if layout.text_b_column is not None else None,
        labels=label_array,
        official_index=official_index,
        source=path,
    )
