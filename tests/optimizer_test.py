"""Tests for bam_tf.optimizer: layer-wise learning rates, decoupled weight decay, post-sum clipping."""

import math

import keras
import keras_hub
import numpy as np
import pytest
import tensorflow as tf

from bam_tf import optimizer as optimizer_lib
from bam_tf.optimizer import BertAdamW, create_optimizer, layerwise_lr_multiplier

# ---- layer-wise learning-rate multipliers ---------------------------------------------------------

# The original (bam/bert/optimization.py) for num_layers=2, decay=0.5: multiplier = 0.5^(2 + 2 − depth)
#   embeddings (depth 0): 0.5^4 = 0.0625; layer 0 (depth 1): 0.5^3 = 0.125; layer 1 (depth 2): 0.25;
#   pooler (depth 3): 0.5; task heads (depth 4): 1
MULTIPLIER_CASES = [
    ("token_embedding/embeddings", 0.0625),
    ("position_embedding/embeddings", 0.0625),
    ("segment_embedding/embeddings", 0.0625),
    ("embeddings_layer_norm/gamma", 0.0625),
    ("embeddings_layer_norm/beta", 0.0625),
    ("transformer_layer_0/self_attention_layer/query/kernel", 0.125),
    ("transformer_layer_0/feedforward_layer_norm/gamma", 0.125),
    ("transformer_layer_1/feedforward_output_dense/bias", 0.25),
    ("transformer_layer_1/self_attention_layer/attention_output/kernel", 0.25),
    ("pooled_dense/kernel", 0.5),
    ("pooled_dense/bias", 0.5),
    ("multi_task_bert/head_rte/kernel", 1.0),
    ("head_rte/kernel", 1.0),
    ("head_sts_b/bias", 1.0),
]


@pytest.mark.parametrize("path, expected", MULTIPLIER_CASES)
def test_layerwise_lr_multiplier_by_hand(path, expected):
    assert layerwise_lr_multiplier(path, num_layers=2, decay=0.5) == pytest.approx(expected)


def test_layerwise_multiplier_multi_digit_layers_and_decay_one():
    # 12 layers, decay 0.9: layer 10 is depth 11 -> 0.9^(14 − 11) = 0.729; layer 1 is depth 2 -> 0.9^12;
    # embeddings 0.9^14; pooler 0.9^1
    assert layerwise_lr_multiplier("transformer_layer_10/x/kernel", 12, 0.9) == pytest.approx(0.729)
    assert layerwise_lr_multiplier("transformer_layer_1/x/kernel", 12, 0.9) == pytest.approx(0.9**12)
    assert layerwise_lr_multiplier("token_embedding/embeddings", 12, 0.9) == pytest.approx(0.9**14)
    assert layerwise_lr_multiplier("pooled_dense/kernel", 12, 0.9) == pytest.approx(0.9)
    assert layerwise_lr_multiplier("token_embedding/embeddings", 12, 1.0) == 1.0


def _tiny_bert():
    return keras_hub.models.BertBackbone(vocabulary_size=100, num_layers=2, num_heads=2, hidden_dim=32,
                                         intermediate_dim=64, max_sequence_length=64)


def test_real_backbone_paths_match_the_patterns():
    """Every variable of a keras-hub BERT falls in the bucket its name says (guards against renames)."""
    paths = [v.path for v in _tiny_bert().trainable_variables]
    expected_bucket = {}
    for path in paths:
        if path.split("/")[0] in ("token_embedding", "position_embedding", "segment_embedding",
                                  "embeddings_layer_norm"):
            expected_bucket[path] = 0.0625
        elif path.startswith("transformer_layer_0/"):
            expected_bucket[path] = 0.125
        elif path.startswith("transformer_layer_1/"):
            expected_bucket[path] = 0.25
        elif path.startswith("pooled_dense/"):
            expected_bucket[path] = 0.5
        else:
            raise AssertionError(f"unexpected keras-hub BERT variable {path}: it would train like a task head")
    assert sorted(set(expected_bucket.values())) == [0.0625, 0.125, 0.25, 0.5]  # all four depths occur
    for path, expected in expected_bucket.items():
        assert layerwise_lr_multiplier(path, 2, 0.5) == expected, path


