"""Tests for bam_tf.text_encoding and bam_tf.input_pipeline with the real default (uncased) vocabulary."""

import os

import numpy as np
import pytest
import tensorflow as tf

from bam_tf.backbone import _hf_tokenizer, packaged_minilm_dir
from bam_tf.glue_reader import TaskData
from bam_tf.task_set import glue_task
from bam_tf.input_pipeline import TaskExamples, inference_dataset, training_dataset
from bam_tf.task_sampler import example_stream
from bam_tf.text_encoding import EncodedExamples, TextEncoder, encode_task_data

RTE, COLA, STSB = glue_task("RTE"), glue_task("CoLA"), glue_task("STS-B")


@pytest.fixture(scope="module")
def tokenizer():
    return _hf_tokenizer(packaged_minilm_dir())


@pytest.fixture(scope="module")
def vocab():
    with open(os.path.join(packaged_minilm_dir(), "vocab.txt"), encoding="utf-8") as f:
        return [line.rstrip("\n") for line in f]


def _encode_one(encoder, a, b=None):
    out = encoder(tf.constant([a]), None if b is None else tf.constant([b]))
    return {k: v.numpy()[0] for k, v in out.items()}


# ---- TextEncoder -----------------------------------------------------------------------------------

def test_pair_packing_and_segment_ids(tokenizer, vocab):
    encoder = TextEncoder(tokenizer, 16)
    out = _encode_one(encoder, "The cat sat", "on a mat")
    mask = out["padding_mask"]
    assert out["token_ids"].shape == (16,) and mask.sum() == 9  # 3 + 3 words + [CLS] + 2 [SEP]
    assert [vocab[i] for i in out["token_ids"][mask]] == [
        "[CLS]", "the", "cat", "sat", "[SEP]", "on", "a", "mat", "[SEP]"]  # lowercased
    assert out["segment_ids"][mask].tolist() == [0, 0, 0, 0, 0, 1, 1, 1, 1]
    assert np.all(out["token_ids"][~mask] == tokenizer.pad_token_id)
    assert mask.tolist() == [True] * 9 + [False] * 7  # padding only at the end
    assert vocab[tokenizer.cls_token_id] == "[CLS]" and vocab[tokenizer.sep_token_id] == "[SEP]"


def test_single_sentence_packing(tokenizer, vocab):
    out = _encode_one(TextEncoder(tokenizer, 8), "Hello world")
    mask = out["padding_mask"]
    assert [vocab[i] for i in out["token_ids"][mask]] == ["[CLS]", "hello", "world", "[SEP]"]
    assert out["segment_ids"][mask].tolist() == [0, 0, 0, 0]


def test_long_pair_is_truncated_keeping_both_separators(tokenizer, vocab):
    a = "a b c d e f g h i j k l"  # 12 single-letter word pieces
    b = "m n o p q r s t u v w"  # 11
    out = _encode_one(TextEncoder(tokenizer, 12), a, b)
    tokens = [vocab[i] for i in out["token_ids"]]
    # 12 − 3 special tokens = 9 left; trimming the longer segment first (12, 11) -> (5, 4)
    assert tokens == ["[CLS]", "a", "b", "c", "d", "e", "[SEP]", "m", "n", "o", "p", "[SEP]"]
    assert out["padding_mask"].all()
    assert out["segment_ids"].tolist() == [0] * 7 + [1] * 5


def test_long_first_segment_with_short_second_keeps_the_second_whole(tokenizer, vocab):
    out = _encode_one(TextEncoder(tokenizer, 8), "a b c d e f g h i j", "z")
    # budget 5: (10, 1) -> the long one is cut to 4, the short one is kept
    assert [vocab[i] for i in out["token_ids"]] == ["[CLS]", "a", "b", "c", "d", "[SEP]", "z", "[SEP]"]


def test_accents_are_stripped_like_hugging_face_uncased(tokenizer):
    encoder = TextEncoder(tokenizer, 16)
    accented = _encode_one(encoder, "Café Über naïve", "résumé")
    plain = _encode_one(encoder, "cafe uber naive", "resume")
    np.testing.assert_array_equal(accented["token_ids"], plain["token_ids"])
    assert tokenizer.token_to_id("[UNK]") not in accented["token_ids"].tolist()


def test_empty_strings(tokenizer):
    encoder = TextEncoder(tokenizer, 8)
    pair = _encode_one(encoder, "", "")
    cls, sep = tokenizer.cls_token_id, tokenizer.sep_token_id
    assert pair["token_ids"][pair["padding_mask"]].tolist() == [cls, sep, sep]
    assert pair["segment_ids"][pair["padding_mask"]].tolist() == [0, 0, 1]
    single = _encode_one(encoder, "")
    assert single["token_ids"][single["padding_mask"]].tolist() == [cls, sep]


