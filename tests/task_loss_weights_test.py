"""Tests for bam_tf.task_loss_weights and its path into the update: parsing, names as --tasks takes them, the
pipeline's per-stage weights, and the weighted gradient of MultiTaskBert by hand."""

import keras
import keras_hub
import numpy as np
import pytest
import tensorflow as tf

from bam_tf.config import BamConfig
from bam_tf.model import MultiTaskBert, multitask_loss
from bam_tf.optimizer import create_optimizer
from bam_tf.pipeline import BamPipeline
from bam_tf.task_loss_weights import parse_task_loss_weights, resolve_task_loss_weights
from bam_tf.task_set import GLUE, glue_task
from bam_tf.trained_model import build_model
from bam_tf.user_errors import InputError

RTE, STSB, COLA = glue_task("RTE"), glue_task("STS-B"), glue_task("CoLA")


def test_parse_pairs_in_order_tolerating_spaces_and_stray_commas():
    assert parse_task_loss_weights(" STS-B=25, rte = 0.5,,") == [("STS-B", 25.0), ("rte", 0.5)]
    assert parse_task_loss_weights("") == []


@pytest.mark.parametrize("text, message", [
    ("STS-B", r"'STS-B' is not TASK=WEIGHT"),
    ("=3", r"'=3' is not TASK=WEIGHT"),
    ("STS-B=lots", r"'STS-B=lots': the weight 'lots' is not a number"),
    ("STS-B=0", r"'STS-B=0': a weight must be a positive finite number"),
    ("RTE=2,STS-B=-1", r"'STS-B=-1': a weight must be"),
    ("STS-B=inf", r"'STS-B=inf': a weight must be a positive finite number"),
])
def test_parse_errors_name_the_flag_and_the_item(text, message):
    with pytest.raises(InputError, match=r"^--task_loss_weights: " + message):
        parse_task_loss_weights(text)


def test_resolve_gives_every_task_a_weight_with_names_as_tasks_spells_them():
    assert resolve_task_loss_weights("sts_b=25", GLUE, [RTE, STSB]) == {"RTE": 1.0, "STS-B": 25.0}
    assert resolve_task_loss_weights("", GLUE, [RTE, STSB]) == {"RTE": 1.0, "STS-B": 1.0}


def test_resolve_refuses_tasks_outside_the_run_and_twice_named_ones():
    with pytest.raises(InputError,
                       match=r"--task_loss_weights: CoLA is not trained by this run \(--tasks: RTE, STS-B\)"):
        resolve_task_loss_weights("cola=2", GLUE, [RTE, STSB])
    with pytest.raises(InputError, match=r"STS-B is given a weight twice"):
        resolve_task_loss_weights("STS-B=2,stsb=3", GLUE, [RTE, STSB])
    with pytest.raises(InputError, match=r"^--task_loss_weights: Unknown GLUE task 'tone'"):
        resolve_task_loss_weights("tone=2", GLUE, [RTE, STSB])


def test_config_validation_reports_a_malformed_value():
    config = BamConfig(model_dir="/runs/x", glue_dir="/data/glue", task_loss_weights="STS-B:25")
    with pytest.raises(InputError, match=r"--task_loss_weights: 'STS-B:25' is not TASK=WEIGHT"):
        config.validate()


def _pipeline(tmp_path, weights, tasks="RTE,STS-B,CoLA"):
    return BamPipeline(BamConfig(model_dir=str(tmp_path), glue_dir="/data/glue", tasks=tasks,
                                 task_loss_weights=weights), verbose=False)


def test_the_student_stage_gets_the_weights_and_a_one_task_stage_none(tmp_path):
    pipeline = _pipeline(tmp_path, "STS-B=25")
    assert pipeline.stage_loss_weights([RTE, STSB, COLA]) == {"RTE": 1.0, "STS-B": 25.0, "CoLA": 1.0}
    assert pipeline.stage_loss_weights([STSB]) is None  # a teacher: nothing to balance
    assert _pipeline(tmp_path, "").stage_loss_weights([RTE, STSB, COLA]) is None
    assert _pipeline(tmp_path, "rte=1").stage_loss_weights([RTE, STSB, COLA]) is None  # all 1: the original


def test_a_weight_for_a_task_the_run_does_not_train_fails_when_the_pipeline_is_built(tmp_path):
    with pytest.raises(InputError, match=r"CoLA is not trained by this run"):
        _pipeline(tmp_path, "CoLA=2", tasks="RTE,STS-B")


def _tiny_model(weights):
    keras.utils.set_random_seed(0)
    backbone = keras_hub.models.BertBackbone(vocabulary_size=100, num_layers=1, num_heads=2, hidden_dim=16,
                                             intermediate_dim=32, max_sequence_length=16, dropout=0.0)
    model = MultiTaskBert(backbone, [RTE, STSB], head_dropout=0.0, task_loss_weights=weights)
    build_model(model)
    return model


def _batch():
    token_ids = np.random.default_rng(0).integers(1, 100, size=(4, 5)).astype(np.int32)
    return {"token_ids": tf.constant(token_ids), "segment_ids": tf.zeros((4, 5), tf.int32),
            "padding_mask": tf.ones((4, 5), tf.bool), "task_id": tf.constant([0, 1, 0, 1]),
            "label": tf.constant([1.0, 0.8, 0.0, 0.2]), "teacher": tf.zeros((4, 2)),
            "has_teacher": tf.zeros((4,), tf.bool)}


def test_the_update_follows_the_weighted_sum_of_task_losses():
    model = _tiny_model({"STS-B": 25.0})
    model.compile(optimizer=create_optimizer(peak_learning_rate=1e-3, total_steps=2, num_layers=1))
    batch = _batch()
    gradients, loss_sums, _ = model._group_gradients(batch, tf.constant(1.0), tf.constant(1.0))
    with tf.GradientTape() as tape:
        sums, _ = multitask_loss(model(batch, training=False), batch, model.tasks, 1.0, 1.0)
        expected_loss = sums[0] + 25.0 * sums[1]
    expected = tape.gradient(expected_loss, model.trainable_variables)
    for got, want in zip(gradients, expected):
        np.testing.assert_allclose(tf.convert_to_tensor(got).numpy(), tf.convert_to_tensor(want).numpy(),
                                   rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(loss_sums.numpy(), sums.numpy(), rtol=1e-6)  # logged losses stay unweighted


def test_weights_of_one_are_the_unweighted_model_and_unknown_tasks_are_refused():
    assert _tiny_model({"RTE": 1.0}).task_loss_weights is None
    with pytest.raises(InputError, match=r"task_loss_weights: \['CoLA'\] are not among the model's tasks"):
        _tiny_model({"CoLA": 2.0})


def test_weights_round_trip_through_the_keras_config():
    config = _tiny_model({"STS-B": 25.0}).get_config()
    assert config["task_loss_weights"] == {"RTE": 1.0, "STS-B": 25.0}
    assert MultiTaskBert.from_config(config).task_loss_weights == {"RTE": 1.0, "STS-B": 25.0}
    del config["task_loss_weights"]  # a config saved before the key existed
    assert MultiTaskBert.from_config(config).task_loss_weights is None
    config["task_loss_weights"] = {"STS-B": -1}
    with pytest.raises(InputError, match=r"task_loss_weights: expected null or a mapping"):
        MultiTaskBert.from_config(config)
