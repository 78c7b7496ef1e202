"""Text → BERT inputs: WordPiece tokenisation and `[CLS] a [SEP] b [SEP]` packing with truncation.

`TextEncoder` is plain TF ops (tensorflow-text underneath), so the same object runs inside tf.data here
and inside an exported serving graph. `encode_task_data` runs it once over a whole split and keeps the
result as variable-length rows, so training batches can be padded to their own longest example.
"""

import dataclasses

import keras_hub
import numpy as np
import tensorflow as tf

from bam_tf.glue_reader import TaskData
from bam_tf.user_errors import InputError


class TextEncoder:
    def __init__(self, tokenizer: keras_hub.models.BertTokenizer, max_seq_length: int):
        if max_seq_length < 3:
            raise InputError(f"max_seq_length must be at least 3 ([CLS] x [SEP]), got {max_seq_length}")
        self.tokenizer = tokenizer
        self.max_seq_length = max_seq_length
        # round_robin truncation trims the longer segment first, like BERT's _truncate_seq_pair.
        self.packer = keras_hub.layers.MultiSegmentPacker(
            sequence_length=max_seq_length, start_value=tokenizer.cls_token_id,
            end_value=tokenizer.sep_token_id, pad_value=tokenizer.pad_token_id, truncate="round_robin")

    def __call__(self, text_a, text_b=None) -> dict[str, tf.Tensor]:
        """Batched string tensors → dict of [batch, max_seq_length] int32 tensors."""
        if text_b is not None:
            # keras-hub's packer does not check this, and reads past the shorter batch's end (seen: token ids
            # from other memory, a process abort) -- an exported signature gets whatever a client sends.
            same_length = tf.debugging.assert_equal(
                tf.shape(text_a)[0], tf.shape(text_b)[0],
                message="sentence1 and sentence2 must hold the same number of sentences")
            with tf.control_dependencies([same_length]):
                text_a, text_b = tf.identity(text_a), tf.identity(text_b)
        segments = [self.tokenizer(text_a)]
        if text_b is not None:
            segments.append(self.tokenizer(text_b))
        token_ids, segment_ids = self.packer(tuple(segments))
        return {"token_ids": token_ids, "segment_ids": segment_ids,
                "padding_mask": token_ids != self.tokenizer.pad_token_id}


@dataclasses.dataclass
class EncodedExamples:
    """Variable-length packed rows stored flat: row i is [starts[i], starts[i] + lengths[i])."""

    token_ids: np.ndarray  # int32, flat
    segment_ids: np.ndarray  # int32, flat
    lengths: np.ndarray  # int32 [num_examples]

    def __len__(self) -> int:
        return len(self.lengths)

    def ragged(self, name: str) -> tf.RaggedTensor:
        return tf.RaggedTensor.from_row_lengths(getattr(self, name), self.lengths.astype(np.int64))

    @staticmethod
    def concatenate(parts: list["EncodedExamples"]) -> "EncodedExamples":
        return EncodedExamples(*(np.concatenate([getattr(p, f) for p in parts])
                                 for f in ("token_ids", "segment_ids", "lengths")))


def encode_task_data(data: TaskData, encoder: TextEncoder, batch_size: int = 512) -> EncodedExamples:
    texts = (data.text_a,) if data.text_b is None else (data.text_a, data.text_b)
    dataset = tf.data.Dataset.from_tensor_slices(texts).batch(batch_size).map(
        lambda *batch: encoder(*batch), num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    token_ids, segment_ids, lengths = [], [], []
    for batch in dataset.as_numpy_iterator():
        mask = batch["padding_mask"]
        token_ids.append(batch["token_ids"][mask])
        segment_ids.append(batch["segment_ids"][mask])
        lengths.append(mask.sum(axis=1))
    if not lengths:
        raise InputError(f"{data.source}: no examples to encode")
    return EncodedExamples(np.concatenate(token_ids).astype(np.int32),
                           np.concatenate(segment_ids).astype(np.int32),
                           np.concatenate(lengths).astype(np.int32))
