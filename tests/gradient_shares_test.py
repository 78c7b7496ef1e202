"""Tests for bam_tf.gradient_shares: shares from a Gram matrix by hand, and per-task gradients on a tiny BERT
against the gradient of the whole multi-task loss."""

import math

import keras
import keras_hub
import numpy as np
import pytest
import tensorflow as tf

from bam_tf.gradient_shares import (format_gradient_shares, gradient_gram, measure_gradient_shares,
                                    run_gradient_shares, shares_from_gram)
from bam_tf.model import DistillationSettings, MultiTaskBert, multitask_loss
from bam_tf.task_set import glue_task
from bam_tf.trained_model import build_model
from bam_tf.user_errors import InputError, MissingInputError

TASKS = [glue_task("RTE"), glue_task("STS-B"), glue_task("CoLA")]


def test_shares_by_hand():
    # g1 = (1, 0), g2 = (1, 1), g3 = 0 (no examples): g = (2, 1), ‖g‖² = 5, ⟨g1, g⟩ = 2, ⟨g2, g⟩ = 3
    gram = np.array([[1.0, 1.0, 0.0], [1.0, 2.0, 0.0], [0.0, 0.0, 0.0]])
    shares, norms, cosines = shares_from_gram(gram)
    np.testing.assert_allclose(shares, [0.4, 0.6, 0.0])
    np.testing.assert_allclose(norms, [1.0, math.sqrt(2), 0.0])
    np.testing.assert_allclose(cosines[:2], [2 / math.sqrt(5), 3 / (math.sqrt(2) * math.sqrt(5))])
    assert math.isnan(cosines[2])


def test_a_task_pulling_against_the_others_has_a_negative_share():
    # g1 = (2, 0), g2 = (−1, 0): g = (1, 0), ‖g‖² = 1, ⟨g1, g⟩ = 2, ⟨g2, g⟩ = −1
    shares, _, cosines = shares_from_gram(np.array([[4.0, -2.0], [-2.0, 1.0]]))
    np.testing.assert_allclose(shares, [2.0, -1.0])
    np.testing.assert_allclose(cosines, [1.0, -1.0])


def _tiny_model(task_loss_weights=None):
    # no dropout: gradient_gram runs the model in training mode, the reference gradients below in inference mode
    keras.utils.set_random_seed(0)
    backbone = keras_hub.models.BertBackbone(vocabulary_size=100, num_layers=2, num_heads=2, hidden_dim=32,
                                             intermediate_dim=64, max_sequence_length=64, dropout=0.0)
    model = MultiTaskBert(backbone, TASKS, DistillationSettings(total_steps=10), head_dropout=0.0,
                          task_loss_weights=task_loss_weights)
    build_model(model)
    return model


def _batch(task_ids=(0, 1, 0, 1, 0)):
    rng = np.random.default_rng(0)
    size, length = len(task_ids), 6
    token_ids = rng.integers(1, 100, size=(size, length)).astype(np.int32)
    return {"token_ids": tf.constant(token_ids), "segment_ids": tf.zeros((size, length), tf.int32),
            "padding_mask": tf.ones((size, length), tf.bool), "task_id": tf.constant(task_ids, tf.int32),
            "label": tf.constant([1.0, 0.8, 0.0, 0.2, 1.0][:size]),
            "teacher": tf.constant([[0.5, -0.5], [0.7, 0.0], [1.0, 0.0], [0.1, 0.0], [0.0, 0.3]][:size]),
            "has_teacher": tf.ones((size,), tf.bool)}


def _flat_backbone_gradient(model, batch, loss_of, gold_weight=0.5):
    with tf.GradientTape() as tape:
        outputs = model(batch, training=False)
        loss_sums, _ = multitask_loss(outputs, batch, model.tasks, gold_weight, 1.0)
        loss = loss_of(loss_sums)
    gradients = tape.gradient(loss, model.backbone.trainable_variables,
                              unconnected_gradients=tf.UnconnectedGradients.ZERO)
    return np.concatenate([np.ravel(tf.convert_to_tensor(g).numpy()) for g in gradients])


