import numpy as np
import pytest

from bam_tf.length_bucketing import bucket_by_length, bucketing_note
from bam_tf.task_sampler import ExampleStream, example_stream

SIZES = [50, 80]
LENGTHS = [np.random.default_rng(1).integers(5, 120, 50), np.random.default_rng(2).integers(5, 40, 80)]


def _lengths(stream, lengths=LENGTHS):
    return np.array([lengths[t][i] for t, i in zip(stream.task_ids, stream.example_indices)])


def _pairs(stream, start, stop):
    return sorted(zip(stream.task_ids[start:stop].tolist(), stream.example_indices[start:stop].tolist()))


def _padded_tokens(stream, lengths=LENGTHS):
    return _lengths(stream, lengths).reshape(-1, stream.batch_size).max(axis=1).sum()


@pytest.mark.parametrize("mode", ["mixed", "per_task"])
def test_every_batch_keeps_its_task_mix_and_every_window_its_examples(mode):
    stream = example_stream(SIZES, 0.75, batch_size=8, num_steps=40, mode=mode, seed=0)
    bucketed = bucket_by_length(stream, LENGTHS, window_batches=10, seed=0)
    # Slot by slot the same task, so every batch holds exactly the multiset of tasks the sampler drew.
    np.testing.assert_array_equal(bucketed.task_ids, stream.task_ids)
    window = 10 * 8
    for start in range(0, 40 * 8, window):
        assert _pairs(bucketed, start, start + window) == _pairs(stream, start, start + window)
    assert _padded_tokens(bucketed) < 0.9 * _padded_tokens(stream)


def test_one_task_windows_become_sorted_runs():
    stream = example_stream([50], 0.75, batch_size=4, num_steps=8, mode="mixed", seed=0)
    bucketed = bucket_by_length(stream, LENGTHS[:1], window_batches=8, seed=0)
    batches = _lengths(bucketed).reshape(-1, 4)
    ranges = sorted((b.min(), b.max()) for b in batches)
    for (_, previous_max), (next_min, _) in zip(ranges, ranges[1:]):
        assert previous_max <= next_min  # one window = the whole stream here: sorted runs, no overlap


def test_hand_worked_window():
    """2 batches of 3, tasks [0 1 0 | 1 1 0]; rank order from the seed; each task dealt shortest first."""
    from bam_tf.task_sampler import ExampleStream

    stream = ExampleStream(np.array([0, 1, 0, 1, 1, 0], np.int32), np.array([0, 0, 1, 1, 2, 2]), 3)
    lengths = [np.array([30, 10, 20]), np.array([5, 50, 7])]
    bucketed = bucket_by_length(stream, lengths, window_batches=2, seed=0)
    rank_of_batch = np.random.default_rng([0, 2, 0]).permutation(2)
    np.testing.assert_array_equal(bucketed.task_ids, stream.task_ids)
    if rank_of_batch.tolist() == [0, 1]:  # batch 0 first: task 0 gets 10, 20 then 30; task 1 gets 5 then 7, 50
        expected = [1, 0, 2, 2, 1, 0]
    else:  # batch 1 first: task 1 gets 5, 7 then 50; task 0 gets 10 then 20, 30
        expected = [2, 1, 0, 0, 2, 1]
    np.testing.assert_array_equal(bucketed.example_indices, expected)


def test_a_short_and_a_long_task_stay_mixed():
    """Single-sentence and pair tasks have disjoint lengths; sorting the window would separate them."""
    sizes = [400, 300]
    lengths = [np.random.default_rng(3).integers(8, 30, 400), np.random.default_rng(4).integers(40, 128, 300)]
    stream = example_stream(sizes, 0.75, batch_size=16, num_steps=60, mode="mixed", seed=1)
    bucketed = bucket_by_length(stream, lengths, window_batches=20, seed=1)
    share = lambda s: np.array([np.bincount(b, minlength=2).max() / 16 for b in s.task_ids.reshape(-1, 16)])
    np.testing.assert_array_equal(share(bucketed), share(stream))
    assert share(bucketed).mean() < 0.75
    assert _padded_tokens(bucketed, lengths) < _padded_tokens(stream, lengths)


def test_bucketing_is_deterministic_and_off_for_windows_of_one():
    stream = example_stream(SIZES, 0.75, batch_size=8, num_steps=12, mode="mixed", seed=5)
    a = bucket_by_length(stream, LENGTHS, 4, seed=1)
    b = bucket_by_length(stream, LENGTHS, 4, seed=1)
    assert np.array_equal(a.task_ids, b.task_ids) and np.array_equal(a.example_indices, b.example_indices)
    assert bucket_by_length(stream, LENGTHS, 1, seed=1) is stream
    assert bucket_by_length(stream, LENGTHS, 0, seed=1) is stream


def test_the_note_says_what_bucketing_would_save_when_it_is_off():
    # One task, two batches of 4 alternating between 1 and 10 tokens: each batch padded to 10 is 80 padded
    # tokens for 44 real ones (1.82); bucketed, one batch of 1s and one of 10s need no padding (1.00).
    stream = ExampleStream(np.zeros(8, np.int64), np.arange(8), batch_size=4)
    lengths = [np.array([1, 10] * 4)]
    note = bucketing_note(stream, lengths, window_batches=0, seed=0, replica_batch=4, group_size=0)
    assert note == ("length bucketing off (the original's shuffled batches): 1.82 padded tokens per real token; "
                    "--length_bucketing_window=32 (batches of similar lengths) would compute 1.00")
    # Two replicas of 2: each slice (1, 10) is padded to 10, the same 80 tokens; groups of 1 would compute
    # no padding at all and save more than 15%, so the trainer would use them (1.00 either way).
    note = bucketing_note(stream, lengths, window_batches=0, seed=0, replica_batch=2, group_size=1)
    assert "1.00 padded tokens per real token" in note and "would compute 1.00" in note
    assert bucketing_note(stream, lengths, window_batches=32, seed=0, replica_batch=4, group_size=0).startswith(
        "length bucketing on: windows of 32 batches")


def test_bucketing_is_off_by_default_as_in_the_original():
    from bam_tf.config import BamConfig
    assert BamConfig().length_bucketing_window == 0
