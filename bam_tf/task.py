"""The task interface: what a task is, and everything that differs between its two kinds.

A `Task` says where its data lives and how it is scored; `ClassificationTask` and `RegressionTask` own
what depends on the kind: the head's width, gold labels as read and as trained on, the per-example loss
against the annealed target, predictions, GLUE submission strings and serving outputs. The GLUE tasks
(bam_tf.glue_tasks) and a user's own (bam_tf.task_defs) are both built from these classes; the rest of
bam_tf asks the task instead of branching on its kind.

NumPy only at import: the TensorFlow-free parts of bam_tf (the experiment runner's dry run, the report)
use tasks too; the loss and serving methods import Keras / TensorFlow when called.
"""

from __future__ import annotations

import dataclasses
import math
import re
import unicodedata
from typing import Mapping

import numpy as np

FILE_FORMATS = ("tsv", "csv", "jsonl")


def normalized_name(name: str) -> str:
    """A task name without case and punctuation: "STS-B", "sts_b" and "stsb" name one task."""
    return "".join(ch for ch in name.lower() if ch.isalnum())


def task_slug(task_name: str) -> str:
    """"STS-B" -> "sts_b": the lower-case name of a task in export signatures, output names and layers."""
    return re.sub(r"[^a-z0-9]", "_", task_name.lower())


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


@dataclasses.dataclass(frozen=True, kw_only=True)
class Task:
    """One task: its files and how it is scored. Use ClassificationTask or RegressionTask."""

    name: str
    directory: str  # folder under glue_dir (GLUE), the definition file's folder (user tasks)
    head: str  # task whose output head scores it (MNLI-mm and AX reuse MNLI's)
    metrics: tuple[str, ...]  # among "mcc", "accuracy", "f1", "pearson", "spearman"
    # Mappings are read-only proxies, which are unhashable; hash=False keeps a Task usable as a dict key.
    splits: Mapping[str, SplitLayout] = dataclasses.field(hash=False)  # keys among "train", "dev", "test"
    submission_file: str  # file name the GLUE server expects in the submission zip
    tfds_name: str = ""
    tfds_splits: Mapping[str, str] = dataclasses.field(hash=False, default_factory=dict)  # ours -> TFDS's
    symmetric: bool = False  # sentence order carries no meaning, so swapping is valid augmentation
    # The file a user task was defined in (bam_tf.task_defs), or the model_config.json it was restored
    # from; None for the GLUE tasks.
    definition_file: str | None = None

    is_regression = False
    label_dtype = np.int32
    output_names = ()  # the serving outputs, as bam_tf.export's signatures name them
    # The first teacher-outputs / model-folder format whose outputs this kind of head can use.
    first_usable_format = 1

    @property
    def is_user_task(self) -> bool:
        return self.definition_file is not None

    @property
    def is_pair(self) -> bool:
        return any(s.text_b_column is not None for s in self.splits.values())

    @property
    def trainable(self) -> bool:
        return "train" in self.splits and self.head == self.name

    @property
    def num_outputs(self) -> int:
        raise NotImplementedError

    def parse_label(self, raw: str) -> int | float:
        """A label as a data file spells it → the stored label; ValueError saying what is wrong."""
        raise NotImplementedError

    def checked_labels(self, labels: np.ndarray) -> np.ndarray:
        """Stored labels from another source (TFDS), checked; ValueError saying what is wrong."""
        raise NotImplementedError

    def training_targets(self, labels: np.ndarray) -> np.ndarray:
        """Gold labels as a head is trained on them."""
        raise NotImplementedError

    def per_example_loss(self, prediction, labels, teacher, has_teacher, gold_weight, temperature: float):
        """Each example's loss against λ·gold + (1−λ)·teacher (Keras ops; λ = gold_weight).

        labels: the batch's gold labels as float (other tasks' examples too: they are masked later);
        teacher: [batch, num_outputs] teacher outputs; has_teacher: 1.0 where a teacher output exists.
        """
        raise NotImplementedError

    def predictions(self, outputs: np.ndarray) -> np.ndarray:
        """A head's outputs [n, num_outputs] → what the metrics compare with the stored labels."""
        raise NotImplementedError

    def prediction_strings(self, outputs: np.ndarray) -> list[str]:
        """A head's outputs → the strings a GLUE submission file holds."""
        raise NotImplementedError

    def prediction_records(self, outputs: np.ndarray) -> list[dict]:
        """A head's outputs → one JSON-able dict per example (bam_tf.predictor)."""
        raise NotImplementedError

    def serving_outputs(self, logits, prefix: str = "") -> dict:
        """A head's outputs (a tf.Tensor) → the serving signature's outputs, keyed by prefix + output_names."""
        raise NotImplementedError

    def head_description(self) -> str:
        """What the head predicts, e.g. "labels ['a', 'b'] on sentence pairs"."""
        raise NotImplementedError

    def label_definition(self) -> dict:
        """The kind's part of a task definition (bam_tf.task_defs): labels, or the score range."""
        raise NotImplementedError

    def head_signature(self) -> tuple:
        """What a trained head depends on: two tasks with the same signature can share a head's weights."""
        return type(self).__name__, self.label_definition(), self.is_pair


