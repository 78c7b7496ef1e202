"""The benchmark's data: GLUE training examples encoded like the pipeline's, and the padded batch shapes
that the FLOP count and token rates are computed from."""

from __future__ import annotations

import dataclasses

import numpy as np


def _subset(data, keep: np.ndarray):
    pick = lambda column: [column[i] for i in keep]
    return dataclasses.replace(data, ids=pick(data.ids), text_a=pick(data.text_a),
                               text_b=None if data.text_b is None else pick(data.text_b),
                               labels=None if data.labels is None else data.labels[keep],
                               official_index=pick(data.official_index))


def load_task_examples(glue_dir: str, tasks, examples_per_task: int, seed: int, encoder, first_rows: bool = False):
    """Each task's training split, randomly subsampled (so lengths follow the real GLUE distribution) or its
    first rows (`first_rows`: as --max_train_examples takes them), order-augmented like the pipeline,
    encoded, with random teacher outputs of the right width."""
    from bam_tf.glue_reader import read_split
    from bam_tf.input_pipeline import TaskExamples
    from bam_tf.text_encoding import encode_task_data

    examples = []
    for task_index, task in enumerate(tasks):
        data = read_split(glue_dir, task, "train", examples_per_task if first_rows and examples_per_task else None)
        rng = np.random.default_rng([seed, 3, task_index])
        if examples_per_task and len(data) > examples_per_task:
            data = _subset(data, np.sort(rng.choice(len(data), examples_per_task, replace=False)))
        if task.symmetric:  # BamPipeline.split with the default --swap_pair_order
            data = data.with_swapped_pairs()
        encoded = encode_task_data(data, encoder)
        # Stand-in teacher outputs: their values do not change a step's cost; [0, 1] is the training scale
        # of a regression head and fine logits for a classifier.
        teacher = rng.uniform(0.0, 1.0, (len(data), task.num_outputs))
        examples.append(TaskExamples(encoded, task.training_targets(data.labels), task.num_outputs,
                                     teacher.astype(np.float32)))
    return examples


def take_rows(encoded, rows: np.ndarray):
    from bam_tf.text_encoding import EncodedExamples

    starts = np.concatenate([[0], np.cumsum(encoded.lengths)[:-1]])
    pieces = [np.arange(starts[r], starts[r] + encoded.lengths[r]) for r in rows]
    flat = np.concatenate(pieces) if pieces else np.empty(0, np.int64)
    return EncodedExamples(encoded.token_ids[flat], encoded.segment_ids[flat], encoded.lengths[rows])


def dataset_batch_shapes(dataset, skip: int) -> tuple[list[tuple[int, int]], int, int]:
    """(batch size, padded length) of every batch after the first `skip` (of each length group of a batch:
    training_dataset yields tuples of groups), their real token count, and how many of them have a shape
    no earlier one had (what XLA compiles anew)."""
    shapes, real, seen, new_shapes = [], 0, set(), 0
    for index, groups in enumerate(dataset):
        for group in groups if isinstance(groups, tuple) else (groups,):
            mask = group["padding_mask"].numpy()
            if index >= skip:
                shapes.append(mask.shape)
                real += int(mask.sum())
                new_shapes += mask.shape not in seen
            seen.add(mask.shape)
    return shapes, real, new_shapes


def inference_batch_shapes(lengths: np.ndarray, batch_size: int) -> tuple[list[tuple[int, int]], int]:
    """The batches `inference_dataset` makes: examples sorted by length, each batch padded to its longest."""
    ordered = np.sort(lengths, kind="stable")
    shapes = [(len(chunk), int(chunk.max())) for chunk in np.split(ordered, range(batch_size, len(ordered), batch_size))]
    return shapes, int(lengths.sum())
