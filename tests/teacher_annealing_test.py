"""Tests for bam_tf.teacher_annealing: λ schedules, soft targets and losses, all against hand arithmetic."""

import math

import numpy as np
import pytest

from bam_tf import teacher_annealing as ta

LN3 = math.log(3.0)


def _np(x):
    return np.asarray(x)


# ---- λ (gold weight) ------------------------------------------------------------------


@pytest.mark.parametrize("step, total, expected", [
    # the original's percent_done = global_step / num_train_steps
    (0, 10, 0.0),  # first batch: pure teacher
    (5, 10, 0.5),  # 5 / 10
    (2, 10, 0.2),  # 2 / 10
    (9, 10, 0.9),  # last batch: 9 / 10, still 10 % teacher
    (15, 10, 1.0),  # past the end: clipped to 1
    (0, 1, 0.0),  # a single step: 0 / 1
    (3, 1, 1.0),  # 3 / 1 clipped to 1
    (1, 2, 0.5),  # two steps: 0 then 0.5
    (0, 0, 0.0),  # no steps: 0 / max(0, 1)
])
def test_annealed_gold_weight_by_hand(step, total, expected):
    value = ta.annealed_gold_weight(step, total)
    assert _np(value).dtype == np.float32
    assert float(value) == pytest.approx(expected, abs=1e-7)


def test_annealed_gold_weight_is_linear_across_the_run():
    lams = [float(ta.annealed_gold_weight(s, 4)) for s in range(4)]
    assert lams == pytest.approx([0.0, 0.25, 0.5, 0.75])  # s / 4


def test_gold_weight_with_annealing_off_is_one_minus_distill_weight():
    for step in (0, 7, 100):
        assert float(ta.gold_weight(step, 11, False, 0.3)) == pytest.approx(0.7)  # 1 - 0.3
        assert float(ta.gold_weight(step, 11, False, 1.0)) == pytest.approx(0.0)  # λ held at 0
    assert float(ta.gold_weight(5, 10, True, 0.3)) == pytest.approx(0.5)  # annealed ignores distill_weight


# ---- classification targets ----------------------------------------------------------------


def test_classification_targets_by_hand():
    # softmax([0, ln 3]) = [1, 3] / 4 = [0.25, 0.75]; gold one-hot [0, 1];
    # λ = 0.5: 0.5·[0, 1] + 0.5·[0.25, 0.75] = [0.125, 0.875]
    targets = ta.classification_targets(np.array([1]), np.array([[0.0, LN3]]), np.array([True]), 0.5, 2)
    np.testing.assert_allclose(_np(targets), [[0.125, 0.875]], rtol=1e-6)


def test_classification_targets_gold_class_disagreeing_with_teacher():
    # gold class 0: λ=0.25 -> 0.25·[1, 0] + 0.75·[0.25, 0.75] = [0.25 + 0.1875, 0.5625] = [0.4375, 0.5625]
    targets = ta.classification_targets(np.array([0]), np.array([[0.0, LN3]]), np.array([1.0]), 0.25, 2)
    np.testing.assert_allclose(_np(targets), [[0.4375, 0.5625]], rtol=1e-6)


def test_classification_targets_endpoints_of_lambda():
    teacher = np.array([[0.0, LN3]])
    pure_teacher = ta.classification_targets(np.array([0]), teacher, np.array([True]), 0.0, 2)
    pure_gold = ta.classification_targets(np.array([0]), teacher, np.array([True]), 1.0, 2)
    np.testing.assert_allclose(_np(pure_teacher), [[0.25, 0.75]], rtol=1e-6)
    np.testing.assert_allclose(_np(pure_gold), [[1.0, 0.0]], atol=1e-7)


def test_temperature_softens_the_teacher_by_hand():
    # logits [0, 2 ln 3] / T=2 = [0, ln 3] -> [0.25, 0.75]; with T=1: [1, 9] / 10 = [0.1, 0.9]
    teacher = np.array([[0.0, 2 * LN3]])
    hot = ta.classification_targets(np.array([0]), teacher, np.array([True]), 0.0, 2, temperature=1.0)
    soft = ta.classification_targets(np.array([0]), teacher, np.array([True]), 0.0, 2, temperature=2.0)
    np.testing.assert_allclose(_np(hot), [[0.1, 0.9]], rtol=1e-6)
    np.testing.assert_allclose(_np(soft), [[0.25, 0.75]], rtol=1e-6)