@dataclasses.dataclass(frozen=True, kw_only=True)
class ClassificationTask(Task):
    labels: tuple[str, ...]  # label strings in head-class order (GLUE: TFDS ClassLabel order)

    output_names = ("logits", "probabilities", "label")

    def __post_init__(self):
        if len(self.labels) < 2:
            raise ValueError(f"{self.name}: a classification task needs at least 2 labels, got {self.labels}")

    @property
    def label_range(self) -> None:
        return None

    @property
    def num_outputs(self) -> int:
        return len(self.labels)

    def parse_label(self, raw: str) -> int:
        try:
            return self.labels.index(raw)
        except ValueError:
            raise ValueError(f"unknown {self.name} label {raw!r}; valid labels: {', '.join(self.labels)}"
                             f"{_lookalike_hint(raw, self.labels)}") from None

    def checked_labels(self, labels: np.ndarray) -> np.ndarray:
        if labels.size and (labels.min() < 0 or labels.max() >= len(self.labels)):
            raise ValueError(f"label ids outside [0, {len(self.labels)})")
        return labels.astype(np.int32)

    def training_targets(self, labels: np.ndarray) -> np.ndarray:
        return np.asarray(labels, np.float32)  # class ids, unchanged

    def per_example_loss(self, prediction, labels, teacher, has_teacher, gold_weight, temperature: float):
        from keras import ops

        from bam_tf import teacher_annealing

        # Other tasks' labels may be out of range for this head; they are masked out, but must not
        # produce NaNs on the way.
        labels = ops.clip(ops.cast(labels, "int32"), 0, self.num_outputs - 1)
        targets = teacher_annealing.classification_targets(labels, teacher, has_teacher, gold_weight,
                                                           self.num_outputs, temperature)
        return teacher_annealing.soft_cross_entropy(targets, prediction)

    def predictions(self, outputs: np.ndarray) -> np.ndarray:
        return outputs.argmax(axis=1)

    def prediction_strings(self, outputs: np.ndarray) -> list[str]:
        return [self.labels[i] for i in outputs.argmax(axis=1)]

    def prediction_records(self, outputs: np.ndarray) -> list[dict]:
        logits = outputs.astype(np.float64)
        exp = np.exp(logits - logits.max(axis=1, keepdims=True))  # shifted so exp cannot overflow
        probabilities = exp / exp.sum(axis=1, keepdims=True)
        return [{"label": self.labels[label], "probabilities": dict(zip(self.labels, map(float, row)))}
                for label, row in zip(self.predictions(outputs), probabilities)]

    def serving_outputs(self, logits, prefix: str = "") -> dict:
        import tensorflow as tf

        return {f"{prefix}logits": logits,
                f"{prefix}probabilities": tf.nn.softmax(logits, axis=-1),
                f"{prefix}label": tf.gather(tf.constant(list(self.labels)), tf.argmax(logits, axis=-1))}

    def head_description(self) -> str:
        return f"labels {list(self.labels)} on {'sentence pairs' if self.is_pair else 'single sentences'}"

    def label_definition(self) -> dict:
        return {"labels": list(self.labels)}


