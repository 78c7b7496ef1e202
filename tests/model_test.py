"""Tests for bam_tf.model: the masked multi-task loss by hand, and MultiTaskBert on a tiny random BERT."""

import math

import keras
import keras_hub
import numpy as np
import pytest
import tensorflow as tf

from bam_tf.task_set import glue_task
from bam_tf.model import DistillationSettings, MultiTaskBert, head_layer_name, multitask_loss
from bam_tf.optimizer import create_optimizer
from bam_tf.trained_model import build_model

RTE, STSB = glue_task("RTE"), glue_task("STS-B")
TASKS = [RTE, STSB]
LN3 = math.log(3.0)


# ---- multitask_loss by hand -------------------------------------------------------------------

def _batch():
    # example 0: RTE, gold 1, teacher logits [0, ln 3]
    # example 1: STS-B, gold 3.0 (out of range as an RTE class), teacher score 4.0 in column 0
    # example 2: RTE, gold 0, no teacher
    return {
        "task_id": tf.constant([0, 1, 0], tf.int32),
        "label": tf.constant([1.0, 3.0, 0.0], tf.float32),
        "teacher": tf.constant([[0.0, LN3], [4.0, 0.0], [7.0, -7.0]], tf.float32),
        "has_teacher": tf.constant([True, True, False]),
    }


def _outputs(rte_row1=(5.0, -5.0), stsb_rows02=(9.0, -7.0)):
    return {
        "RTE": tf.constant([[0.0, 0.0], list(rte_row1), [LN3, 0.0]], tf.float32),
        "STS-B": tf.constant([[stsb_rows02[0]], [2.5], [stsb_rows02[1]]], tf.float32),
    }


# RTE, λ = 0.5:
#   example 0: target 0.5·[0, 1] + 0.5·softmax([0, ln 3]) = [0.125, 0.875]; logits [0, 0] -> CE = ln 2
#   example 2: no teacher -> one-hot [1, 0]; logits [ln 3, 0] -> softmax [0.75, 0.25] -> CE = ln(4/3)
#   sum = ln 2 + ln(4/3) = ln(8/3), count 2
# STS-B, λ = 0.5: example 1 target 0.5·3 + 0.5·4 = 3.5, prediction 2.5 -> (2.5 − 3.5)² = 1, count 1
EXPECTED_SUMS = [math.log(8 / 3), 1.0]
EXPECTED_COUNTS = [2.0, 1.0]


def test_multitask_loss_by_hand():
    sums, counts = multitask_loss(_outputs(), _batch(), TASKS, gold_weight=0.5, temperature=1.0)
    np.testing.assert_allclose(np.asarray(sums), EXPECTED_SUMS, rtol=1e-6)
    np.testing.assert_array_equal(np.asarray(counts), EXPECTED_COUNTS)


def test_multitask_loss_pure_teacher_with_temperature_by_hand():
    # λ = 0, T = 2. RTE example 0: teacher [0, 2 ln 3] / 2 = [0, ln 3] -> target [0.25, 0.75];
    #   logits [ln 3, 0] -> log softmax [ln 0.75, ln 0.25] -> −(0.25 ln 0.75 + 0.75 ln 0.25)
    #   example 2 has no teacher: one-hot [1, 0] whatever λ -> with logits [ln 3, 0]: −ln 0.75
    # STS-B example 1: target = teacher 4.0, prediction 2.5 -> 2.25 (temperature never touches regression)
    # The student's logits enter unscaled (as the original: T divides the teacher only, no T² factor).
    batch = dict(_batch(), teacher=tf.constant([[0.0, 2 * LN3], [4.0, 0.0], [7.0, -7.0]]))
    outputs = {"RTE": tf.constant([[LN3, 0.0], [0.0, 0.0], [LN3, 0.0]]),
               "STS-B": tf.constant([[0.0], [2.5], [0.0]])}
    sums, counts = multitask_loss(outputs, batch, TASKS, gold_weight=0.0, temperature=2.0)
    rte = -(0.25 * math.log(0.75) + 0.75 * math.log(0.25)) - math.log(0.75)
    np.testing.assert_allclose(np.asarray(sums), [rte, 2.25], rtol=1e-6)
    np.testing.assert_array_equal(np.asarray(counts), [2.0, 1.0])


