"""bam_tf.predictor: Predictor.load on a saved tiny model folder, predictions checked against the model's own
outputs, batching, task-name spellings, the input errors, and a Keras-native copy of the loaded model."""

import os
import re
import shutil

import keras
import numpy as np
import pytest
import tensorflow as tf

from bam_tf import task_defs
from bam_tf.backbone import load_backbone
from bam_tf.task_set import glue_task
from bam_tf.model import MultiTaskBert, build_model
from bam_tf.predictor import Predictor
from bam_tf.text_encoding import TextEncoder
from bam_tf.trained_model import save_trained_model
from bam_tf.user_errors import InputError, MissingInputError

SPEC = "random:layers=1,hidden=16,heads=2,intermediate=32"
PAIRS = [("A man is sleeping.", "Nobody is asleep."), ("A cat sits.", "A cat is sitting on the mat today."),
         ("Short.", "x"), ("The weather is fine and the sun shines over the hills.", "It rains."),
         ("One", "Two")]
SENTENCES = ["a gripping film", "dull", "the plot goes nowhere, slowly and at length", "fine", "!"]


def _save(directory, tasks, seed=0):
    keras.utils.set_random_seed(seed)
    loaded = load_backbone(SPEC)
    model = MultiTaskBert(loaded.backbone, tasks)
    build_model(model)
    save_trained_model(str(directory), model, TextEncoder(loaded.tokenizer, 32), SPEC)
    return str(directory)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return _save(tmp_path_factory.mktemp("predictor") / "student", [glue_task(n) for n in ("RTE", "SST-2", "STS-B")])


@pytest.fixture(scope="module")
def predictor(model_dir):
    return Predictor.load(model_dir)


def _direct_outputs(predictor, task, examples):
    """The head's raw outputs, computed without the Predictor: encoder, then the model on the whole batch."""
    if isinstance(examples[0], tuple):
        features = predictor.encoder(tf.constant([a for a, _ in examples]), tf.constant([b for _, b in examples]))
    else:
        features = predictor.encoder(tf.constant(examples))
    return predictor.model.inference_outputs(features)[task].numpy()


def _check_classification(predictor, task, examples, results):
    logits = _direct_outputs(predictor, task, examples).astype(np.float64)
    labels = glue_task(task).labels
    assert len(results) == len(examples)
    for result, row in zip(results, logits):
        assert sorted(result) == ["label", "probabilities"]
        assert list(result["probabilities"]) == list(labels)
        probabilities = np.array(list(result["probabilities"].values()))
        assert all(isinstance(p, float) for p in probabilities)
        assert probabilities.sum() == pytest.approx(1.0, abs=1e-12)
        np.testing.assert_allclose(probabilities, np.exp(row) / np.exp(row).sum(), atol=1e-5)
        assert result["label"] == labels[int(row.argmax())]


def test_a_pair_classification_task(predictor):
    _check_classification(predictor, "RTE", PAIRS, predictor.predict("RTE", PAIRS))


def test_a_single_sentence_task_takes_plain_strings(predictor):
    _check_classification(predictor, "SST-2", SENTENCES, predictor.predict("SST-2", SENTENCES))


def test_sts_b_scores_are_on_the_label_scale(predictor):
    results = predictor.predict("STS-B", PAIRS)
    outputs = _direct_outputs(predictor, "STS-B", PAIRS)[:, 0]
    assert all(sorted(r) == ["score"] and isinstance(r["score"], float) for r in results)
    # label_scale: the head trained on score / 5
    np.testing.assert_allclose([r["score"] for r in results], outputs * 5.0, atol=1e-4)


def test_batches_change_nothing_and_the_model_traces_once(predictor):
    for task, examples in (("RTE", PAIRS), ("SST-2", SENTENCES), ("STS-B", PAIRS)):
        small, whole = predictor.predict(task, examples, batch_size=2), predictor.predict(task, examples)
        assert [r.get("label") for r in small] == [r.get("label") for r in whole]
        for a, b in zip(small, whole):
            np.testing.assert_allclose(list(a.get("probabilities", a).values()),
                                       list(b.get("probabilities", b).values()), atol=1e-6)
    assert predictor.model.inference_traces() == 1


