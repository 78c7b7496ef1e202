"""Tests for bam_tf.task_sampler: task probabilities, step counts, and the deterministic example stream."""

import numpy as np
import pytest

from bam_tf.task_sampler import ExampleStream, example_stream, num_train_steps, task_probabilities

# ---- task_probabilities ---------------------------------------------------------------------


def test_task_probabilities_square_root_by_hand():
    # sqrt(100) = 10, sqrt(400) = 20 -> [10, 20] / 30 = [1/3, 2/3]
    np.testing.assert_allclose(task_probabilities([100, 400], 0.5), [1 / 3, 2 / 3], rtol=1e-12)


def test_task_probabilities_exponent_zero_is_uniform_and_one_is_proportional():
    np.testing.assert_allclose(task_probabilities([100, 400, 7], 0.0), [1 / 3, 1 / 3, 1 / 3], rtol=1e-12)
    # 100 + 400 + 500 = 1000 -> [0.1, 0.4, 0.5]
    np.testing.assert_allclose(task_probabilities([100, 400, 500], 1.0), [0.1, 0.4, 0.5], rtol=1e-12)


def test_task_probabilities_bam_exponent_by_hand():
    # 16^0.75 = 8, 81^0.75 = 27 -> [8, 27] / 35
    np.testing.assert_allclose(task_probabilities([16, 81], 0.75), [8 / 35, 27 / 35], rtol=1e-12)


@pytest.mark.parametrize("sizes", [[], [100, 0], [5, -3], [[1, 2]]])
def test_task_probabilities_rejects_bad_sizes(sizes):
    with pytest.raises(ValueError, match="non-empty list of positive counts"):
        task_probabilities(sizes, 0.75)


# ---- num_train_steps ----------------------------------------------------------------------


def test_num_train_steps_by_hand():
    # 3 epochs over 100 + 28 = 128 examples, batch 32 -> 384 / 32 = 12
    assert num_train_steps([100, 28], 3, 32) == 12
    # 1 epoch over 100 examples, batch 32 -> ceil(3.125) = 4
    assert num_train_steps([100], 1, 32) == 4
    # 0.5 epochs over 10 examples, batch 4 -> ceil(1.25) = 2
    assert num_train_steps([10], 0.5, 4) == 2
    # never fewer than one step
    assert num_train_steps([1], 0.001, 128) == 1
    # epochs as written, not as a float: 1.1 · 1600 / 32 = 55 exactly (1.1 * 1600 / 32 in floats is 55.000000000000007)
    assert num_train_steps([1600], 1.1, 32) == 55
    assert num_train_steps([1000, 2000], 2.2, 8) == 825  # 2.2 · 3000 / 8 = 825 (floats: 825.0000000000001)
    # --max_train_steps caps it; 0 means no cap
    assert num_train_steps([100, 28], 3, 32, max_steps=5) == 5
    assert num_train_steps([100, 28], 3, 32, max_steps=50) == 12
    assert num_train_steps([100, 28], 3, 32, max_steps=0) == 12


# ---- example_stream ---------------------------------------------------------------------------


def test_stream_shape_and_dtypes():
    stream = example_stream([10, 20], 0.75, batch_size=4, num_steps=6, mode="mixed", seed=0)
    assert isinstance(stream, ExampleStream)
    assert stream.num_steps == 6 and stream.batch_size == 4
    assert stream.task_ids.shape == (24,) and stream.task_ids.dtype == np.int32
    assert stream.example_indices.shape == (24,) and stream.example_indices.dtype == np.int64


@pytest.mark.parametrize("mode", ["mixed", "per_task"])
def test_stream_is_deterministic_for_a_seed_and_differs_across_seeds(mode):
    a = example_stream([30, 50, 7], 0.75, 8, 20, mode, seed=3)
    b = example_stream([30, 50, 7], 0.75, 8, 20, mode, seed=3)
    c = example_stream([30, 50, 7], 0.75, 8, 20, mode, seed=4)
    np.testing.assert_array_equal(a.task_ids, b.task_ids)
    np.testing.assert_array_equal(a.example_indices, b.example_indices)
    assert not (np.array_equal(a.task_ids, c.task_ids) and np.array_equal(a.example_indices, c.example_indices))