def test_other_tasks_examples_never_contribute():
    base, _ = multitask_loss(_outputs(), _batch(), TASKS, 0.5, 1.0)
    # RTE head's output on the STS-B example and STS-B head's outputs on RTE examples: anything at all
    changed, _ = multitask_loss(_outputs(rte_row1=(-300.0, 250.0), stsb_rows02=(1e4, -1e4)), _batch(), TASKS,
                                0.5, 1.0)
    np.testing.assert_allclose(np.asarray(changed), np.asarray(base), rtol=1e-7)
    # The STS-B example's teacher column 1 is never read by any head that owns that example.
    batch = _batch()
    batch["teacher"] = tf.constant([[0.0, LN3], [4.0, 123.0], [7.0, -7.0]])
    changed, _ = multitask_loss(_outputs(), batch, TASKS, 0.5, 1.0)
    np.testing.assert_allclose(np.asarray(changed), np.asarray(base), rtol=1e-7)


def test_masked_examples_get_zero_gradient():
    outputs = _outputs()
    with tf.GradientTape() as tape:
        tape.watch(outputs["RTE"])
        tape.watch(outputs["STS-B"])
        sums, _ = multitask_loss(outputs, _batch(), TASKS, 0.5, 1.0)
        total = tf.reduce_sum(sums)
    grad_rte, grad_sts = tape.gradient(total, [outputs["RTE"], outputs["STS-B"]])
    np.testing.assert_array_equal(grad_rte.numpy()[1], [0.0, 0.0])
    np.testing.assert_array_equal(grad_sts.numpy()[[0, 2], 0], [0.0, 0.0])
    # the owned rows do get gradient: STS-B d/dp (p − 3.5)² at 2.5 = 2·(2.5 − 3.5) = −2
    assert grad_sts.numpy()[1, 0] == pytest.approx(-2.0)
    # RTE example 0: softmax([0, 0]) − target = [0.5 − 0.125, 0.5 − 0.875] = [0.375, −0.375]
    np.testing.assert_allclose(grad_rte.numpy()[0], [0.375, -0.375], rtol=1e-6)


@pytest.mark.parametrize("score", [3.0, 5.0, 4.6, 2.2])
def test_out_of_range_labels_of_other_tasks_give_no_nan(score):
    batch = _batch()
    batch["label"] = tf.constant([1.0, score, 0.0])
    sums, counts = multitask_loss(_outputs(), batch, TASKS, 0.5, 1.0)
    assert np.all(np.isfinite(np.asarray(sums)))
    assert float(sums[0]) == pytest.approx(math.log(8 / 3), rel=1e-6)  # RTE unaffected by the score


def test_a_task_absent_from_the_batch_has_zero_sum_and_count():
    batch = dict(_batch(), task_id=tf.constant([0, 0, 0]), label=tf.constant([1.0, 1.0, 0.0]))
    sums, counts = multitask_loss(_outputs(), batch, TASKS, 0.5, 1.0)
    assert np.asarray(counts).tolist() == [3.0, 0.0]
    assert float(sums[1]) == 0.0
    assert np.all(np.isfinite(np.asarray(sums)))


def test_head_layer_name():
    assert head_layer_name("STS-B") == "head_sts_b"
    assert head_layer_name("SST-2") == "head_sst_2"
    assert head_layer_name("MNLI-mm") == "head_mnli_mm"
    assert head_layer_name("RTE") == "head_rte"


# ---- MultiTaskBert ---------------------------------------------------------------------------------

def _tiny_model(distillation=DistillationSettings(), seed=0):
    keras.utils.set_random_seed(seed)
    backbone = keras_hub.models.BertBackbone(vocabulary_size=100, num_layers=2, num_heads=2, hidden_dim=32,
                                             intermediate_dim=64, max_sequence_length=64)
    model = MultiTaskBert(backbone, TASKS, distillation)
    build_model(model)
    return model