@dataclasses.dataclass(frozen=True, kw_only=True)
class RegressionTask(Task):
    # Labels span [low, high]; the head trains on (label − low) / (high − low) ∈ [0, 1], as the original
    # BAM code does for STS-B, so a squared error weighs like a classification loss.
    label_range: tuple[float, float]

    is_regression = True
    label_dtype = np.float32
    output_names = ("logits", "score", "label")
    # Format 2 scaled regression outputs to [0, 1]; older teacher outputs and heads hold the label scale.
    first_usable_format = 2

    def __post_init__(self):
        low, high = self.label_range
        if not low < high:
            raise ValueError(f"{self.name}: label_range {self.label_range} is empty")

    @property
    def labels(self) -> tuple[str, ...]:
        return ()

    @property
    def num_outputs(self) -> int:
        return 1

    def parse_label(self, raw: str) -> float:
        try:
            if "_" in raw:  # float() reads "1_0" as 10.0 (Python's digit separators): a typo, not a number
                raise ValueError
            score = float(raw)
        except ValueError:
            raise ValueError(f"{self.name} score {raw!r} is not a number") from None
        low, high = self.label_range
        if not (math.isfinite(score) and low <= score <= high):
            raise ValueError(f"{self.name} score {raw!r} is outside [{low:g}, {high:g}]")
        return score

    def checked_labels(self, labels: np.ndarray) -> np.ndarray:
        return labels.astype(np.float32)

    def training_targets(self, labels: np.ndarray) -> np.ndarray:
        low, high = self.label_range
        return ((np.asarray(labels, np.float32) - low) / (high - low)).astype(np.float32)

    def label_scale(self, head_outputs):
        """Head outputs (or teacher scores) back on the label scale, e.g. 0–5 for STS-B; NumPy or TF."""
        low, high = self.label_range
        return head_outputs * (high - low) + low

    def per_example_loss(self, prediction, labels, teacher, has_teacher, gold_weight, temperature: float):
        from bam_tf import teacher_annealing

        targets = teacher_annealing.regression_targets(labels, teacher[:, 0], has_teacher, gold_weight)
        return teacher_annealing.squared_error(targets, prediction)

    def predictions(self, outputs: np.ndarray) -> np.ndarray:
        return self.label_scale(outputs[:, 0])

    def prediction_strings(self, outputs: np.ndarray) -> list[str]:
        return [f"{s:.3f}" for s in np.clip(self.predictions(outputs), *self.label_range)]

    def prediction_records(self, outputs: np.ndarray) -> list[dict]:
        return [{"score": float(score)} for score in self.predictions(outputs)]

    def serving_outputs(self, logits, prefix: str = "") -> dict:
        import tensorflow as tf

        # The head trained on scores scaled to [0, 1]; clients get the label scale (STS-B: 0–5).
        score = self.label_scale(logits[:, 0])
        return {f"{prefix}logits": logits, f"{prefix}score": score,
                f"{prefix}label": tf.strings.as_string(tf.clip_by_value(score, *self.label_range), precision=3)}

    def head_description(self) -> str:
        low, high = self.label_range
        return f"scores in [{low:g}, {high:g}] on {'sentence pairs' if self.is_pair else 'single sentences'}"

    def label_definition(self) -> dict:
        return {"regression": {"min": self.label_range[0], "max": self.label_range[1]}}


def _code_points(text: str) -> str:
    return " ".join(f"U+{ord(c):04X}" for c in text)


def _lookalike_hint(raw: str, labels) -> str:
    """Why a label that prints like a valid one is not it: other code points for the same text (a file saved
    on macOS often has é as e + U+0301), a no-break space, a zero-width character."""
    def plain(text):
        return "".join(c for c in unicodedata.normalize("NFKC", text) if unicodedata.category(c) != "Cf")
    for label in labels:
        if plain(label) == plain(raw):
            return (f" ({raw!r} looks like {label!r} but is other characters: {_code_points(raw)} in the file, "
                    f"{_code_points(label)} in the labels; write the label in the file as the labels spell it, "
                    "e.g. save the file NFC-normalised)")
    return ""