def test_gram_matches_separately_computed_task_gradients():
    model, batch = _tiny_model(), _batch()
    gram, loss_sums, counts = gradient_gram(model, batch, tf.constant(0.5))
    total = _flat_backbone_gradient(model, batch, lambda sums: tf.reduce_sum(sums))
    rte = _flat_backbone_gradient(model, batch, lambda sums: sums[0])
    sts = _flat_backbone_gradient(model, batch, lambda sums: sums[1])
    gram = gram.numpy()
    np.testing.assert_allclose(gram[0, 0], rte @ rte, rtol=1e-4)
    np.testing.assert_allclose(gram[0, 1], rte @ sts, rtol=1e-4)
    np.testing.assert_allclose(gram.sum(), total @ total, rtol=1e-4)  # Σ_t g_t is the step's gradient
    np.testing.assert_array_equal(gram[2], 0.0)  # CoLA has no example in this batch
    np.testing.assert_array_equal(counts.numpy(), [3.0, 2.0, 0.0])
    assert loss_sums.shape == (3,)


def test_the_gram_weighs_task_gradients_as_the_update_does():
    plain = gradient_gram(_tiny_model(), _batch(), tf.constant(0.5))[0].numpy()
    weighted = gradient_gram(_tiny_model({"STS-B": 3.0}), _batch(), tf.constant(0.5))[0].numpy()
    np.testing.assert_allclose(weighted[1, 1], 9 * plain[1, 1], rtol=1e-4)  # g_STS-B tripled
    np.testing.assert_allclose(weighted[0, 1], 3 * plain[0, 1], rtol=1e-4)
    np.testing.assert_allclose(weighted[0, 0], plain[0, 0], rtol=1e-4)


def test_measured_shares_are_the_batches_mean_share_and_count_examples():
    model = _tiny_model()
    batches, gold_weights = [_batch(), _batch((0, 0, 2, 1, 2))], [0.2, 0.4]
    shares = measure_gradient_shares(model, batches, gold_weights)
    assert [s.task for s in shares] == ["RTE", "STS-B", "CoLA"]
    assert [s.examples for s in shares] == [5, 3, 2]
    np.testing.assert_allclose([s.example_fraction for s in shares], [0.5, 0.3, 0.2])
    # each batch's ⟨g_STS-B, g⟩/‖g‖² from gradients taken apart, at that batch's λ, then their mean
    by_batch = []
    for batch, gold_weight in zip(batches, gold_weights):
        total = _flat_backbone_gradient(model, batch, tf.reduce_sum, gold_weight)
        sts = _flat_backbone_gradient(model, batch, lambda sums: sums[1], gold_weight)
        by_batch.append((sts @ total) / (total @ total))
    np.testing.assert_allclose(shares[1].share, np.mean(by_batch), rtol=1e-3)
    assert all(s.gradient_norm > 0 and np.isfinite(s.loss_per_example) for s in shares)
    table = format_gradient_shares(shares, "title")
    assert table.startswith("title") and table.count("\n| ") == 4  # header and one row per task


def test_no_batches_is_an_error():
    with pytest.raises(ValueError, match="no batches"):
        measure_gradient_shares(_tiny_model(), [], [])


def test_run_gradient_shares_refuses_what_is_not_a_run(tmp_path):
    with pytest.raises(MissingInputError, match="not a bam_tf run dir"):
        run_gradient_shares(str(tmp_path), "start", 2)
    with pytest.raises(InputError, match="at='middle'"):
        run_gradient_shares(str(tmp_path), "middle", 2)


def test_a_run_dir_under_a_tilde_no_shell_expanded_is_looked_for_at_home(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    with pytest.raises(MissingInputError, match=f"^{tmp_path}/run: not a bam_tf run dir"):
        run_gradient_shares("~/run", "start", 2)