def _features(batch_size=3, length=5, seed=0):
    rng = np.random.default_rng(seed)
    lengths = rng.integers(2, length + 1, size=batch_size)
    lengths[0] = length
    mask = np.arange(length)[None, :] < lengths[:, None]
    token_ids = np.where(mask, rng.integers(1, 100, size=(batch_size, length)), 0).astype(np.int32)
    return {"token_ids": tf.constant(token_ids), "segment_ids": tf.zeros((batch_size, length), tf.int32),
            "padding_mask": tf.constant(mask)}


def _train_batch():
    return dict(_features(), task_id=tf.constant([0, 1, 0]), label=tf.constant([1.0, 3.2, 0.0]),
                teacher=tf.constant([[0.5, -0.5], [2.0, 0.0], [0.0, 0.0]]),
                has_teacher=tf.constant([True, True, False]))


def test_outputs_have_one_float32_entry_per_task():
    model = _tiny_model()
    outputs = model(_features(batch_size=4, length=7), training=False)
    assert set(outputs) == {"RTE", "STS-B"}
    assert tuple(outputs["RTE"].shape) == (4, 2) and outputs["RTE"].dtype == tf.float32
    assert tuple(outputs["STS-B"].shape) == (4, 1) and outputs["STS-B"].dtype == tf.float32
    assert {layer.name for layer in model.heads.values()} == {"head_rte", "head_sts_b"}
    # inference is deterministic (no dropout)
    again = model(_features(batch_size=4, length=7), training=False)
    np.testing.assert_array_equal(outputs["RTE"].numpy(), again["RTE"].numpy())


def test_gold_weight_variable_is_not_trained():
    model = _tiny_model()
    assert all(v is not model.gold_weight for v in model.trainable_variables)
    assert any(v is model.gold_weight for v in model.non_trainable_variables)
    assert float(model.gold_weight.numpy()) == 0.0


def test_train_step_updates_and_sets_annealed_gold_weight():
    total_steps = 5
    model = _tiny_model(DistillationSettings(total_steps=total_steps))
    model.compile(optimizer=create_optimizer(peak_learning_rate=1e-3, total_steps=total_steps, num_layers=2,
                                             schedule_step=model.batches_done))
    head_before = model.heads["RTE"].kernel.numpy().copy()
    batch = _train_batch()
    for step in range(3):
        assert int(model.batches_done.numpy()) == step
        stats = model.train_step(batch)
        loss = float(stats["loss"])
        assert np.isfinite(loss) and loss > 0
        assert int(model.batches_done.numpy()) == int(model.optimizer.iterations.numpy()) == step + 1
        # λ for batch `step` of 5: step / 5 -> 0, 0.2, 0.4
        assert float(model.gold_weight.numpy()) == pytest.approx(step / total_steps)
        # the reported loss is the mean per example (3 examples, one replica), whatever the reduction
        sums = stats["task_loss_sums"].numpy()
        assert loss == pytest.approx(sums.sum() / 3, rel=1e-5)
        np.testing.assert_array_equal(stats["task_counts"].numpy(), [2.0, 1.0])
    assert not np.allclose(model.heads["RTE"].kernel.numpy(), head_before)


class _RecordingSGD(keras.optimizers.SGD):
    def apply(self, grads, trainable_variables=None):
        self.recorded = [np.asarray(g) for g in grads]
        return super().apply(grads, trainable_variables)


@pytest.mark.parametrize("reduction, factor", [("sum", 1.0), ("mean", 1.0 / 3)])
def test_loss_reduction_sums_over_the_batch_by_default(reduction, factor):
    """The head bias gradient by hand: Σ over RTE examples of softmax − target (sum), or that / 3 (mean)."""
    keras.utils.set_random_seed(0)
    backbone = keras_hub.models.BertBackbone(vocabulary_size=100, num_layers=2, num_heads=2, hidden_dim=32,
                                             intermediate_dim=64, max_sequence_length=64, dropout=0.0)
    model = MultiTaskBert(backbone, TASKS, DistillationSettings(total_steps=5), head_dropout=0.0,
                          loss_reduction=reduction)
    build_model(model)
    model.compile(optimizer=_RecordingSGD(learning_rate=0.0))
    batch = _train_batch()
    outputs = model(batch, training=False)
    model.train_step(batch)  # λ = 0 at batch 0, no dropout anywhere: the same outputs as above
    rte_bias = [i for i, v in enumerate(model.trainable_variables) if v.path.endswith("head_rte/bias")][0]
    probs = tf.nn.softmax(outputs["RTE"]).numpy()
    # λ = 0: example 0 targets its teacher softmax([0.5, −0.5]); example 2 (no teacher) its one-hot [1, 0]
    teacher = tf.nn.softmax(tf.constant([0.5, -0.5])).numpy()
    expected = (probs[0] - teacher) + (probs[2] - np.array([1.0, 0.0]))
    np.testing.assert_allclose(model.optimizer.recorded[rte_bias], factor * expected, rtol=2e-4, atol=1e-6)
    with pytest.raises(ValueError, match="loss_reduction"):
        MultiTaskBert(model.backbone, TASKS, loss_reduction="average")