@pytest.mark.parametrize("graph", [False, True])
def test_pair_batches_of_different_sizes_are_refused(tokenizer, graph):
    """Without the check keras-hub's packer read past the shorter batch (garbage ids, once an abort)."""
    encoder = TextEncoder(tokenizer, 8)
    call = tf.function(encoder) if graph else encoder
    for first, second in ((["a", "b"], ["x"]), (["a"], ["x", "y", "z"]), ([], ["x"])):
        with pytest.raises(tf.errors.InvalidArgumentError,
                           match="sentence1 and sentence2 must hold the same number of sentences"):
            call(tf.constant(first, tf.string), tf.constant(second, tf.string))
    assert call(tf.constant(["a", "b"]), tf.constant(["x", "y"]))["token_ids"].shape == (2, 8)


def test_max_seq_length_below_three_is_rejected(tokenizer):
    with pytest.raises(ValueError, match="at least 3"):
        TextEncoder(tokenizer, 2)


# ---- encode_task_data -------------------------------------------------------------------------------

TEXT_A = ["The cat sat.", "A", "The quick brown fox jumps over the lazy dog near the river bank today",
          "", "Is it raining?", "Yes", "Numbers 1 2 3 4 5 6 7"]
TEXT_B = ["On a mat.", "B c", "", "Only b", "It is not raining at all in this town", "No", "8"]


def _pair_data(task=RTE, n=len(TEXT_A)):
    labels = (np.arange(n) % 2).astype(np.int32) if not task.is_regression else np.linspace(0, 5, n, dtype=np.float32)
    return TaskData(task=task, split="train", ids=[f"train-{i}" for i in range(n)], text_a=TEXT_A[:n],
                    text_b=TEXT_B[:n], labels=labels, official_index=[str(i) for i in range(n)],
                    source="synthetic.tsv")


def _rows(encoded, name="token_ids"):
    starts = np.concatenate([[0], np.cumsum(encoded.lengths)[:-1]])
    flat = getattr(encoded, name)
    return [flat[s:s + n].tolist() for s, n in zip(starts, encoded.lengths)]


def test_encode_task_data_variable_length_rows(tokenizer):
    encoder = TextEncoder(tokenizer, 16)
    data = _pair_data()
    encoded = encode_task_data(data, encoder, batch_size=3)  # several batches, last one partial
    assert len(encoded) == len(data)
    assert encoded.token_ids.dtype == np.int32 and encoded.segment_ids.dtype == np.int32
    assert encoded.lengths.dtype == np.int32
    assert len(encoded.token_ids) == encoded.lengths.sum() == len(encoded.segment_ids)
    full = encoder(tf.constant(data.text_a), tf.constant(data.text_b))
    mask = full["padding_mask"].numpy()
    np.testing.assert_array_equal(encoded.lengths, mask.sum(axis=1))
    assert len(set(encoded.lengths.tolist())) > 3  # lengths really vary
    assert encoded.lengths.max() == 16  # the long example hit max_seq_length
    for i, (tokens, segments) in enumerate(zip(_rows(encoded), _rows(encoded, "segment_ids"))):
        assert tokens == full["token_ids"].numpy()[i][mask[i]].tolist()
        assert segments == full["segment_ids"].numpy()[i][mask[i]].tolist()
        assert tokens[0] == tokenizer.cls_token_id and tokens[-1] == tokenizer.sep_token_id


def test_encode_single_sentence_task(tokenizer):
    data = TaskData(task=COLA, split="train", ids=["a", "b"], text_a=["Hello world", "x"], text_b=None,
                    labels=np.array([1, 0], np.int32), official_index=["0", "1"], source="cola.tsv")
    encoded = encode_task_data(data, TextEncoder(tokenizer, 8))
    assert encoded.lengths.tolist() == [4, 3]  # [CLS] hello world [SEP]; [CLS] x [SEP]
    assert encoded.segment_ids.tolist() == [0] * 7


def test_encoded_examples_ragged_and_concatenate():
    a = EncodedExamples(np.array([1, 2, 3, 4, 5], np.int32), np.array([0, 0, 0, 1, 1], np.int32),
                        np.array([2, 3], np.int32))
    b = EncodedExamples(np.array([9], np.int32), np.array([0], np.int32), np.array([1], np.int32))
    both = EncodedExamples.concatenate([a, b])
    assert len(both) == 3
    assert both.ragged("token_ids").to_list() == [[1, 2], [3, 4, 5], [9]]
    assert both.ragged("segment_ids").to_list() == [[0, 0], [0, 1, 1], [0]]