# ---- weight decay, multipliers and the AdamW step ------------------------------------------------


def test_zero_gradient_step_on_a_real_bert_applies_only_scaled_decay():
    """With g = 0 Adam moves nothing (m = v = 0), so w1 = w0 · (1 − lr · multiplier · wd) exactly when
    the variable is decayed, and w1 = w0 for LayerNorm gamma/beta and every bias."""
    keras.utils.set_random_seed(0)
    backbone = _tiny_bert()
    variables = backbone.trainable_variables
    for v in variables:  # nonzero everywhere, so decay shows on biases and betas if it were applied
        v.assign(np.full(v.shape, 2.0, np.float32))
    # no warmup: lr at step 0 = 0.1 · (1 − 0 / 10) = 0.1
    opt = create_optimizer(peak_learning_rate=0.1, total_steps=10, warmup_fraction=0.0, weight_decay=0.5,
                           layerwise_lr_decay=0.5, num_layers=2, clip_global_norm=1.0)
    opt.apply([tf.zeros(v.shape) for v in variables], variables)
    decayed, kept = 0, 0
    for v in variables:
        multiplier = layerwise_lr_multiplier(v.path, 2, 0.5)
        if v.path.rsplit("/", 1)[-1] in ("gamma", "beta", "bias"):
            expected = 2.0
            kept += 1
        else:
            # e.g. token embeddings: 2 · (1 − 0.1 · 0.0625 · 0.5) = 2 · 0.996875 = 1.99375
            expected = 2.0 * (1.0 - 0.1 * multiplier * 0.5)
            decayed += 1
        np.testing.assert_allclose(v.numpy(), expected, rtol=1e-6, err_msg=v.path)
    assert decayed > 0 and kept > 0
    assert int(opt.iterations.numpy()) == 1


def _adam_first_step(lr, grad, bias_correction=False, beta_2=0.999, epsilon=1e-6):
    """The first update of m/(√v + ε) from zero moments, times lr.

    Original (no bias correction): lr·(1−β1)g / (sqrt((1−β2)g²) + ε) ≈ 3.16·lr·sign(g).
    Keras Adam: lr·sqrt(1−β2)/(1−β1) · (1−β1)g / (sqrt((1−β2)g²) + ε) ≈ lr·sign(g).
    """
    grad = np.asarray(grad, np.float64)
    scale = math.sqrt(1 - beta_2) / 0.1 if bias_correction else 1.0
    return lr * scale * 0.1 * grad / (math.sqrt(1 - beta_2) * np.abs(grad) + epsilon)


def _three_depths():
    embeddings_norm = keras.layers.LayerNormalization(name="embeddings_layer_norm")
    embeddings_norm.build((None, 2))
    layer0 = keras.layers.Dense(2, name="transformer_layer_0")
    layer0.build((None, 2))
    head = keras.layers.Dense(1, name="head_rte")
    head.build((None, 2))
    variables = embeddings_norm.trainable_variables + layer0.trainable_variables + head.trainable_variables
    assert [v.path for v in variables] == [
        "embeddings_layer_norm/gamma", "embeddings_layer_norm/beta", "transformer_layer_0/kernel",
        "transformer_layer_0/bias", "head_rte/kernel", "head_rte/bias"]
    for v in variables:
        v.assign(np.full(v.shape, 2.0, np.float32))
    grads = [tf.fill(v.shape, sign) for v, sign in zip(variables, [1.0, 1.0, 1.0, -1.0, 1.0, -2.0])]
    return variables, grads


