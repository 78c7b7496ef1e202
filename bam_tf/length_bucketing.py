"""Batches of similar length: the sampler's stream regrouped, window by window.

Padding to the longest example of a batch already avoids padding to 128; grouping examples of similar
length into the same batch removes most of the rest. This is done on the sampler's index stream rather
than with tf.data's bucket_by_sequence_length so that the stream stays a pure function of the seed:
resume-by-step and the per-task example counts keep working unchanged.

Within each window of `window_batches` consecutive batches the same examples are sorted by length,
cut into batches again, and the batches are shuffled, so tasks' sampling proportions and each example's
epoch stay where the sampler put them, up to one window.
"""

import numpy as np

from bam_tf.task_sampler import ExampleStream


def bucket_by_length(stream: ExampleStream, lengths_per_task: list[np.ndarray], window_batches: int,
                     seed: int, single_task_batches: bool = False) -> ExampleStream:
    if window_batches <= 1:
        return stream
    batch_size = stream.batch_size
    lengths = np.empty(len(stream.task_ids), np.int64)
    for task_id, task_lengths in enumerate(lengths_per_task):
        slots = stream.task_ids == task_id
        lengths[slots] = task_lengths[stream.example_indices[slots]]
    order = np.empty(len(lengths), np.int64)
    window = window_batches * batch_size
    for window_index, start in enumerate(range(0, len(lengths), window)):
        slots = np.arange(start, min(start + window, len(lengths)))
        # per_task batches must stay single-task: sort by (task, length), and tasks own whole batches
        keys = (lengths[slots], stream.task_ids[slots]) if single_task_batches else (lengths[slots],)
        batches = slots[np.lexsort(keys)].reshape(-1, batch_size)
        rng = np.random.default_rng([seed, 2, window_index])
        order[slots] = batches[rng.permutation(len(batches))].reshape(-1)
    return ExampleStream(stream.task_ids[order], stream.example_indices[order], batch_size)
