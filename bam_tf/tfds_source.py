"""Loads GLUE splits from a prepared tensorflow_datasets directory instead of TSV files."""

from __future__ import annotations

import numpy as np

from bam_tf.glue_reader import GlueDataError, TaskData
from bam_tf.glue_tasks import GlueTask

# TFDS renames the TSV columns per config; (text_a, text_b) feature names.
_TEXT_FEATURES: dict[str, tuple[str, str | None]] = {
    "glue/cola": ("sentence", None),
    "glue/sst2": ("sentence", None),
    "glue/mrpc": ("sentence1", "sentence2"),
    "glue/qqp": ("question1", "question2"),
    "glue/stsb": ("sentence1", "sentence2"),
    "glue/mnli": ("premise", "hypothesis"),
    "glue/qnli": ("question", "sentence"),
    "glue/rte": ("sentence1", "sentence2"),
    "glue/wnli": ("sentence1", "sentence2"),
    "glue/ax": ("premise", "hypothesis"),
}
_UNLABELED = -1  # TFDS's label for GLUE test examples
_BATCH = 4096  # batching makes the numpy conversion an order of magnitude faster than per example


def load_tfds_split(task: GlueTask, split: str, data_dir: str | None = None,
                    max_examples: int | None = None) -> TaskData:
    """Reads one split of an already prepared TFDS GLUE dataset; never downloads."""
    if split not in task.tfds_splits:
        raise ValueError(f"{task.name} has no {split!r} split; available: {', '.join(task.tfds_splits)}")
    if max_examples is not None and max_examples < 0:
        raise ValueError(f"max_examples must be >= 0, got {max_examples}")
    import tensorflow_datasets as tfds  # slow import, only paid by runs that use TFDS

    tfds_split = task.tfds_splits[split]
    source = f"tfds:{task.tfds_name}:{tfds_split}"
    where = data_dir or tfds.core.constants.DATA_DIR
    try:
        ds = tfds.load(task.tfds_name, split=tfds_split, data_dir=data_dir, download=False)
    except (AssertionError, FileNotFoundError) as e:  # TFDS reports "not prepared" as AssertionError
        raise GlueDataError(
            where, f"TFDS dataset {task.tfds_name} is not prepared in this data_dir; run "
                   f"`tfds build {task.tfds_name} --data_dir={where}` or use --data_source=tsv") from e

    a_name, b_name = _TEXT_FEATURES[task.tfds_name]
    needed = [n for n in (a_name, b_name, "label", "idx") if n is not None]
    missing = [n for n in needed if n not in ds.element_spec]
    if missing:
        raise GlueDataError(where, f"{source} lacks features {missing}; it has {sorted(ds.element_spec)}")

    columns: dict[str, list[np.ndarray]] = {n: [] for n in needed}
    for batch in tfds.as_numpy(ds.batch(_BATCH)):
        for n in needed:
            columns[n].append(batch[n])
    merged = {n: np.concatenate(parts) if parts else np.zeros((0,)) for n, parts in columns.items()}

    # TFDS stores examples in hashed order; sorting by idx (the row in the source file) restores file
    # order, so row numbers -- and hence ids -- agree with the TSV reader.
    order = np.argsort(merged["idx"], kind="stable")[:max_examples]

    def texts(name: str) -> list[str]:
        return [v.decode("utf-8") for v in merged[name][order]]

    return TaskData(
        task=task,
        split=split,
        ids=[f"{split}-{row}" for row in range(len(order))],
        text_a=texts(a_name),
        text_b=texts(b_name) if b_name is not None else None,
        labels=_labels(task, merged["label"][order], where, source),
        official_index=[str(int(i)) for i in merged["idx"][order]],
        source=source,
    )


def _labels(task: GlueTask, raw: np.ndarray, where: str, source: str) -> np.ndarray | None:
    unlabeled = raw == _UNLABELED
    if raw.size and unlabeled.all():
        return None
    if unlabeled.any():
        raise GlueDataError(where, f"{source} mixes labeled and unlabeled (-1) examples")
    if task.is_regression:
        return raw.astype(np.float32)
    if raw.size and (raw.min() < 0 or raw.max() >= len(task.labels)):
        raise GlueDataError(where, f"{source} has label ids outside [0, {len(task.labels)})")
    return raw.astype(np.int32)