@pytest.mark.parametrize("bias_correction", [False, True])
def test_one_adamw_step_by_hand_with_layer_multipliers(bias_correction):
    """Variables at three depths; each moves by its Adam step plus decoupled decay lr_l·wd·w0."""
    variables, grads = _three_depths()
    # peak 0.01, no warmup -> lr(step 0) = 0.01; wd = 0.1; decay 0.5, 2 layers:
    #   embeddings ×0.0625 -> lr 0.000625, layer 0 ×0.125 -> 0.00125, head ×1 -> 0.01
    opt = create_optimizer(peak_learning_rate=0.01, total_steps=10, warmup_fraction=0.0, weight_decay=0.1,
                           layerwise_lr_decay=0.5, num_layers=2, clip_global_norm=None,
                           adam_bias_correction=bias_correction)
    opt.apply(grads, variables)

    step = lambda lr, g: float(_adam_first_step(lr, g, bias_correction))
    expected = {
        # not decayed
        "embeddings_layer_norm/gamma": 2.0 - step(0.000625, 1.0),
        "embeddings_layer_norm/beta": 2.0 - step(0.000625, 1.0),
        # decayed: 2 − 2·0.1·0.00125 − step
        "transformer_layer_0/kernel": 2.0 - 2.0 * 0.1 * 0.00125 - step(0.00125, 1.0),
        "transformer_layer_0/bias": 2.0 - step(0.00125, -1.0),
        "head_rte/kernel": 2.0 - 2.0 * 0.1 * 0.01 - step(0.01, 1.0),
        # g = −2 moves as far as g = −1 on Adam's first step
        "head_rte/bias": 2.0 - step(0.01, -2.0),
    }
    if bias_correction:  # Keras: the first step is ≈ lr: 2 − 0.002 − 0.01 = 1.988
        assert expected["head_rte/kernel"] == pytest.approx(1.988, abs=1e-6)
    else:  # original: ≈ 3.1623·lr: 2 − 0.002 − 0.031623 = 1.966377 (ε shifts the 6th decimal)
        assert expected["head_rte/kernel"] == pytest.approx(1.966377, abs=2e-6)
    for v in variables:
        np.testing.assert_allclose(v.numpy(), expected[v.path], rtol=0, atol=2e-6, err_msg=v.path)


def test_second_step_without_bias_correction_by_hand():
    """Two steps with g = 1 then g = 1 on a head bias (multiplier 1, no decay), lr 0.01 constant-ish.

    step 0: m = 0.1, v = 0.001 -> moves 0.01·0.1/(0.0316228 + 1e-6);
    step 1 (lr 0.01·(1 − 1/10) = 0.009): m = 0.19, v = 0.001999 -> moves 0.009·0.19/(0.0447102 + 1e-6).
    """
    bias = keras.Variable(np.zeros(1, np.float32), name="bias")  # "bias": not decayed; a head (multiplier 1)
    opt = create_optimizer(peak_learning_rate=0.01, total_steps=10, warmup_fraction=0.0, weight_decay=0.0,
                           layerwise_lr_decay=1.0, num_layers=0, clip_global_norm=None)
    for _ in range(2):
        opt.apply([tf.ones(1)], [bias])
    first = 0.01 * 0.1 / (math.sqrt(0.001) + 1e-6)
    second = 0.009 * 0.19 / (math.sqrt(0.001999) + 1e-6)
    assert float(bias.numpy()[0]) == pytest.approx(-(first + second), rel=1e-5)


def test_create_optimizer_settings():
    opt = create_optimizer(peak_learning_rate=1.0, total_steps=20, warmup_fraction=0.1, num_layers=6)
    assert isinstance(opt, BertAdamW)
    assert opt.num_layers == 6 and opt.layerwise_lr_decay == 0.9 and opt.clip_global_norm == 1.0
    assert opt.weight_decay == pytest.approx(0.01)
    assert opt.beta_1 == pytest.approx(0.9) and opt.beta_2 == pytest.approx(0.999)
    assert opt.epsilon == pytest.approx(1e-6)
    assert opt.bias_correction is False
    # warmup int(0.1 · 20) = 2 steps: step 0 -> 0/2, step 1 -> 1/2, step 2 -> 1 − 2/20 = 0.9, 10 -> 0.5
    opt.build([keras.Variable(np.zeros(1, np.float32))])
    rates = []
    for step in (0, 1, 2, 10):
        opt.iterations.assign(step)
        rates.append(float(opt.learning_rate))
    assert rates == pytest.approx([0.0, 0.5, 0.9, 0.5])


