"""Model outputs on a split, and GLUE dev metrics from them."""

import numpy as np

from bam_tf import metrics
from bam_tf.glue_reader import TaskData
from bam_tf.task import Task
from bam_tf.input_pipeline import inference_dataset
from bam_tf.model import MultiTaskBert
from bam_tf.text_encoding import EncodedExamples


def predict_head(model: MultiTaskBert, encoded: EncodedExamples, head: str, batch_size: int,
                 length_multiple: int = 1) -> np.ndarray:
    """Raw outputs [num_examples, num_outputs] of one head, in example order."""
    dataset, order = inference_dataset(encoded, batch_size, length_multiple)
    batches = [model.inference_outputs(features)[head].numpy() for features in dataset]
    outputs = np.empty((len(encoded), batches[0].shape[1]), np.float32)
    outputs[order] = np.concatenate(batches)
    return outputs


def predictions_from_outputs(outputs: np.ndarray, task: Task) -> np.ndarray:
    """Class ids, or regression scores on the label scale (heads train on it scaled to [0, 1])."""
    return task.predictions(outputs)


def evaluate_split(model: MultiTaskBert, data: TaskData, encoded: EncodedExamples, batch_size: int,
                   length_multiple: int = 1) -> dict[str, float]:
    if data.labels is None:
        raise ValueError(f"{data.source}: has no labels to evaluate against")
    outputs = predict_head(model, encoded, data.task.head, batch_size, length_multiple)
    predictions = predictions_from_outputs(outputs, data.task)
    return metrics.compute_metrics(data.task.metrics, data.labels, predictions)
