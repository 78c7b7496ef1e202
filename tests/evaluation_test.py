"""Tests for bam_tf.evaluation: head outputs to GLUE predictions (regression back on the label scale)."""

import numpy as np

from bam_tf.evaluation import predictions_from_outputs
from bam_tf.task_set import glue_task


def test_regression_outputs_are_scored_on_the_label_scale():
    # an STS-B head trained on score / 5: outputs 0.1, 0.5, 0.9 are scores 0.5, 2.5, 4.5
    outputs = np.array([[0.1], [0.5], [0.9]], np.float32)
    np.testing.assert_allclose(predictions_from_outputs(outputs, glue_task("STS-B")), [0.5, 2.5, 4.5], rtol=1e-6)


def test_classification_outputs_are_argmax_class_ids():
    logits = np.array([[0.2, 0.1], [-1.0, 3.0]], np.float32)
    np.testing.assert_array_equal(predictions_from_outputs(logits, glue_task("RTE")), [0, 1])