def test_train_step_with_fixed_distill_weight():
    model = _tiny_model(DistillationSettings(total_steps=5, teacher_annealing=False, distill_weight=0.3))
    model.compile(optimizer=create_optimizer(peak_learning_rate=1e-3, total_steps=5, num_layers=2))
    for _ in range(2):
        model.train_step(_train_batch())
        assert float(model.gold_weight.numpy()) == pytest.approx(0.7)  # 1 − 0.3 at every step


def test_heads_compute_in_float32_under_mixed_bfloat16():
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        model = _tiny_model()
        features = _features(batch_size=4, length=7)
        assert model.backbone.compute_dtype == "bfloat16"
        head = model.heads["STS-B"]
        assert head.compute_dtype == "float32" and head.kernel.dtype == "float32"
        pooled = model.backbone(features)["pooled_output"]
        expected = pooled.numpy().astype(np.float32) @ head.kernel.numpy() + head.bias.numpy()
        outputs = model(features)["STS-B"].numpy()
        assert outputs.dtype == np.float32
        # float32 arithmetic on the (bfloat16) pooled output: far closer than bfloat16's 2^-8 rounding
        np.testing.assert_allclose(outputs, expected, rtol=1e-5, atol=1e-6)
    finally:
        keras.mixed_precision.set_global_policy("float32")


def test_a_skipped_float16_update_still_counts_as_a_batch():
    """A loss-scale optimizer skips a step with overflowing gradients without advancing `iterations`;
    λ, the learning rate and the resume point follow the batch counter, which still advances."""
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        total = 4
        model = _tiny_model(DistillationSettings(total_steps=total))
        inner = create_optimizer(peak_learning_rate=1e-3, total_steps=total, warmup_fraction=0.0, num_layers=2,
                                 schedule_step=model.batches_done)
        # a loss scale of 1e30 overflows float16 gradients (max 65504) on the first step, then halves
        model.compile(optimizer=keras.optimizers.LossScaleOptimizer(inner, initial_scale=1e30))
        head_before = model.heads["RTE"].kernel.numpy().copy()
        model.train_step(_train_batch())
        assert int(model.optimizer.iterations.numpy()) == 0  # the update was skipped ...
        np.testing.assert_array_equal(model.heads["RTE"].kernel.numpy(), head_before)
        assert int(model.batches_done.numpy()) == 1  # ... but the batch counts
        assert float(model.optimizer.learning_rate) == pytest.approx(1e-3 * (1 - 1 / total))  # from batch 1
        model.train_step(_train_batch())
        assert float(model.gold_weight.numpy()) == pytest.approx(1 / total)  # λ of batch 1, not of update 0
        assert int(model.batches_done.numpy()) == 2
    finally:
        keras.mixed_precision.set_global_policy("float32")


def test_train_step_under_tf_function():
    model = _tiny_model(DistillationSettings(total_steps=3))
    model.compile(optimizer=create_optimizer(peak_learning_rate=1e-3, total_steps=3, num_layers=2,
                                             schedule_step=model.batches_done))
    step = tf.function(model.train_step)
    for expected in (0.0, 1 / 3, 2 / 3):  # λ = s / 3
        stats = step(_train_batch())
        assert np.isfinite(float(stats["loss"]))
        assert float(model.gold_weight.numpy()) == pytest.approx(expected)
    assert int(model.batches_done.numpy()) == 3