def test_tasks_and_their_spellings(predictor):
    assert predictor.tasks == ["RTE", "SST-2", "STS-B"]
    assert isinstance(predictor.model, MultiTaskBert)
    expected = predictor.predict("STS-B", PAIRS[:2])
    for spelling in ("sts-b", "STSB", "sts_b"):
        assert predictor.predict(spelling, PAIRS[:2]) == expected
    assert predictor.predict("sst2", SENTENCES[:1]) == predictor.predict("SST-2", SENTENCES[:1])


def test_numpy_arrays_of_texts_are_examples(predictor):
    assert predictor.predict("SST-2", np.array(SENTENCES)) == predictor.predict("SST-2", SENTENCES)
    assert predictor.predict("RTE", np.array(PAIRS)) == predictor.predict("RTE", PAIRS)  # shape [n, 2]


def test_no_examples_no_predictions(predictor):
    assert predictor.predict("RTE", []) == []
    assert predictor.predict("SST-2", ()) == []


def test_any_iterable_of_examples_is_read_once_in_order(predictor):
    firsts, seconds = [a for a, _ in PAIRS], [b for _, b in PAIRS]
    assert predictor.predict("RTE", zip(firsts, seconds)) == predictor.predict("RTE", PAIRS)
    assert predictor.predict("SST-2", (s for s in SENTENCES)) == predictor.predict("SST-2", SENTENCES)


class _OnlyIterable:  # like a table whose iteration gives its column names
    def __iter__(self):
        return iter(["sentence", "label"])


@pytest.mark.parametrize("examples, kind", [(_OnlyIterable(), "_OnlyIterable"), ({"a film": 1}, "dict"),
                                            ({"a film"}, "set")])
def test_iterables_that_are_not_lists_of_examples_are_refused(predictor, examples, kind):
    with pytest.raises(InputError, match=rf"^give SST-2 examples as a list, got {kind}"):
        predictor.predict("SST-2", examples)


def test_predictions_compute_in_the_dtype_policy_at_load_time(tmp_path):
    """Whatever precision trained the folder (README, "From Python")."""
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        directory = _save(tmp_path / "bf16", [glue_task("RTE")])
    finally:
        keras.mixed_precision.set_global_policy("float32")
    assert Predictor.load(directory).model.backbone.compute_dtype == "float32"
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        assert Predictor.load(directory).model.backbone.compute_dtype == "bfloat16"
    finally:
        keras.mixed_precision.set_global_policy("float32")


def test_the_keras_model_called_on_texts_says_what_it_takes(predictor):
    with pytest.raises(InputError, match=r"takes the encoded features \{token_ids, segment_ids, padding_mask\}.*"
                                         r"Predictor \(got EagerTensor\)"):
        predictor.model(tf.constant(["good"]))
    with pytest.raises(InputError, match=r"\(got dict without segment_ids, padding_mask\)"):
        predictor.model({"token_ids": tf.constant([[1, 2]])})


