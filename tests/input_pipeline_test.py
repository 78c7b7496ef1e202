"""Tests for bam_tf.input_pipeline's batches cut into length groups, and rounded shapes (synthetic encodings, no tokenizer).

Batches padded to their own longest example, teacher columns and resume are tested with the real
vocabulary in text_encoding_test.py.
"""

import numpy as np
import pytest

from bam_tf.input_pipeline import TaskExamples, inference_dataset, training_dataset
from bam_tf.task_sampler import example_stream
from bam_tf.text_encoding import EncodedExamples


def _encoded(lengths, first_token):
    """Row i is [first_token + i] followed by filler: its first token names it."""
    lengths = np.asarray(lengths, np.int32)
    tokens = np.concatenate([[first_token + i] + [7] * (n - 1) for i, n in enumerate(lengths)]).astype(np.int32)
    return EncodedExamples(tokens, np.zeros_like(tokens), lengths)


def _tasks():
    rng = np.random.default_rng(0)
    short = _encoded(rng.integers(3, 14, 30), 1000)  # single sentences
    long = _encoded(rng.integers(30, 61, 20), 2000)  # sentence pairs
    return [TaskExamples(short, np.arange(30, dtype=np.float32) % 2, 2, None),
            TaskExamples(long, np.linspace(0, 1, 20, dtype=np.float32), 1, None)]


def _names(group):
    """(first token, length) of each row: which example it is, and how long."""
    return list(zip(group["token_ids"][:, 0].tolist(), group["padding_mask"].sum(axis=1).tolist()))


@pytest.mark.parametrize("multiple", [1, 8])
def test_length_groups_hold_the_samplers_batch_sorted_and_each_padded_to_its_own_longest(multiple):
    tasks = _tasks()
    stream = example_stream([30, 20], 1.0, batch_size=12, num_steps=6, mode="mixed", seed=2)
    plain = list(training_dataset(tasks, stream, length_multiple=1).as_numpy_iterator())
    grouped = list(training_dataset(tasks, stream, group_size=4, length_multiple=multiple).as_numpy_iterator())
    assert len(plain) == len(grouped) == 6
    longest_of_data = max(int(t.encoded.lengths.max()) for t in tasks)
    widths = set()
    for (batch,), groups in zip(plain, grouped):
        assert [len(g["task_id"]) for g in groups] == [4, 4, 4]
        rows = [row for g in groups for row in _names(g)]
        assert sorted(rows) == sorted(_names(batch))  # the same examples, none lost or repeated
        lengths = [n for _, n in rows]
        assert lengths == sorted(lengths)  # shortest first across the groups
        for g in groups:
            own_longest = int(g["padding_mask"].sum(axis=1).max())
            expected = min(-(-own_longest // multiple) * multiple, longest_of_data)
            assert g["token_ids"].shape[1] == g["padding_mask"].shape[1] == expected
            widths.add(expected)
        # targets travel with their rows
        label_of = dict(zip(_names(batch), batch["label"].tolist()))
        task_of = dict(zip(_names(batch), batch["task_id"].tolist()))
        for g in groups:
            assert [label_of[r] for r in _names(g)] == g["label"].tolist()
            assert [task_of[r] for r in _names(g)] == g["task_id"].tolist()
    assert len(widths) > 2
    if multiple == 8:
        assert all(w % 8 == 0 or w == longest_of_data for w in widths)


def test_each_replica_groups_its_own_slice_and_resume_gives_the_same_groups():
    tasks = _tasks()
    stream = example_stream([30, 20], 1.0, batch_size=12, num_steps=5, mode="mixed", seed=4)
    (whole,) = zip(*[[b] for (b,) in training_dataset(tasks, stream, length_multiple=1).as_numpy_iterator()])
    for replica in range(2):
        groups_per_step = list(training_dataset(tasks, stream, num_replicas=2, replicas=slice(replica, replica + 1),
                                                group_size=3).as_numpy_iterator())
        for step, groups in enumerate(groups_per_step):
            assert [len(g["task_id"]) for g in groups] == [3, 3]
            own_rows = _names(whole[step])[replica * 6:(replica + 1) * 6]  # rows [r·6, (r+1)·6) of the batch
            assert sorted(r for g in groups for r in _names(g)) == sorted(own_rows)
    full = list(training_dataset(tasks, stream, group_size=4, length_multiple=8).as_numpy_iterator())
    resumed = list(training_dataset(tasks, stream, start_step=3, group_size=4, length_multiple=8).as_numpy_iterator())
    assert len(resumed) == 2
    for groups_a, groups_b in zip(full[3:], resumed):
        for a, b in zip(groups_a, groups_b):
            for key in a:
                np.testing.assert_array_equal(a[key], b[key])


def test_inference_batches_are_rounded_up_and_keep_example_order():
    encoded = _encoded([5, 17, 3, 30, 9, 12, 22], 100)
    dataset, order = inference_dataset(encoded, batch_size=3, length_multiple=8)
    batches = list(dataset.as_numpy_iterator())
    assert [b["token_ids"].shape for b in batches] == [(3, 16), (3, 24), (1, 30)]  # 3 5 9 | 12 17 22 | 30: 32 capped at the longest
    first_tokens = np.empty(len(encoded), np.int64)
    first_tokens[order] = np.concatenate([b["token_ids"][:, 0] for b in batches])
    assert first_tokens.tolist() == list(range(100, 107))