def test_schedule_follows_the_given_step_counter_not_iterations():
    counter = keras.Variable(0, dtype="int64", trainable=False)
    opt = create_optimizer(peak_learning_rate=1.0, total_steps=20, warmup_fraction=0.0, num_layers=0,
                           schedule_step=counter)
    opt.build([keras.Variable(np.zeros(1, np.float32))])
    counter.assign(10)
    assert int(opt.iterations.numpy()) == 0
    assert float(opt.learning_rate) == pytest.approx(0.5)  # 1 − 10/20, from the counter


# ---- global-norm clipping -------------------------------------------------------------------------


def _clipping_optimizer(clip_global_norm):
    # β1 = β2 = 0 and ε = 1 make Adam's first step lr · g / (|g| + 1), which depends on |g|,
    # so a gradient that was clipped moves the weights measurably less than one that was not.
    return BertAdamW(learning_rate=1.0, beta_1=0.0, beta_2=0.0, epsilon=1.0, weight_decay=0.0, num_layers=0,
                     layerwise_lr_decay=1.0, clip_global_norm=clip_global_norm)


def _step_two_variables(opt):
    a = keras.Variable(np.zeros(1, np.float32), name="a")
    b = keras.Variable(np.zeros(1, np.float32), name="b")
    opt.apply([tf.constant([6.0]), tf.constant([8.0])], [a, b])  # global norm sqrt(36 + 64) = 10
    return float(a.numpy()[0]), float(b.numpy()[0])


def test_global_norm_clipping_is_applied_to_the_update():
    # clipped to norm 1: g = [0.6, 0.8] -> moves [0.6/1.6, 0.8/1.8] = [0.375, 0.4444]
    a, b = _step_two_variables(_clipping_optimizer(1.0))
    assert a == pytest.approx(-0.375, rel=1e-6)
    assert b == pytest.approx(-0.8 / 1.8, rel=1e-6)


def test_without_clipping_the_full_gradient_is_used():
    # g = [6, 8] -> moves [6/7, 8/9]
    a, b = _step_two_variables(_clipping_optimizer(None))
    assert a == pytest.approx(-6 / 7, rel=1e-6)
    assert b == pytest.approx(-8 / 9, rel=1e-6)


def test_clipping_is_global_not_per_variable():
    # g_a = [3, 4] (norm 5), g_b = [12] (norm 12): global norm sqrt(9 + 16 + 144) = 13. Clipped to 6.5,
    # every gradient is halved: [1.5, 2] and [6] -> moves [1.5/2.5, 2/3] = [0.6, 0.6667] and 6/7 = 0.8571.
    # Per-variable clipping to 6.5 would leave g_a (norm 5) whole, [0.75, 0.8], and cut g_b to 6.5: 0.8667.
    a = keras.Variable(np.zeros(2, np.float32), name="a")
    b = keras.Variable(np.zeros(1, np.float32), name="b")
    _clipping_optimizer(6.5).apply([tf.constant([3.0, 4.0]), tf.constant([12.0])], [a, b])
    np.testing.assert_allclose(a.numpy(), [-0.6, -2 / 3], rtol=1e-6)
    np.testing.assert_allclose(b.numpy(), [-6 / 7], rtol=1e-6)


def test_gradient_within_the_norm_is_not_rescaled():
    # norm 10 with a limit of 20: unchanged, so the same as no clipping
    a, b = _step_two_variables(_clipping_optimizer(20.0))
    assert a == pytest.approx(-6 / 7, rel=1e-6)
    assert b == pytest.approx(-8 / 9, rel=1e-6)


def test_clip_by_global_norm_called_once_with_the_configured_norm(monkeypatch):
    calls = []
    original = tf.clip_by_global_norm

    def recording(grads, clip_norm, *args, **kwargs):
        calls.append((len(grads), clip_norm))
        return original(grads, clip_norm, *args, **kwargs)

    monkeypatch.setattr(optimizer_lib.tf, "clip_by_global_norm", recording)
    _step_two_variables(_clipping_optimizer(2.5))
    assert calls == [(2, 2.5)]  # one call over both gradients together
    calls.clear()
    _step_two_variables(_clipping_optimizer(None))
    assert calls == []