@pytest.mark.parametrize("task, examples, kwargs, message", [
    ("CoLA", ["x"], {}, r"^this model has no 'CoLA' head; it predicts RTE, SST-2, STS-B$"),
    ("nonsense", ["x"], {}, r"^this model has no 'nonsense' head; it predicts RTE, SST-2, STS-B$"),
    ("RTE", ["A man is sleeping."], {}, r"^RTE is a sentence-pair task: give \(sentence1, sentence2\) tuples of "
                                        r"strings; example 0 is 'A man is sleeping.'$"),
    ("RTE", [("a", "b"), ("a", "b", "c")], {}, r"RTE is a sentence-pair task: .*example 1 is \('a', 'b', 'c'\)"),
    ("STS-B", [("a", 3)], {}, r"STS-B is a sentence-pair task: .*example 0 is \('a', 3\)"),
    ("SST-2", [("a film", "b")], {}, r"^SST-2 is a single-sentence task: give plain strings; example 0 is "
                                     r"\('a film', 'b'\)$"),
    ("SST-2", "a gripping film", {}, r"^give SST-2 examples as a list, got str 'a gripping film'$"),
    ("SST-2", ["x"], {"batch_size": 0}, r"^batch_size must be a positive integer, got 0$"),
    ("SST-2", ["fine", "cut \ud83d"], {}, r"^example 1: '\\ud83d' at character 4 is half of a UTF-16 surrogate pair"),
    ("RTE", [("a", "b"), ("c", "\udc00")], {}, r"^example 1: '\\udc00' at character 0 is half of a UTF-16"),
    ("SST-2", {"x"}, {}, r"^give SST-2 examples as a list, got set"),  # unordered: whose prediction is whose?
])
def test_input_errors(predictor, task, examples, kwargs, message):
    with pytest.raises(InputError, match=message):
        predictor.predict(task, examples, **kwargs)


def test_loading_a_folder_that_is_no_model(tmp_path, model_dir):
    with pytest.raises(MissingInputError, match="neither a trained model folder .* nor a run dir .*student/$"):
        Predictor.load(str(tmp_path))
    run_with_teachers_only = tmp_path / "run"
    shutil.copytree(model_dir, run_with_teachers_only / "teachers" / "RTE")
    (run_with_teachers_only / "teachers" / "SST-2").mkdir()  # not trained: not offered
    shutil.copytree(model_dir, run_with_teachers_only / "teachers" / "RTE.tmp")  # left by a killed save: neither
    with pytest.raises(MissingInputError, match=rf"with a trained student/; its trained teachers: "
                                                rf"{re.escape(str(run_with_teachers_only / 'teachers' / 'RTE'))}$"):
        Predictor.load(str(run_with_teachers_only))
    (tmp_path / "m.keras").write_bytes(b"PK")
    with pytest.raises(MissingInputError, match=r"m.keras: a Keras file \(keras.saving.load_model reads it\), not a "
                                                r"trained model folder or a run dir$"):
        Predictor.load(str(tmp_path / "m.keras"))
    with pytest.raises(MissingInputError, match=r"/nothere: no such folder \(a trained model folder or a run dir\)"):
        Predictor.load(str(tmp_path / "nothere"))


def test_a_run_dir_loads_its_student(model_dir, predictor):
    assert Predictor.load(os.path.dirname(model_dir)).tasks == predictor.tasks == ["RTE", "SST-2", "STS-B"]


def test_the_loaded_model_saves_as_a_keras_file(predictor, tmp_path):
    path = str(tmp_path / "m.keras")
    predictor.model.save(path)
    again = keras.saving.load_model(path)
    features = predictor.encoder(tf.constant([a for a, _ in PAIRS]), tf.constant([b for _, b in PAIRS]))
    expected, actual = predictor.model.inference_outputs(features), again.inference_outputs(features)
    for name in predictor.tasks:
        np.testing.assert_allclose(actual[name].numpy(), expected[name].numpy(), rtol=0, atol=1e-6)


def test_a_user_task_by_its_own_labels(tmp_path):
    definitions = {"tasks": [{"name": "tone", "files": {"train": "t.jsonl", "dev": "t.jsonl"}, "text_a": "t",
                              "label": "y", "labels": ["low", "mid", "high"], "metrics": ["accuracy"]}]}
    tone = task_defs.tasks_from_definitions(definitions, source="defs.yaml", base_dir=str(tmp_path),
                                            check_files=False)[0]
    directory = _save(tmp_path / "model", [tone, glue_task("RTE")])
    predictor = Predictor.load(directory)  # only the model folder knows the task
    results = predictor.predict("Tone", SENTENCES[:2])
    assert [sorted(r["probabilities"]) for r in results] == [["high", "low", "mid"]] * 2
    assert {r["label"] for r in results} <= {"low", "mid", "high"}