def test_mixed_stream_proportions_follow_probabilities():
    sizes = [100, 400]  # exponent 0.5 -> [1/3, 2/3]
    stream = example_stream(sizes, 0.5, batch_size=32, num_steps=1000, mode="mixed", seed=0)
    fractions = np.bincount(stream.task_ids, minlength=2) / len(stream.task_ids)
    # 32000 draws: standard error sqrt(p(1-p)/n) ≈ 0.0026, so 0.015 is ~6 sigma
    np.testing.assert_allclose(fractions, [1 / 3, 2 / 3], atol=0.015)
    # mixed batches really mix: most batches hold both tasks
    per_batch = stream.task_ids.reshape(-1, 32)
    mixed_batches = np.mean([len(set(row.tolist())) == 2 for row in per_batch])
    assert mixed_batches > 0.9


def test_per_task_stream_has_one_task_per_batch_with_batch_level_proportions():
    sizes = [100, 400]
    stream = example_stream(sizes, 0.5, batch_size=16, num_steps=3000, mode="per_task", seed=1)
    per_batch = stream.task_ids.reshape(-1, 16)
    assert np.all(per_batch == per_batch[:, :1])  # each batch is a single task
    batch_tasks = per_batch[:, 0]
    # 3000 batches: standard error ≈ 0.0086, so 0.04 is ~4.6 sigma
    np.testing.assert_allclose(np.bincount(batch_tasks, minlength=2) / 3000, [1 / 3, 2 / 3], atol=0.04)
    assert set(np.unique(batch_tasks).tolist()) == {0, 1}


@pytest.mark.parametrize("mode", ["mixed", "per_task"])
def test_each_epoch_of_a_task_is_a_permutation(mode):
    sizes = [7, 13]
    stream = example_stream(sizes, 1.0, batch_size=5, num_steps=40, mode=mode, seed=2)
    for task_id, size in enumerate(sizes):
        indices = stream.example_indices[stream.task_ids == task_id]
        assert len(indices) >= 2 * size, "test needs at least two full passes over every task"
        assert indices.min() >= 0 and indices.max() < size
        full_epochs = len(indices) // size
        for epoch in range(full_epochs):
            chunk = indices[epoch * size:(epoch + 1) * size]
            assert sorted(chunk.tolist()) == list(range(size)), (task_id, epoch)
        remainder = indices[full_epochs * size:]
        assert len(set(remainder.tolist())) == len(remainder)  # partial last pass: no repeats
        # passes are reshuffled, not the same order every time
        assert not np.array_equal(indices[:size], indices[size:2 * size])


def test_indices_stay_in_range_for_tiny_and_large_tasks():
    sizes = [1, 3, 1000]
    stream = example_stream(sizes, 0.0, batch_size=8, num_steps=50, mode="mixed", seed=5)
    for task_id, size in enumerate(sizes):
        indices = stream.example_indices[stream.task_ids == task_id]
        assert len(indices) > 0
        assert indices.min() >= 0 and indices.max() < size
    assert np.all(stream.example_indices[stream.task_ids == 0] == 0)  # a one-example task


def test_examples_per_task_counts():
    stream = ExampleStream(task_ids=np.array([0, 1, 1, 2, 0, 0], np.int32),
                           example_indices=np.zeros(6, np.int64), batch_size=2)
    assert stream.num_steps == 3
    assert stream.examples_per_task(3).tolist() == [3, 2, 1]
    assert stream.examples_per_task(3, up_to_step=1).tolist() == [1, 1, 0]  # slots 0-1
    assert stream.examples_per_task(3, up_to_step=2).tolist() == [1, 2, 1]  # slots 0-3
    assert stream.examples_per_task(4).tolist() == [3, 2, 1, 0]  # minlength pads absent tasks


def test_examples_per_task_on_a_real_stream_sums_to_slots():
    stream = example_stream([30, 50], 0.75, batch_size=4, num_steps=25, mode="mixed", seed=0)
    counts = stream.examples_per_task(2)
    assert counts.sum() == 100
    assert counts.tolist() == np.bincount(stream.task_ids, minlength=2).tolist()
    assert stream.examples_per_task(2, up_to_step=10).sum() == 40


def test_unknown_mode_and_bad_sizes_raise():
    with pytest.raises(ValueError, match="unknown task mixing mode 'shuffled'"):
        example_stream([10], 0.75, 4, 2, "shuffled", seed=0)
    with pytest.raises(ValueError, match="must be positive"):
        example_stream([10], 0.75, 0, 2, "mixed", seed=0)
    with pytest.raises(ValueError, match="must be positive"):
        example_stream([10], 0.75, 4, 0, "mixed", seed=0)
    with pytest.raises(ValueError, match="positive counts"):
        example_stream([10, 0], 0.75, 4, 2, "mixed", seed=0)
