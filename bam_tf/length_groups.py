"""Length groups: one replica's slice of a mixed batch cut into groups of similar length.

A mixed batch is nearly always padded to a sentence pair, so its 12-token CoLA sentences would be
computed at the length of an RTE pair. Sorting the slice by length and cutting it into groups of about
`group_size` examples, each padded to its own longest example, removes most of that padding; the model
adds up the groups' summed losses and gradients before its one update (MultiTaskBert.train_step), which
is the update of the unsplit batch.

Smaller groups run smaller matmuls, which a CPU computes less efficiently (measured: a group of 32 × 16
tokens at ~80% of the token rate of 128 × 32). So a stage is split only where the groups save enough
padding to pay for that: the decision is made once per stage, from the padded tokens of its whole
stream (so a resumed stage decides the same), and logged. Batches of one task that length bucketing has
made uniform (teachers with --length_bucketing_window) stay whole; mixed student batches are split.
"""

import numpy as np

# Below this share of padded tokens saved, groups cost more in matmul efficiency than they save.
MIN_PADDING_SAVING = 0.15


def group_sizes(replica_batch_size: int, group_size: int) -> list[int]:
    """Sizes of the groups one replica's slice of a batch is cut into: ⌈batch / group_size⌉ groups as equal
    as possible (larger first); one group when group_size is 0 or covers the slice."""
    if group_size <= 0 or group_size >= replica_batch_size:
        return [replica_batch_size]
    num_groups = -(-replica_batch_size // group_size)
    return [len(part) for part in np.array_split(np.arange(replica_batch_size), num_groups)]


def padded_length(longest, multiple: int, cap: int):
    """The length a group (or batch) is padded to: its longest example rounded up to `multiple`, at most
    `cap` (the longest example of the data, so rounding never exceeds what the encoder produced)."""
    return np.minimum(-(-np.asarray(longest) // multiple) * multiple, cap)


def padded_tokens(lengths: np.ndarray, sizes: list[int], multiple: int, cap: int) -> int:
    """Padded tokens of replica slices `lengths` [slices, replica batch] cut into groups of `sizes`."""
    if len(sizes) > 1:
        lengths = np.sort(lengths, axis=1)
    bounds = np.cumsum([0] + sizes)
    return int(sum(size * padded_length(lengths[:, start:end].max(axis=1), multiple, cap).sum()
                   for size, start, end in zip(sizes, bounds[:-1], bounds[1:])))


def choose_group_size(lengths: np.ndarray, group_size: int, multiple: int, cap: int) -> tuple[int, str]:
    """(the group size a stage uses, why), from its replica slices' example lengths [slices, replica batch]:
    `group_size`, or 0 (no groups) where groups would save less than MIN_PADDING_SAVING of padded tokens."""
    replica_batch = lengths.shape[1]
    sizes = group_sizes(replica_batch, group_size)
    if len(sizes) == 1:
        return 0, (f"one group per batch (--length_group_size={group_size}, {replica_batch} examples per replica)")
    real = max(int(lengths.sum()), 1)
    whole = padded_tokens(lengths, [replica_batch], multiple, cap)
    grouped = padded_tokens(lengths, sizes, multiple, cap)
    saving = 1 - grouped / whole
    summary = (f"padded tokens per real token {whole / real:.2f} in whole batches, {grouped / real:.2f} in "
               f"groups of {'/'.join(map(str, sorted(set(sizes), reverse=True)))}")
    if saving < MIN_PADDING_SAVING:
        return 0, (f"length groups off: {summary}, {saving:.0%} fewer, below the {MIN_PADDING_SAVING:.0%} that "
                   "smaller matmuls cost")
    return group_size, f"length groups on: {summary} ({saving:.0%} fewer)"
