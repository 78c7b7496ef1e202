"""bam_tf.task: each kind of task owns its labels, targets, loss, predictions and outputs (hand-computed)."""

import math
import types

import numpy as np
import pytest

from bam_tf.task import ClassificationTask, RegressionTask, SplitLayout, normalized_name, task_slug

_PAIR = types.MappingProxyType({"train": SplitLayout("train.tsv", 3, 0, 1, 2, None, True)})
_SINGLE = types.MappingProxyType({"train": SplitLayout("train.tsv", 2, 0, None, 1, None, True)})
COMMON = dict(directory="d", metrics=("accuracy",), submission_file="x.tsv")
TONE = ClassificationTask(name="tone", head="tone", labels=("neg", "pos", "mixed"), splits=_SINGLE, **COMMON)
RATING = RegressionTask(name="rating", head="rating", label_range=(1.0, 11.0), splits=_PAIR, **COMMON)


def test_a_label_that_prints_like_a_valid_one_names_its_code_points():
    accented = ClassificationTask(name="mood", head="mood", labels=("tr\u00e8s", "no\u00a0way"), splits=_SINGLE,
                                  **COMMON)
    decomposed = "tre\u0300s"  # è as e + combining grave accent, as macOS often saves it
    with pytest.raises(ValueError) as error:
        accented.parse_label(decomposed)
    assert str(error.value) == (
        f"unknown mood label {decomposed!r}; valid labels: tr\u00e8s, no\u00a0way ({decomposed!r} looks like "
        "'tr\u00e8s' but is other characters: U+0074 U+0072 U+0065 U+0300 U+0073 in the file, U+0074 U+0072 U+00E8 "
        "U+0073 in the labels; write the label in the file as the labels spell it, e.g. save the file "
        "NFC-normalised)")
    for lookalike in ("no way", "tr\u00e8\u200bs"):  # a plain space for the no-break one; a zero-width space
        with pytest.raises(ValueError, match="looks like .* but is other characters"):
            accented.parse_label(lookalike)
    assert accented.parse_label("tr\u00e8s") == 0


def test_the_head_width_and_label_parsing_follow_the_kind():
    assert (TONE.num_outputs, RATING.num_outputs) == (3, 1)
    assert TONE.parse_label("mixed") == 2 and RATING.parse_label("6") == 6.0
    with pytest.raises(ValueError, match=r"unknown tone label 'happy'; valid labels: neg, pos, mixed"):
        TONE.parse_label("happy")
    with pytest.raises(ValueError, match=r"valid labels: neg, pos, mixed$"):  # no look-alike: no hint
        TONE.parse_label("happy")
    with pytest.raises(ValueError, match=r"rating score '12' is outside \[1, 11\]"):
        RATING.parse_label("12")
    with pytest.raises(ValueError, match="is not a number"):
        RATING.parse_label("high")
    with pytest.raises(ValueError, match=r"label ids outside \[0, 3\)"):
        TONE.checked_labels(np.array([0, 3]))
    assert TONE.checked_labels(np.array([2, 0])).dtype == np.int32 == TONE.label_dtype
    assert RATING.checked_labels(np.array([2, 11])).dtype == np.float32 == RATING.label_dtype


def test_training_targets_scale_only_regression():
    np.testing.assert_array_equal(TONE.training_targets(np.array([2, 0])), [2.0, 0.0])
    np.testing.assert_allclose(RATING.training_targets(np.array([1.0, 6.0, 11.0])), [0.0, 0.5, 1.0])
    np.testing.assert_allclose(RATING.label_scale(np.array([0.0, 0.25])), [1.0, 3.5])


def test_classification_loss_is_the_cross_entropy_with_the_annealed_target():
    # λ = 0.25, teacher logits [0, ln 3, 0] → softmax [0.2, 0.6, 0.2]; gold class 1 one-hot.
    # target = 0.25·[0, 1, 0] + 0.75·[0.2, 0.6, 0.2] = [0.15, 0.7, 0.15]; prediction logits [0, ln 3, 0] →
    # p = [0.2, 0.6, 0.2]: loss = −(0.3·ln 0.2 + 0.7·ln 0.6) ≈ 0.8404 (gold alone would give −ln 0.6 ≈ 0.5108,
    # the teacher alone −(0.4·ln 0.2 + 0.6·ln 0.6) ≈ 0.9503). The row without a teacher trains on gold only:
    # prediction logits [0, ln 2, 0] (p = [0.25, 0.5, 0.25]): loss = −ln 0.5 = ln 2.
    teacher = np.array([[0.0, math.log(3.0), 0.0], [9.0, 9.0, 9.0]], np.float32)
    prediction = np.array([[0.0, math.log(3.0), 0.0], [0.0, math.log(2.0), 0.0]], np.float32)
    loss = TONE.per_example_loss(prediction, np.array([1.0, 1.0], np.float32), teacher,
                                 np.array([1.0, 0.0], np.float32), 0.25, 1.0)
    expected_mixed = -(0.3 * math.log(0.2) + 0.7 * math.log(0.6))
    np.testing.assert_allclose(np.asarray(loss), [expected_mixed, math.log(2.0)], rtol=1e-5)
    # another task's label (7) in this batch is clipped into range, not a NaN
    other = TONE.per_example_loss(prediction, np.array([7.0, 7.0], np.float32), teacher,
                                  np.array([0.0, 0.0], np.float32), 1.0, 1.0)
    assert np.isfinite(np.asarray(other)).all()


