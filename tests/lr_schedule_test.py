"""Tests for bam_tf.lr_schedule: the original's linear warmup, then linear decay to zero, by hand."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from bam_tf.lr_schedule import WarmupLinearDecay, learning_rate_at, warmup_steps_for

# warmup 10 of 100 steps, peak 1.0:
#   step < 10: step / 10          -> step 0: 0, step 5: 0.5, step 9: 0.9
#   step >= 10: 1 - step / 100    -> step 10: 0.9 (the drop after warmup), 55: 0.45, 99: 0.01, 100: 0
WARMUP_CASES = [(0, 0.0), (5, 0.5), (9, 0.9), (10, 0.9), (55, 0.45), (99, 0.01), (100, 0.0), (150, 0.0)]


@pytest.mark.parametrize("step, expected", WARMUP_CASES)
def test_learning_rate_at_by_hand(step, expected):
    assert float(learning_rate_at(step, 1.0, 10, 100)) == pytest.approx(expected, abs=1e-7)


def test_peak_scales_the_whole_curve():
    # 2e-5 · 0.5 at step 50
    assert float(learning_rate_at(50, 2e-5, 10, 100)) == pytest.approx(1e-5, rel=1e-6)


def test_warmup_steps_truncate_like_the_original():
    assert warmup_steps_for(0.1, 1201) == 120  # int(120.1)
    assert warmup_steps_for(0.1, 9) == 0  # no warmup at all: the first step already has the peak rate
    assert warmup_steps_for(0.1, 802) == 80


def test_no_warmup_starts_at_peak_and_decays():
    # warmup 0: step 0 -> (100 - 0) / 100 = 1; step 50 -> 0.5; step 99 -> 0.01
    assert float(learning_rate_at(0, 1.0, 0, 100)) == pytest.approx(1.0)
    assert float(learning_rate_at(50, 1.0, 0, 100)) == pytest.approx(0.5)
    assert float(learning_rate_at(99, 1.0, 0, 100)) == pytest.approx(0.01, abs=1e-7)
    assert float(learning_rate_at(100, 1.0, 0, 100)) == pytest.approx(0.0)


def test_learning_rate_on_a_tensor_of_steps():
    steps = tf.constant([0, 9, 10, 55, 99, 100], tf.int64)
    np.testing.assert_allclose(np.asarray(learning_rate_at(steps, 1.0, 10, 100)),
                               [0.0, 0.9, 0.9, 0.45, 0.01, 0.0], rtol=1e-6, atol=1e-7)


def test_schedule_class_matches_function_and_round_trips_config():
    schedule = WarmupLinearDecay(1.0, 10, 100)
    for step, expected in WARMUP_CASES:
        assert float(schedule(tf.constant(step, tf.int64))) == pytest.approx(expected, abs=1e-7)
    config = schedule.get_config()
    assert config == {"peak_learning_rate": 1.0, "warmup_steps": 10, "total_steps": 100}
    clone = WarmupLinearDecay.from_config(config)
    assert float(clone(55)) == pytest.approx(0.45)
    # registered for Keras serialization, so a saved optimizer can rebuild it
    restored = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(schedule))
    assert isinstance(restored, WarmupLinearDecay)
    assert restored.get_config() == config


def test_schedule_drives_a_keras_optimizer():
    optimizer = keras.optimizers.SGD(learning_rate=WarmupLinearDecay(1.0, 10, 100))
    variable = keras.Variable(np.zeros(1, np.float32))
    optimizer.build([variable])
    assert float(optimizer.learning_rate) == pytest.approx(0.0)  # iterations = 0 -> 0/10
    optimizer.iterations.assign(55)
    assert float(optimizer.learning_rate) == pytest.approx(0.45)