def test_build_model_creates_all_variables():
    model = _tiny_model()
    paths = {v.path for v in model.trainable_variables}
    assert any(p.endswith("head_rte/kernel") for p in paths)
    assert any(p.endswith("head_sts_b/bias") for p in paths)
    assert "token_embedding/embeddings" in paths


# ---- length groups: the same update as the unsplit batch ----------------------------------------

COLA = glue_task("CoLA")


def _lengths_batch_rows():
    """Encoded CoLA-like sentences (4–12 tokens), RTE-like pairs (40–60) and STS-B pairs (20–30), with
    teacher outputs: one mixed training batch of 16 through the real input pipeline."""
    from bam_tf.input_pipeline import TaskExamples
    from bam_tf.text_encoding import EncodedExamples

    rng = np.random.default_rng(7)

    def encoded(low, high, count, pair):
        lengths = rng.integers(low, high, count).astype(np.int32)
        tokens = np.concatenate([rng.integers(5, 100, n) for n in lengths]).astype(np.int32)
        segments = np.concatenate([(np.arange(n) >= n // 2).astype(np.int32) * pair for n in lengths])
        return EncodedExamples(tokens, segments, lengths)

    return [TaskExamples(encoded(4, 13, 12, 0), rng.integers(0, 2, 12).astype(np.float32), 2,
                         rng.normal(size=(12, 2)).astype(np.float32)),
            TaskExamples(encoded(40, 61, 8, 1), rng.integers(0, 2, 8).astype(np.float32), 2,
                         rng.normal(size=(8, 2)).astype(np.float32)),
            TaskExamples(encoded(20, 31, 8, 1), rng.uniform(0, 1, 8).astype(np.float32), 1,
                         rng.uniform(0, 1, (8, 1)).astype(np.float32))]


class _RecordingSGDAny(keras.optimizers.SGD):
    """Records the dense gradients it is asked to apply (the embedding's arrive as IndexedSlices)."""

    def apply(self, grads, trainable_variables=None):
        self.recorded = [tf.convert_to_tensor(g).numpy() for g in grads]
        return super().apply(grads, trainable_variables)


@pytest.mark.parametrize("reduction", ["sum", "mean"])
def test_length_groups_give_the_unsplit_batch_loss_and_gradients(reduction):
    from bam_tf.input_pipeline import training_dataset
    from bam_tf.task_sampler import example_stream

    examples = _lengths_batch_rows()
    stream = example_stream([12, 8, 8], 0.75, 16, 1, "mixed", seed=0)
    assert set(stream.task_ids.tolist()) == {0, 1, 2}  # one batch mixing short sentences and long pairs
    (unsplit,), = training_dataset(examples, stream).take(1)
    groups = next(iter(training_dataset(examples, stream, group_size=4, length_multiple=8)))
    assert len(groups) == 4 and [int(g["token_ids"].shape[0]) for g in groups] == [4, 4, 4, 4]
    widths = [int(g["token_ids"].shape[1]) for g in groups]
    longest = int(unsplit["token_ids"].shape[1])
    longest_of_data = max(int(e.encoded.lengths.max()) for e in examples)
    assert widths == sorted(widths) and widths[0] < longest  # shortest examples first, each group its own width
    assert all(w % 8 == 0 or w == longest_of_data for w in widths)  # rounded up, never past the data's longest
    assert widths[-1] == min(-(-longest // 8) * 8, longest_of_data)
    assert sum(w * 4 for w in widths) < 16 * longest  # fewer padded tokens

    results = []
    for batch in (unsplit, groups):
        keras.utils.set_random_seed(0)  # the same initial weights for both; no dropout anywhere
        backbone = keras_hub.models.BertBackbone(vocabulary_size=100, num_layers=2, num_heads=2, hidden_dim=32,
                                                 intermediate_dim=64, max_sequence_length=64, dropout=0.0)
        model = MultiTaskBert(backbone, [COLA, RTE, STSB], DistillationSettings(total_steps=4), head_dropout=0.0,
                              loss_reduction=reduction)
        build_model(model)
        model.compile(optimizer=_RecordingSGDAny(learning_rate=0.0))
        stats = model.train_step(batch)
        assert int(model.batches_done.numpy()) == int(model.optimizer.iterations.numpy()) == 1  # once per batch
        results.append((stats, model.optimizer.recorded, [v.path for v in model.trainable_variables]))
    (stats_a, grads_a, paths), (stats_b, grads_b, _) = results
    np.testing.assert_allclose(float(stats_b["loss"]), float(stats_a["loss"]), rtol=1e-5)
    np.testing.assert_allclose(stats_b["task_loss_sums"].numpy(), stats_a["task_loss_sums"].numpy(), rtol=1e-5)
    np.testing.assert_array_equal(stats_b["task_counts"].numpy(), stats_a["task_counts"].numpy())
    assert len(grads_a) == len(grads_b) == len(paths)
    for path, a, b in zip(paths, grads_a, grads_b):
        assert np.abs(a).max() > 0, path  # every variable takes part
        np.testing.assert_allclose(b, a, rtol=1e-5, atol=1e-5, err_msg=path)


def test_length_groups_under_tf_function_and_mixed_bfloat16():
    """Grouped steps trace once for every group length, and hold under a bfloat16 policy."""
    from bam_tf.input_pipeline import training_dataset
    from bam_tf.task_sampler import example_stream

    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        keras.utils.set_random_seed(0)
        backbone = keras_hub.models.BertBackbone(vocabulary_size=100, num_layers=2, num_heads=2, hidden_dim=32,
                                                 intermediate_dim=64, max_sequence_length=64)
        model = MultiTaskBert(backbone, [COLA, RTE, STSB], DistillationSettings(total_steps=3))
        build_model(model)
        model.compile(optimizer=create_optimizer(peak_learning_rate=1e-3, total_steps=3, num_layers=2,
                                                 schedule_step=model.batches_done))
        model.optimizer.build(model.trainable_variables)  # as the trainer does: no variables created in the step
        stream = example_stream([12, 8, 8], 0.75, 16, 3, "mixed", seed=1)
        dataset = training_dataset(_lengths_batch_rows(), stream, group_size=4, length_multiple=8)
        iterator = iter(dataset)  # fed as the trainer feeds it: shapes from the dataset's element_spec
        step = tf.function(lambda iterator: model.train_step(next(iterator)))
        for index in range(3):
            stats = step(iterator)
            assert np.isfinite(float(stats["loss"])) and float(stats["task_counts"].numpy().sum()) == 16
            assert int(model.batches_done.numpy()) == index + 1
        assert float(model.gold_weight.numpy()) == pytest.approx(2 / 3)
        assert step.experimental_get_tracing_count() == 1
        assert model._group_step_function.experimental_get_tracing_count() <= 2  # 1 size, any length
    finally:
        keras.mixed_precision.set_global_policy("float32")


def test_inference_traces_once_per_model_for_any_batch_shape():
    import logging

    model = _tiny_model()
    for batch_size, length in ((4, 7), (3, 12), (1, 5), (16, 33)):
        outputs = model.inference_outputs(_features(batch_size=batch_size, length=length))
        assert tuple(outputs["RTE"].shape) == (batch_size, 2)
    assert model.inference_traces() == 1
    # TF's detector still counts one trace per model across models; that false alarm alone is filtered
    tf_logger = logging.getLogger("tensorflow")
    record = lambda text: logging.LogRecord("tensorflow", logging.WARNING, "x.py", 1, text, None, None)
    alarm = ("5 out of the last 5 calls to <function MultiTaskBert._inference at 0x7f> triggered tf.function "
             "retracing. Tracing is expensive")
    assert not tf_logger.filter(record(alarm))
    assert not tf_logger.filter(record(alarm.replace("_inference", "_group_gradients")))
    # as TF 2.21 words it for a method (seen in a demo log)
    bound = ("5 out of the last 11 calls to <bound method MultiTaskBert._inference of <MultiTaskBert "
             "name=multi_task_bert_4, built=True>> triggered tf.function retracing. Tracing is expensive")
    assert not tf_logger.filter(record(bound))
    assert tf_logger.filter(record(bound.replace("MultiTaskBert._inference", "Other._inference")))
    assert tf_logger.filter(record(alarm.replace("MultiTaskBert._inference", "my_function")))
