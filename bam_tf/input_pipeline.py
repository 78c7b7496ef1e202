"""tf.data pipelines over encoded GLUE examples.

Training: the sampler's (task, example) stream is turned into global row indices of one table that
holds every task's examples with their labels and teacher outputs, then batched and gathered. Each
batch is padded only to its own longest example (on GLUE most sentences are far shorter than 128
tokens, and sequence length is what the step time scales with).

Length groups (bam_tf.length_groups): each replica's slice of a batch may be sorted by length and cut
into groups, each padded to its own longest example. The batch itself (its examples, their tasks, the
order of batches) is the sampler's, untouched. Padded lengths may be rounded up to a multiple of
`length_multiple` (never past the longest example of the data), so that the set of shapes a run meets
stays small: XLA compiles one program per shape.

Inference: one task's examples, sorted by length so batches are nearly pad-free; callers undo the order.
"""

import dataclasses

import numpy as np
import tensorflow as tf

from bam_tf.length_groups import group_sizes
from bam_tf.task_sampler import ExampleStream
from bam_tf.text_encoding import EncodedExamples


@dataclasses.dataclass
class TaskExamples:
    """One task's encoded training examples with their targets."""

    encoded: EncodedExamples
    labels: np.ndarray  # training targets (Task.training_targets): class index or scaled score, float32
    num_outputs: int  # classes, or 1 for regression
    teacher_outputs: np.ndarray | None = None  # float32 [num_examples, num_outputs]; None: no teacher


def _fixed_buffers() -> tf.data.Options:
    # Gathering a batch costs microseconds next to a training step, so two in flight always keep up.
    # tf.data's autotuner buys nothing here, and tearing down an autotuned iterator stalled for 30-60 s
    # at the end of every training stage.
    options = tf.data.Options()
    options.autotune.enabled = False
    return options


_FIXED_BUFFERS = _fixed_buffers()


class _Table:
    def __init__(self, tasks: list[TaskExamples]):
        width = max(t.num_outputs for t in tasks)
        teacher, has_teacher = [], []
        for task in tasks:
            block = np.zeros((len(task.encoded), width), np.float32)
            if task.teacher_outputs is not None:
                block[:, :task.teacher_outputs.shape[1]] = task.teacher_outputs
            teacher.append(block)
            has_teacher.append(np.full(len(task.encoded), task.teacher_outputs is not None))
        encoded = EncodedExamples.concatenate([t.encoded for t in tasks])
        self.offsets = np.cumsum([0] + [len(t.encoded) for t in tasks[:-1]])
        self.token_ids = encoded.ragged("token_ids")
        self.segment_ids = encoded.ragged("segment_ids")
        self.row_lengths = encoded.lengths
        self.lengths = tf.constant(encoded.lengths, tf.int32)
        self.max_length = tf.constant(int(encoded.lengths.max()) if len(encoded.lengths) else 1, tf.int32)
        self.task_ids = tf.constant(np.concatenate([np.full(len(t.encoded), i, np.int32)
                                                    for i, t in enumerate(tasks)]))
        self.labels = tf.constant(np.concatenate([t.labels for t in tasks]).astype(np.float32))
        self.teacher = tf.constant(np.concatenate(teacher))
        self.has_teacher = tf.constant(np.concatenate(has_teacher))

    def gather_batch(self, rows, static_length: int | None = None, length_multiple: int = 1):
        if static_length is None:
            longest = tf.reduce_max(tf.gather(self.lengths, rows))
            length = tf.minimum(-(-longest // length_multiple) * length_multiple, self.max_length)  # padded_length
            token_ids = tf.gather(self.token_ids, rows).to_tensor()
            token_ids = tf.pad(token_ids, [[0, 0], [0, length - tf.shape(token_ids)[1]]])
        else:
            token_ids = tf.gather(self.token_ids, rows).to_tensor(shape=[None, static_length])
        return {
            "token_ids": token_ids,
            "segment_ids": tf.gather(self.segment_ids, rows).to_tensor(shape=tf.shape(token_ids)),
            "padding_mask": tf.sequence_mask(tf.gather(self.lengths, rows), tf.shape(token_ids)[1]),
            "task_id": tf.gather(self.task_ids, rows),
            "label": tf.gather(self.labels, rows),
            "teacher": tf.gather(self.teacher, rows),
            "has_teacher": tf.gather(self.has_teacher, rows),
        }


def training_dataset(tasks: list[TaskExamples], stream: ExampleStream, start_step: int = 0,
                     static_length: int | None = None, num_replicas: int = 1,
                     replicas: slice = slice(None), group_size: int = 0,
                     length_multiple: int = 1) -> tf.data.Dataset:
    """Batches for steps start_step … stream.num_steps − 1, in the order the sampler fixed.

    Each global batch is cut into `num_replicas` equal parts and the parts of `replicas` are yielded in
    order (one input pipeline feeding several local replicas). Every element is a tuple of length groups
    (see the module docstring; one group when `group_size` is 0), each a dict of features and targets.
    `static_length` pads every batch to that length instead of its longest example (TPUs want static
    shapes; benchmarks), in one group.
    """
    table = _Table(tasks)
    replica_batch = stream.batch_size // num_replicas
    rows = table.offsets[stream.task_ids] + stream.example_indices
    rows = rows[start_step * stream.batch_size:].reshape(-1, num_replicas, replica_batch)
    rows = rows[:, replicas].reshape(-1, replica_batch)
    sizes = [replica_batch] if static_length is not None else group_sizes(replica_batch, group_size)
    if len(sizes) > 1:  # stable: equal lengths keep the sampler's order
        rows = np.take_along_axis(rows, np.argsort(table.row_lengths[rows], axis=1, kind="stable"), axis=1)
    bounds = np.cumsum([0] + sizes)

    def gather_groups(batch_rows):
        return tuple(table.gather_batch(batch_rows[start:end], static_length, length_multiple)
                     for start, end in zip(bounds[:-1], bounds[1:]))

    return (tf.data.Dataset.from_tensor_slices(rows)
            .map(gather_groups, num_parallel_calls=2, deterministic=True)
            .prefetch(2)
            .with_options(_FIXED_BUFFERS))


def inference_dataset(encoded: EncodedExamples, batch_size: int,
                      length_multiple: int = 1) -> tuple[tf.data.Dataset, np.ndarray]:
    """(batches of features in length order, that order) — outputs[order] = results gives example order."""
    order = np.argsort(encoded.lengths, kind="stable")
    dummy_targets = np.zeros(len(encoded), np.float32)
    table = _Table([TaskExamples(encoded, dummy_targets, num_outputs=1)])
    dataset = (tf.data.Dataset.from_tensor_slices(order)
               .batch(batch_size)
               .map(lambda rows: table.gather_batch(rows, length_multiple=length_multiple),
                    num_parallel_calls=2, deterministic=True)
               .prefetch(2)
               .with_options(_FIXED_BUFFERS))
    return dataset, order
