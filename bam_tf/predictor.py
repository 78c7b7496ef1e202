"""Predictions in Python from a trained model folder: labels with their probabilities, or scores.

    from bam_tf.predictor import Predictor
    predictor = Predictor.load("runs/quickstart")     # a run dir (its student), or any trained model folder
    predictor.predict("RTE", [("A man is sleeping.", "Nobody is asleep.")])
    # -> [{"label": "not_entailment", "probabilities": {"entailment": 0.1, "not_entailment": 0.9}}]
    predictor.predict("SST-2", ["a gripping film"])      # single-sentence task: plain strings
    predictor.predict("STS-B", [("A cat sits.", "A cat is sitting.")])   # -> [{"score": 4.6}], label scale 0–5
    predictor.tasks                       # names of the tasks it can predict
    predictor.model.save("student.keras")  # the keras MultiTaskBert; keras.saving.load_model reads it
                                           # back in any process that imported bam_tf.model

Texts are encoded as evaluation encodes them (the folder's own TextEncoder: its tokenizer, packing and
max_seq_length) and run through `MultiTaskBert.inference_outputs` in batches of `batch_size`, each padded
to its longest example (one trace, whatever the batch shape).
They compute in Keras' dtype policy at load time (float32 unless set), as the exported SavedModel does; a run's
dev scores were computed in its training precision (training_summary.json: "precision"), so a prediction may
differ from them in the last digits. To predict as the run scored, call
keras.mixed_precision.set_global_policy(<that precision>) before Predictor.load.
Bad input (an unknown task, pairs for a single-sentence task, ...) is an InputError saying what to give.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence

import numpy as np
import tensorflow as tf

from bam_tf.glue_reader import unicode_problem
from bam_tf.task import Task
from bam_tf.task_set import TaskSet
from bam_tf.model import MultiTaskBert
from bam_tf.run_layout import resolve_model_dir
from bam_tf.text_encoding import TextEncoder
from bam_tf.trained_model import load_trained_model
from bam_tf.user_errors import InputError

Example = str | tuple[str, str]  # a sentence, or a sentence pair


class Predictor:
    def __init__(self, model: MultiTaskBert, encoder: TextEncoder):
        self.model = model
        self.encoder = encoder

    @classmethod
    def load(cls, directory: str) -> Predictor:
        """The predictor of a trained model folder (bam_tf.trained_model: a teacher's or the student's), or of
        a run dir's student."""
        return cls(*load_trained_model(resolve_model_dir(directory)))

    @property
    def tasks(self) -> list[str]:
        """The names of the tasks this model has a head for."""
        return [task.name for task in self.model.tasks]

    def predict(self, task: str, examples: Iterable[Example], batch_size: int = 32) -> list[dict]:
        """One dict per example, in order.

        Classification: {"label": label string, "probabilities": {label string: probability}};
        regression: {"score": the score on the task's label scale (STS-B: 0–5), as the model predicts it, so
        it may fall slightly outside the range (the GLUE submission clips it; this does not)}. A pair task takes
        (sentence1, sentence2) tuples, a single-sentence task plain strings.
        """
        task = self._task(task)
        text_a, text_b = _texts(task, examples)
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise InputError(f"batch_size must be a positive integer, got {batch_size!r}")
        if not text_a:
            return []
        return task.prediction_records(self._head_outputs(task, text_a, text_b, batch_size))

    def _head_outputs(self, task: Task, text_a: list[str], text_b: list[str] | None,
                      batch_size: int) -> np.ndarray:
        """The task head's raw outputs [num_examples, num_outputs], in example order."""
        # The encoder runs eagerly, batch by batch: encode_task_data's tf.data map traces the tokenizer
        # anew on every call, seconds for what takes milliseconds here.
        outputs = []
        for start in range(0, len(text_a), batch_size):
            texts = [tf.constant(column[start:start + batch_size]) for column in (text_a, text_b) if column is not None]
            features = self.encoder(*texts)
            # Packed to max_seq_length; the batch's longest example is enough (padding is masked anyway).
            longest = int(tf.reduce_max(tf.reduce_sum(tf.cast(features["padding_mask"], tf.int32), axis=1)))
            features = {name: value[:, :longest] for name, value in features.items()}
            outputs.append(self.model.inference_outputs(features)[task.name].numpy())
        return np.concatenate(outputs)

    def _task(self, name: str) -> Task:
        if not isinstance(name, str):
            raise InputError(f"a task is named by a string, got {name!r}; this model predicts {', '.join(self.tasks)}")
        # GLUE spellings ("sts-b", "STSB", "mnli-m") and this model's own user tasks
        known = TaskSet([task for task in self.model.tasks if task.is_user_task])
        try:
            task = known.get(name)
        except InputError:
            task = None
        if task is None or task not in self.model.tasks:
            raise InputError(f"this model has no {name!r} head; it predicts {', '.join(self.tasks)}")
        return task


def _texts(task: Task, examples) -> tuple[list[str], list[str] | None]:
    """(first sentences, second sentences or None), after checking each example fits the task."""
    if not isinstance(examples, (str, bytes)) and callable(getattr(examples, "tolist", None)):
        examples = examples.tolist()  # a NumPy array (of strings, or of pairs: shape [n, 2]) or a pandas Series
    # A list or an iterator (zip, a generator); not a set (whose prediction would be whose?), a mapping or a
    # table whose iteration gives keys or column names.
    if isinstance(examples, (str, bytes)) or not isinstance(examples, (Sequence, Iterator)):
        raise InputError(f"give {task.name} examples as a list, got {type(examples).__name__} {examples!r:.80}")
    examples = list(examples)  # a generator or zip(...) of pairs, read once
    if task.is_pair:
        for i, example in enumerate(examples):
            is_pair = isinstance(example, (tuple, list)) and len(example) == 2
            if not (is_pair and all(isinstance(sentence, str) for sentence in example)):
                raise InputError(f"{task.name} is a sentence-pair task: give (sentence1, sentence2) tuples of strings; "
                                 f"example {i} is {example!r:.80}")
            _check_text(example[0], i)
            _check_text(example[1], i)
        return [a for a, _ in examples], [b for _, b in examples]
    for i, example in enumerate(examples):
        if not isinstance(example, str):
            raise InputError(f"{task.name} is a single-sentence task: give plain strings; "
                             f"example {i} is {example!r:.80}")
        _check_text(example, i)
    return list(examples), None


def _check_text(text: str, index: int) -> None:
    problem = unicode_problem(text)
    if problem:
        raise InputError(f"example {index}: {problem}")