def test_regression_loss_is_the_squared_error_to_the_annealed_value():
    # λ = 0.25: target = 0.25·0.8 + 0.75·0.4 = 0.5; prediction 0.2 → (0.5 − 0.2)² = 0.09.
    # Without a teacher: target = gold 0.8 → (0.8 − 0.2)² = 0.36.
    loss = RATING.per_example_loss(np.array([[0.2], [0.2]], np.float32), np.array([0.8, 0.8], np.float32),
                                   np.array([[0.4], [0.4]], np.float32), np.array([1.0, 0.0], np.float32), 0.25, 1.0)
    np.testing.assert_allclose(np.asarray(loss), [0.09, 0.36], rtol=1e-5)


def test_predictions_records_and_submission_strings():
    logits = np.array([[0.0, 0.0, math.log(2.0)], [1.0, 0.0, 0.0]], np.float32)
    np.testing.assert_array_equal(TONE.predictions(logits), [2, 0])
    assert TONE.prediction_strings(logits) == ["mixed", "neg"]
    first = TONE.prediction_records(logits)[0]
    assert first["label"] == "mixed"
    assert first["probabilities"] == pytest.approx({"neg": 0.25, "pos": 0.25, "mixed": 0.5})
    outputs = np.array([[0.5], [1.2]], np.float32)
    np.testing.assert_allclose(RATING.predictions(outputs), [6.0, 13.0])
    assert RATING.prediction_strings(outputs) == ["6.000", "11.000"]  # clipped to the range in submissions
    assert RATING.prediction_records(outputs) == [{"score": 6.0}, {"score": pytest.approx(13.0)}]


def test_serving_outputs_are_named_by_output_names():
    import tensorflow as tf

    outputs = TONE.serving_outputs(tf.constant([[0.0, 2.0, 0.0]]), prefix="tone_")
    assert sorted(outputs) == sorted(f"tone_{name}" for name in TONE.output_names)
    assert outputs["tone_label"].numpy().tolist() == [b"pos"]
    outputs = RATING.serving_outputs(tf.constant([[0.5]]))
    assert sorted(outputs) == sorted(RATING.output_names)
    assert outputs["label"].numpy().tolist() == [b"6.000"] and outputs["score"].numpy().tolist() == [6.0]


def test_what_a_trained_head_depends_on():
    assert TONE.head_description() == "labels ['neg', 'pos', 'mixed'] on single sentences"
    assert RATING.head_description() == "scores in [1, 11] on sentence pairs"
    reordered = ClassificationTask(name="tone", head="tone", labels=("pos", "neg", "mixed"), splits=_SINGLE, **COMMON)
    moved = ClassificationTask(name="tone", head="tone", labels=TONE.labels, splits=_SINGLE,
                               **{**COMMON, "directory": "elsewhere"})
    assert moved.head_signature() == TONE.head_signature() != reordered.head_signature()
    assert (TONE.first_usable_format, RATING.first_usable_format) == (1, 2)  # regression heads rescaled in format 2
    assert TONE.label_definition() == {"labels": ["neg", "pos", "mixed"]}
    assert RATING.label_definition() == {"regression": {"min": 1.0, "max": 11.0}}


def test_a_task_is_checked_when_built():
    with pytest.raises(ValueError, match="at least 2 labels"):
        ClassificationTask(name="one", head="one", labels=("only",), splits=_SINGLE, **COMMON)
    with pytest.raises(ValueError, match="is empty"):
        RegressionTask(name="flat", head="flat", label_range=(3.0, 3.0), splits=_SINGLE, **COMMON)


def test_names():
    assert normalized_name("STS-B") == normalized_name("sts_b") == normalized_name("stsb") == "stsb"
    assert task_slug("STS-B") == "sts_b" and task_slug("review-stars") == "review_stars"
