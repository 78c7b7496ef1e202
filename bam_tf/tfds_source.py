"""Loads GLUE splits from tensorflow_datasets (glue/<config>) instead of TSV files.

A dataset that is not prepared in the data_dir is an error naming what to run, unless `download` is
set: then TFDS downloads and prepares it first. Before that, one TCP connection to the download host
(10 s time-out) tells an offline machine apart at once, instead of TFDS retrying for minutes.
"""

from __future__ import annotations

import socket
import urllib.parse

import numpy as np
from absl import logging

from bam_tf.glue_reader import GlueDataError, TaskData
from bam_tf.task import Task
from bam_tf.user_errors import InputError

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


def load_tfds_split(task: Task, split: str, data_dir: str | None = None,
                    max_examples: int | None = None, download: bool = False) -> TaskData:
    """Reads one split of a TFDS GLUE dataset; downloads and prepares it first only if `download`."""
    if task.is_user_task:
        raise InputError(f"{task.name} is a task of your own (defined in {task.definition_file}); "
                         "--data_source=tfds reads only GLUE tasks from tensorflow_datasets. Use --data_source=tsv, "
                         "which reads GLUE from --glue_dir and user tasks from their own files")
    if split not in task.tfds_splits:
        raise InputError(f"{task.name} has no {split!r} split; available: {', '.join(task.tfds_splits)}")
    if max_examples is not None and max_examples < 0:
        raise ValueError(f"max_examples must be >= 0, got {max_examples}")
    import tensorflow_datasets as tfds  # slow import, only paid by runs that use TFDS

    tfds_split = task.tfds_splits[split]
    source = f"tfds:{task.tfds_name}:{tfds_split}"
    where = data_dir or tfds.core.constants.DATA_DIR
    if download:
        _prepare(tfds, task.tfds_name, data_dir, where)
    try:
        ds = tfds.load(task.tfds_name, split=tfds_split, data_dir=data_dir, download=False)
    except (AssertionError, FileNotFoundError) as e:  # TFDS reports "not prepared" as AssertionError
        raise GlueDataError(
            where, f"TFDS dataset {task.tfds_name} is not prepared in this data_dir; add --tfds_download to "
                   f"download it, run `tfds build {task.tfds_name} --data_dir={where}`, or use "
                   "--data_source=tsv --glue_dir=<GLUE from download_glue_data.py>") from e

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


def _prepare(tfds, name: str, data_dir: str | None, where: str) -> None:
    """Download and prepare `name` unless it is already prepared; a clear error when offline."""
    builder = tfds.builder(name, data_dir=data_dir)
    if builder.is_prepared():
        return
    url = getattr(builder.builder_config, "data_url", None)
    if url and not host_reachable(url):
        raise GlueDataError(where, f"cannot download TFDS dataset {name}: {urllib.parse.urlsplit(url).netloc} is "
                                   "unreachable from this machine. Prepare it where the network is "
                                   f"(`tfds build {name} --data_dir=DIR`, then copy DIR here and pass "
                                   "--tfds_data_dir=DIR), or use --data_source=tsv --glue_dir=<GLUE from "
                                   "download_glue_data.py>")
    logging.info("downloading and preparing TFDS dataset %s into %s (once)", name, where)
    try:
        builder.download_and_prepare()
    except Exception as error:  # network and archive errors come in many types; name the dataset
        raise GlueDataError(where, f"downloading TFDS dataset {name} failed ({type(error).__name__}: "
                                   f"{str(error).splitlines()[0][:300] if str(error) else ''})") from error


def host_reachable(url: str, timeout_s: float = 10.0) -> bool:
    parts = urllib.parse.urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        with socket.create_connection((parts.hostname, port), timeout=timeout_s):
            return True
    except OSError:
        return False


def _labels(task: Task, raw: np.ndarray, where: str, source: str) -> np.ndarray | None:
    unlabeled = raw == _UNLABELED
    if raw.size and unlabeled.all():
        return None
    if unlabeled.any():
        raise GlueDataError(where, f"{source} mixes labeled and unlabeled (-1) examples")
    try:
        return task.checked_labels(raw)
    except ValueError as error:
        raise GlueDataError(where, f"{source} has {error}") from None
