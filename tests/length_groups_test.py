"""bam_tf.length_groups: group sizes, padded tokens and the per-stage decision, by hand."""

import numpy as np

from bam_tf.length_groups import MIN_PADDING_SAVING, choose_group_size, group_sizes, padded_length, padded_tokens


def test_group_sizes_by_hand():
    assert group_sizes(128, 32) == [32, 32, 32, 32]
    assert group_sizes(64, 16) == [16, 16, 16, 16]  # a replica's half of a batch of 128
    assert group_sizes(10, 4) == [4, 3, 3]  # ⌈10 / 4⌉ = 3 groups, as equal as possible, larger first
    assert group_sizes(128, 0) == [128]  # off
    assert group_sizes(8, 8) == [8] and group_sizes(8, 100) == [8]  # the slice fits one group


def test_padded_length_rounds_up_but_never_past_the_cap():
    assert padded_length(9, 8, cap=128).tolist() == 16
    assert padded_length(16, 8, cap=128).tolist() == 16
    assert padded_length([1, 121, 127], 16, cap=124).tolist() == [16, 124, 124]
    assert padded_length(37, 1, cap=128).tolist() == 37


def test_padded_tokens_by_hand():
    lengths = np.array([[3, 40, 5, 38], [10, 10, 12, 50]])
    # whole slices: 4 · 40 + 4 · 50 = 360
    assert padded_tokens(lengths, [4], 1, cap=64) == 360
    # sorted then 2 groups: [3 5 | 38 40] → 2·5 + 2·40 = 90; [10 10 | 12 50] → 2·10 + 2·50 = 120
    assert padded_tokens(lengths, [2, 2], 1, cap=64) == 210
    # rounded to 8: 2·8 + 2·40 = 96; 2·16 + 2·56 = 144
    assert padded_tokens(lengths, [2, 2], 8, cap=64) == 240
    # capped at the data's longest (50): 2·8 + 2·40; 2·16 + 2·50
    assert padded_tokens(lengths, [2, 2], 8, cap=50) == 96 + 132


def test_mixed_batches_are_split_and_uniform_ones_are_not():
    rng = np.random.default_rng(0)
    mixed = np.where(rng.random((50, 32)) < 0.5, rng.integers(5, 15, (50, 32)), rng.integers(40, 120, (50, 32)))
    size, why = choose_group_size(mixed, 16, 1, cap=128)
    assert size == 16 and why.startswith("length groups on: padded tokens per real token")
    # single-task batches made uniform by length bucketing: 20-23 tokens in every slot
    uniform = rng.integers(20, 24, (50, 32))
    saving = 1 - padded_tokens(uniform, [16, 16], 1, 128) / padded_tokens(uniform, [32], 1, 128)
    assert 0 < saving < MIN_PADDING_SAVING
    size, why = choose_group_size(uniform, 16, 1, cap=128)
    assert size == 0 and why.startswith("length groups off") and f"{MIN_PADDING_SAVING:.0%}" in why
    size, why = choose_group_size(mixed[:, :16], 16, 1, cap=128)  # the slice is one group already
    assert size == 0 and "one group per batch" in why