# ---- input_pipeline ---------------------------------------------------------------------------------

def test_training_batches_are_padded_to_their_own_longest_example(tokenizer):
    encoder = TextEncoder(tokenizer, 32)
    rte = encode_task_data(_pair_data(RTE), encoder)
    sts = encode_task_data(_pair_data(STSB, 5), encoder)
    rte_teacher = np.arange(2 * len(rte), dtype=np.float32).reshape(-1, 2)
    tasks = [TaskExamples(rte, np.arange(len(rte)).astype(np.float32) % 2, 2, rte_teacher),
             TaskExamples(sts, np.linspace(0, 5, len(sts), dtype=np.float32), 1, None)]
    stream = example_stream([len(rte), len(sts)], 1.0, batch_size=3, num_steps=8, mode="mixed", seed=0)
    elements = list(training_dataset(tasks, stream, length_multiple=1).as_numpy_iterator())
    assert len(elements) == 8 and all(len(groups) == 1 for groups in elements)  # no length groups by default
    batches = [groups[0] for groups in elements]
    rows = [_rows(rte), _rows(sts)]
    segs = [_rows(rte, "segment_ids"), _rows(sts, "segment_ids")]
    widths = set()
    for step, batch in enumerate(batches):
        slots = slice(step * 3, (step + 1) * 3)
        task_ids, indices = stream.task_ids[slots], stream.example_indices[slots]
        lengths = [len(rows[t][i]) for t, i in zip(task_ids, indices)]
        assert batch["token_ids"].shape == (3, max(lengths))  # own longest, not 32
        widths.add(max(lengths))
        np.testing.assert_array_equal(batch["padding_mask"].sum(axis=1), lengths)
        np.testing.assert_array_equal(batch["task_id"], task_ids)
        for k, (t, i) in enumerate(zip(task_ids, indices)):
            n = lengths[k]
            assert batch["token_ids"][k, :n].tolist() == rows[t][i]
            assert batch["segment_ids"][k, :n].tolist() == segs[t][i]
            assert np.all(batch["token_ids"][k, n:] == 0) and not batch["padding_mask"][k, n:].any()
            if t == 0:  # RTE: label i % 2, teacher row i of the [n, 2] table, has a teacher
                assert batch["label"][k] == i % 2
                assert batch["teacher"][k].tolist() == [2 * i, 2 * i + 1]
                assert batch["has_teacher"][k]
            else:  # STS-B: its own score, no teacher (zeros in the shared width-2 column)
                assert batch["label"][k] == pytest.approx(np.linspace(0, 5, 5)[i])
                assert batch["teacher"][k].tolist() == [0.0, 0.0]
                assert not batch["has_teacher"][k]
    assert len(widths) > 1 and max(widths) < 32


def test_training_dataset_resumes_at_a_step(tokenizer):
    encoded = encode_task_data(_pair_data(), TextEncoder(tokenizer, 32))
    tasks = [TaskExamples(encoded, np.zeros(len(encoded), np.float32), 2)]
    stream = example_stream([len(encoded)], 1.0, batch_size=2, num_steps=6, mode="mixed", seed=1)
    full = list(training_dataset(tasks, stream).as_numpy_iterator())
    resumed = list(training_dataset(tasks, stream, start_step=4).as_numpy_iterator())
    assert len(resumed) == 2
    for (a,), (b,) in zip(full[4:], resumed):
        np.testing.assert_array_equal(a["token_ids"], b["token_ids"])


def test_inference_dataset_order_restores_example_order(tokenizer):
    encoded = encode_task_data(_pair_data(), TextEncoder(tokenizer, 32))
    dataset, order = inference_dataset(encoded, batch_size=3, length_multiple=1)
    assert sorted(order.tolist()) == list(range(len(encoded)))
    batches = list(dataset.as_numpy_iterator())
    assert [len(b["token_ids"]) for b in batches] == [3, 3, 1]  # the last batch is kept, not dropped
    # batches come in length order, each padded to its own longest example
    seen_lengths = np.concatenate([b["padding_mask"].sum(axis=1) for b in batches])
    assert np.all(np.diff(seen_lengths) >= 0)
    for b in batches:
        assert b["token_ids"].shape[1] == b["padding_mask"].sum(axis=1).max()
    # a per-example "result" (here the first content token) scattered back with outputs[order] = results
    results = np.concatenate([b["token_ids"][:, 1] for b in batches])
    restored = np.empty(len(encoded), np.int64)
    restored[order] = results
    assert restored.tolist() == [row[1] for row in _rows(encoded)]
    restored_lengths = np.empty(len(encoded), np.int64)
    restored_lengths[order] = seen_lengths
    np.testing.assert_array_equal(restored_lengths, encoded.lengths)
