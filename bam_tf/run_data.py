"""A split as a run reads it: from its data source, capped by --max_train_examples / --max_eval_examples,
and for training a symmetric pair task's order-swapped copies appended (--swap_pair_order).

TensorFlow-free for --data_source=tsv, so the experiment runner can tell whether stored teacher outputs
were computed on this data before it copies them (their fingerprint is this TaskData's)."""

from __future__ import annotations

from bam_tf.config import BamConfig
from bam_tf.glue_reader import TaskData, read_split
from bam_tf.task import Task


def read_run_split(config: BamConfig, task: Task, split: str) -> TaskData:
    limit = (config.max_train_examples if split == "train" else config.max_eval_examples) or None
    if config.data_source == "tfds":
        from bam_tf.tfds_source import load_tfds_split  # tensorflow_datasets is slow to import
        data = load_tfds_split(task, split, config.tfds_data_dir or None, limit, download=config.tfds_download)
    else:
        data = read_split(config.glue_dir, task, split, limit)
    if split == "train" and task.symmetric and config.swap_pair_order:
        data = data.with_swapped_pairs()
    return data
