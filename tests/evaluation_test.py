"""Tests for bam_tf.evaluation: head outputs to GLUE predictions (regression back on the label scale)."""

import numpy as np
import pytest

from bam_tf import metrics
from bam_tf.evaluation import predictions_from_outputs
from bam_tf.task_set import glue_task


def test_regression_outputs_are_scored_on_the_label_scale():
    # an STS-B head trained on score / 5: outputs 0.1, 0.5, 0.9 are scores 0.5, 2.5, 4.5
    outputs = np.array([[0.1], [0.5], [0.9]], np.float32)
    np.testing.assert_allclose(predictions_from_outputs(outputs, glue_task("STS-B")), [0.5, 2.5, 4.5], rtol=1e-6)


def test_classification_outputs_are_argmax_class_ids():
    logits = np.array([[0.2, 0.1], [-1.0, 3.0]], np.float32)
    np.testing.assert_array_equal(predictions_from_outputs(logits, glue_task("RTE")), [0, 1])


def test_correlations_do_not_depend_on_the_scale_but_predictions_do():
    labels = np.array([0.4, 1.8, 3.3, 4.9], np.float32)
    outputs = np.array([[0.1], [0.3], [0.7], [0.95]], np.float32)
    scaled = predictions_from_outputs(outputs, glue_task("STS-B"))
    raw = outputs[:, 0]
    pearson = lambda predictions: metrics.compute_metrics(("pearson",), labels, predictions)["pearson"]
    assert pearson(scaled) == pytest.approx(pearson(raw), abs=1e-6)
    assert scaled.max() > 4.5 and raw.max() < 1.0
