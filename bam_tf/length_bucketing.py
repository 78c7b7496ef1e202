"""Batches of similar length: the sampler's stream regrouped, window by window, task mix kept.

Padding to the longest example of a batch already avoids padding to 128; grouping examples of similar
length into the same batch removes most of the rest. This is done on the sampler's index stream rather
than with tf.data's bucket_by_sequence_length so that the stream stays a pure function of the seed:
resume-by-step and the per-task example counts keep working unchanged.

Every batch keeps exactly the task of every slot the sampler drew; only which example of that task fills
a slot changes. Inside each window of `window_batches` batches, the batches get a random length rank,
and each task's examples of the window, sorted by length, are dealt out in that rank order: the batch of
rank 0 gets the shortest examples of every task it holds, the last rank the longest. Sorting the whole
window instead would put single-sentence and sentence-pair tasks into separate batches and un-mix
mixed batches (on GLUE the largest task's share of a batch went from 0.29 to 0.64). Each example stays
within the window the sampler put it in, so per-task epochs move by at most one window.
"""

import numpy as np

from bam_tf.length_groups import choose_group_size, group_sizes, padded_tokens
from bam_tf.task_sampler import ExampleStream

# The window the repository's CPU experiment configs use, and the one the log suggests when bucketing is off.
SUGGESTED_WINDOW = 32


def bucket_by_length(stream: ExampleStream, lengths_per_task: list[np.ndarray], window_batches: int,
                     seed: int) -> ExampleStream:
    if window_batches <= 1:
        return stream
    batch_size = stream.batch_size
    lengths = stream.slot_values(lengths_per_task)
    order = np.arange(len(lengths))
    window = window_batches * batch_size
    for window_index, start in enumerate(range(0, len(lengths), window)):
        slots = np.arange(start, min(start + window, len(lengths)))
        num_batches = len(slots) // batch_size
        rank_of_batch = np.random.default_rng([seed, 2, window_index]).permutation(num_batches)
        slots_by_rank = slots.reshape(num_batches, batch_size)[np.argsort(rank_of_batch)].reshape(-1)
        tasks_by_rank = stream.task_ids[slots_by_rank]
        window_tasks = stream.task_ids[slots]
        for task_id in np.unique(window_tasks):
            sources = slots[window_tasks == task_id]
            order[slots_by_rank[tasks_by_rank == task_id]] = sources[np.argsort(lengths[sources], kind="stable")]
    return ExampleStream(stream.task_ids[order], stream.example_indices[order], batch_size)


def bucketing_note(stream: ExampleStream, lengths_per_task: list[np.ndarray], window_batches: int, seed: int,
                   replica_batch: int, group_size: int) -> str:
    """The log's line on length bucketing. Off (the original's shuffled batches), it says how many padded
    tokens per real token the stage computes and how many SUGGESTED_WINDOW would leave (length groups
    included where the trainer would use them, without XLA's rounding)."""
    if window_batches > 1:
        return (f"length bucketing on: windows of {window_batches} batches (batches of similar lengths, not the "
                "original's shuffled batches; --length_bucketing_window=0 for those)")
    here = _padding_per_real_token(stream, lengths_per_task, replica_batch, group_size)
    bucketed = bucket_by_length(stream, lengths_per_task, SUGGESTED_WINDOW, seed)
    there = _padding_per_real_token(bucketed, lengths_per_task, replica_batch, group_size)
    return (f"length bucketing off (the original's shuffled batches): {here:.2f} padded tokens per real token; "
            f"--length_bucketing_window={SUGGESTED_WINDOW} (batches of similar lengths) would compute {there:.2f}")


def _padding_per_real_token(stream: ExampleStream, lengths_per_task: list[np.ndarray], replica_batch: int,
                            group_size: int) -> float:
    lengths = stream.slot_values(lengths_per_task).reshape(-1, replica_batch)
    cap = max(int(lengths.max()), 1) if lengths.size else 1
    chosen, _ = choose_group_size(lengths, group_size, 1, cap)
    sizes = group_sizes(replica_batch, chosen) if chosen else [replica_batch]
    return padded_tokens(lengths, sizes, 1, cap) / max(int(lengths.sum()), 1)