@pytest.mark.parametrize("lam", [0.0, 0.3, 1.0])
def test_no_teacher_gives_pure_one_hot_whatever_lambda(lam):
    targets = ta.classification_targets(np.array([2, 0]), np.array([[5.0, -1.0, 3.0], [0.0, 9.0, 1.0]]),
                                        np.array([False, False]), lam, 3)
    np.testing.assert_allclose(_np(targets), [[0, 0, 1], [1, 0, 0]], atol=0)


def test_has_teacher_is_per_example():
    # row 0 has a teacher (λ=0 -> teacher softmax [0.25, 0.75]); row 1 has none (gold one-hot [1, 0])
    targets = ta.classification_targets(np.array([0, 0]), np.array([[0.0, LN3], [0.0, LN3]]),
                                        np.array([True, False]), 0.0, 2)
    np.testing.assert_allclose(_np(targets), [[0.25, 0.75], [1.0, 0.0]], rtol=1e-6)


def test_classification_targets_are_float32_and_sum_to_one():
    rng = np.random.default_rng(0)
    targets = ta.classification_targets(rng.integers(0, 3, 8), rng.normal(size=(8, 3)).astype(np.float16),
                                        rng.random(8) < 0.5, 0.37, 3)
    assert _np(targets).dtype == np.float32
    np.testing.assert_allclose(_np(targets).sum(axis=1), np.ones(8), rtol=1e-6)


# ---- regression targets ------------------------------------------------------------------


def test_regression_targets_by_hand():
    # row 0: 0.25·4 + 0.75·2 = 1 + 1.5 = 2.5; row 1 (no teacher): gold 1.0 unchanged
    targets = ta.regression_targets(np.array([4.0, 1.0]), np.array([2.0, 5.0]), np.array([True, False]), 0.25)
    np.testing.assert_allclose(_np(targets), [2.5, 1.0], rtol=1e-6)
    # λ = 0: pure teacher; λ = 1: pure gold
    np.testing.assert_allclose(_np(ta.regression_targets(np.array([4.0]), np.array([2.0]), np.array([1]), 0.0)),
                               [2.0])
    np.testing.assert_allclose(_np(ta.regression_targets(np.array([4.0]), np.array([2.0]), np.array([1]), 1.0)),
                               [4.0])


# ---- losses --------------------------------------------------------------------------------


def test_soft_cross_entropy_by_hand():
    # logits [0, 0] -> log softmax [-ln 2, -ln 2]; any targets summing to 1 -> ln 2
    # logits [ln 3, 0] -> softmax [0.75, 0.25]; targets [0.5, 0.5] -> -(0.5 ln 0.75 + 0.5 ln 0.25)
    targets = np.array([[0.125, 0.875], [0.5, 0.5]], np.float32)
    logits = np.array([[0.0, 0.0], [LN3, 0.0]], np.float32)
    loss = _np(ta.soft_cross_entropy(targets, logits))
    expected = [math.log(2), -(0.5 * math.log(0.75) + 0.5 * math.log(0.25))]
    np.testing.assert_allclose(loss, expected, rtol=1e-6)


def test_soft_cross_entropy_matches_formula_and_is_stable_for_large_logits():
    rng = np.random.default_rng(1)
    logits = rng.normal(size=(5, 4)) * 3
    targets = rng.dirichlet(np.ones(4), size=5)
    log_softmax = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
    np.testing.assert_allclose(_np(ta.soft_cross_entropy(targets.astype(np.float32), logits)),
                               -(targets * log_softmax).sum(axis=1), rtol=1e-5)
    # logits of ±1000 would overflow a naive exp; one-hot on the winning class gives 0 loss,
    # on the losing class gives 2000
    big = ta.soft_cross_entropy(np.array([[1.0, 0.0], [0.0, 1.0]], np.float32),
                                np.array([[1000.0, -1000.0], [1000.0, -1000.0]], np.float32))
    np.testing.assert_allclose(_np(big), [0.0, 2000.0], atol=1e-3)


def test_squared_error_by_hand_and_with_trailing_axis():
    targets = np.array([1.0, 2.0, 3.5], np.float32)
    flat = np.array([3.0, 2.0, 1.0], np.float32)  # (3-1)^2=4, 0, (1-3.5)^2=6.25
    np.testing.assert_allclose(_np(ta.squared_error(targets, flat)), [4.0, 0.0, 6.25])
    column = flat[:, None]  # a [batch, 1] regression head output
    out = _np(ta.squared_error(targets, column))
    assert out.shape == (3,)
    np.testing.assert_allclose(out, [4.0, 0.0, 6.25])
