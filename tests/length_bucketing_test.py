import numpy as np
import pytest

from bam_tf.length_bucketing import bucket_by_length
from bam_tf.task_sampler import example_stream

SIZES = [50, 80]
LENGTHS = [np.random.default_rng(1).integers(5, 120, 50), np.random.default_rng(2).integers(5, 40, 80)]


def _lengths(stream):
    return np.array([LENGTHS[t][i] for t, i in zip(stream.task_ids, stream.example_indices)])


def _pairs(stream, start, stop):
    return sorted(zip(stream.task_ids[start:stop].tolist(), stream.example_indices[start:stop].tolist()))


@pytest.mark.parametrize("mode", ["mixed", "per_task"])
def test_each_window_keeps_its_examples_and_batches_get_shorter(mode):
    stream = example_stream(SIZES, 0.75, batch_size=8, num_steps=40, mode=mode, seed=0)
    bucketed = bucket_by_length(stream, LENGTHS, window_batches=10, seed=0, single_task_batches=mode == "per_task")
    window = 10 * 8
    for start in range(0, 40 * 8, window):
        assert _pairs(bucketed, start, start + window) == _pairs(stream, start, start + window)
    padded = lambda s: _lengths(s).reshape(-1, 8).max(axis=1).sum()  # tokens after per-batch padding
    assert padded(bucketed) < 0.85 * padded(stream)
    if mode == "per_task":
        assert all(len(set(batch)) == 1 for batch in bucketed.task_ids.reshape(-1, 8).tolist())


def test_inside_a_window_batches_hold_neighbouring_lengths():
    stream = example_stream(SIZES, 0.75, batch_size=4, num_steps=8, mode="mixed", seed=0)
    bucketed = bucket_by_length(stream, LENGTHS, window_batches=8, seed=0)
    batches = _lengths(bucketed).reshape(-1, 4)
    ranges = sorted((b.min(), b.max()) for b in batches)
    for (_, previous_max), (next_min, _) in zip(ranges, ranges[1:]):
        assert previous_max <= next_min  # one window = the whole stream here: sorted runs, no overlap


def test_bucketing_is_deterministic_and_off_for_windows_of_one():
    stream = example_stream(SIZES, 0.75, batch_size=8, num_steps=12, mode="mixed", seed=5)
    a = bucket_by_length(stream, LENGTHS, 4, seed=1)
    b = bucket_by_length(stream, LENGTHS, 4, seed=1)
    assert np.array_equal(a.task_ids, b.task_ids) and np.array_equal(a.example_indices, b.example_indices)
    assert bucket_by_length(stream, LENGTHS, 1, seed=1) is stream
    assert bucket_by_length(stream, LENGTHS, 0, seed=1) is stream
