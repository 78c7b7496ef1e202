"""Tests for bam_tf.metrics: hand-computed values, sklearn/scipy agreement, GLUE averaging."""

import math

import numpy as np
import pytest

from bam_tf import metrics

# Shared binary example: positions 0, 1, 3 are right; 2 and 4 are missed positives.
BINARY_LABELS = [0, 1, 1, 0, 1]
BINARY_PREDICTIONS = [0, 1, 0, 0, 0]

SIZES = [3, 4, 7, 10, 31, 100, 257, 1000]


# ---- hand-computed values ----------------------------------------------------------


def test_accuracy_by_hand():
    # 3 of 5 right -> 0.6
    assert metrics.accuracy(BINARY_LABELS, BINARY_PREDICTIONS) == pytest.approx(0.6)


def test_f1_by_hand():
    # positive=1: TP=1 (idx 1), FP=0, FN=2 (idx 2, 4) -> 2*1 / (2*1 + 0 + 2) = 0.5
    assert metrics.f1(BINARY_LABELS, BINARY_PREDICTIONS) == pytest.approx(0.5)
    # positive=0: TP=2 (idx 0, 3), FP=2 (idx 2, 4), FN=0 -> 4 / (4 + 2 + 0) = 2/3
    assert metrics.f1(BINARY_LABELS, BINARY_PREDICTIONS, positive=0) == pytest.approx(2 / 3)


def test_binary_mcc_by_hand():
    # TP=1, TN=2, FP=0, FN=2 -> (1*2 - 0*2) / sqrt((1+0)(1+2)(2+0)(2+2)) = 2 / sqrt(24)
    assert metrics.matthews_corrcoef(BINARY_LABELS, BINARY_PREDICTIONS) == pytest.approx(2 / math.sqrt(24))


def test_multiclass_mcc_by_hand():
    # Gorodkin: c = correct = 3 (idx 0, 2, 4), s = 6, true counts t = (2,2,2), predicted counts p = (2,2,2)
    # (c*s - t.p) / sqrt((s^2 - p.p)(s^2 - t.t)) = (18 - 12) / sqrt((36 - 12)(36 - 12)) = 6 / 24 = 0.25
    labels = [0, 0, 1, 1, 2, 2]
    predictions = [0, 1, 1, 2, 2, 0]
    assert metrics.matthews_corrcoef(labels, predictions) == pytest.approx(0.25)


def test_pearson_by_hand():
    # x - mean = (-1.5, -0.5, 0.5, 1.5), y - mean = (-3, -1, 0, 4)
    # sum xy = 4.5 + 0.5 + 0 + 6 = 11, sum xx = 5, sum yy = 26 -> 11 / sqrt(130)
    assert metrics.pearson([1, 2, 3, 4], [2, 4, 5, 9]) == pytest.approx(11 / math.sqrt(130))


def test_spearman_with_ties_by_hand():
    # ranks x = (1, 2.5, 2.5, 4) (tied 2s share rank 2.5), ranks y = (1, 3, 2, 4)
    # centred: (-1.5, 0, 0, 1.5) and (-1.5, 0.5, -0.5, 1.5)
    # sum xy = 4.5, sum xx = 4.5, sum yy = 5 -> 4.5 / sqrt(22.5) = 3 / sqrt(10)
    assert metrics.spearman([1, 2, 2, 3], [1, 3, 2, 4]) == pytest.approx(3 / math.sqrt(10))


def test_spearman_is_invariant_to_monotone_transform():
    x = np.array([0.3, -1.0, 2.5, 0.7, 9.0])
    assert metrics.spearman(x, np.exp(x)) == pytest.approx(1.0)
    assert metrics.spearman(x, -(x**3)) == pytest.approx(-1.0)


# ---- agreement with sklearn / scipy on random data ---------------------------------


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_classification_metrics_match_sklearn(size, seed):
    sklearn_metrics = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, size)
    predictions = rng.integers(0, 2, size)
    assert metrics.accuracy(labels, predictions) == pytest.approx(sklearn_metrics.accuracy_score(labels, predictions))
    for positive in (0, 1):
        expected = sklearn_metrics.f1_score(labels, predictions, pos_label=positive, zero_division=0.0)
        assert metrics.f1(labels, predictions, positive=positive) == pytest.approx(expected)
    assert metrics.matthews_corrcoef(labels, predictions) == pytest.approx(
        sklearn_metrics.matthews_corrcoef(labels, predictions), abs=1e-12
    )


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("num_classes", [3, 5])
def test_multiclass_mcc_matches_sklearn(size, num_classes):
    sklearn_metrics = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(size * 10 + num_classes)
    labels = rng.integers(0, num_classes, size)
    # Mostly-correct predictions so the correlation is far from 0.
    predictions = np.where(rng.random(size) < 0.7, labels, rng.integers(0, num_classes, size))
    assert metrics.matthews_corrcoef(labels, predictions) == pytest.approx(
        sklearn_metrics.matthews_corrcoef(labels, predictions), abs=1e-12
    )


def test_mcc_with_non_index_labels_matches_sklearn():
    sklearn_metrics = pytest.importorskip("sklearn.metrics")
    labels = [-1, 1, 1, 7, -1, 7, 7]
    predictions = [-1, 1, 7, 7, 1, 7, -1]
    assert metrics.matthews_corrcoef(labels, predictions) == pytest.approx(
        sklearn_metrics.matthews_corrcoef(labels, predictions)
    )


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_correlations_match_scipy(size, seed):
    stats = pytest.importorskip("scipy.stats")
    rng = np.random.default_rng(seed)
    labels = rng.uniform(0.0, 5.0, size)
    predictions = labels + rng.normal(0.0, 1.5, size)
    assert metrics.pearson(labels, predictions) == pytest.approx(stats.pearsonr(labels, predictions)[0], abs=1e-12)
    assert metrics.spearman(labels, predictions) == pytest.approx(stats.spearmanr(labels, predictions)[0], abs=1e-12)


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_spearman_with_many_ties_matches_scipy(size, seed):
    stats = pytest.importorskip("scipy.stats")
    rng = np.random.default_rng(100 + seed)
    # Few distinct values on both sides force large tie groups (STS-B gold scores are on a 0.2 grid).
    labels = rng.integers(0, 4, size) * 0.5
    predictions = labels + rng.integers(-1, 2, size)
    if np.ptp(labels) == 0 or np.ptp(predictions) == 0:
        pytest.skip("constant draw; scipy's result is nan")
    assert metrics.spearman(labels, predictions) == pytest.approx(stats.spearmanr(labels, predictions)[0], abs=1e-12)
    np.testing.assert_allclose(metrics._average_ranks(labels), stats.rankdata(labels, method="average"))


# ---- edge cases ----------------------------------------------------------------------


def test_constant_predictions_give_zero_mcc():
    assert metrics.matthews_corrcoef([0, 1, 1, 0], [1, 1, 1, 1]) == 0.0
    assert metrics.matthews_corrcoef([1, 1, 1], [1, 1, 1]) == 0.0


def test_f1_without_any_positives_is_zero():
    assert metrics.f1([0, 0, 0], [0, 0, 0]) == 0.0
    # Positives only among the labels, none predicted: TP=0 -> 0 / (0 + 0 + 2) = 0.
    assert metrics.f1([1, 0, 1], [0, 0, 0]) == 0.0


def test_constant_input_gives_zero_correlation():
    assert metrics.pearson([1.0, 2.0, 3.0], [4.0, 4.0, 4.0]) == 0.0
    assert metrics.spearman([2.0, 2.0, 2.0], [1.0, 5.0, 3.0]) == 0.0


def test_column_predictions_line_up_with_labels():
    assert metrics.pearson([1, 2, 3, 4], [[2], [4], [5], [9]]) == pytest.approx(11 / math.sqrt(130))


@pytest.mark.parametrize("name", sorted(metrics.METRIC_FUNCTIONS))
def test_every_metric_rejects_length_mismatch_and_empty_input(name):
    metric = metrics.METRIC_FUNCTIONS[name]
    with pytest.raises(ValueError, match="length"):
        metric([0, 1, 1], [0, 1])
    with pytest.raises(ValueError, match="empty"):
        metric([], [])


def test_compute_metrics_errors():
    with pytest.raises(ValueError, match="length"):
        metrics.compute_metrics(["accuracy"], [0, 1, 1], [0, 1])
    with pytest.raises(ValueError, match="empty"):
        metrics.compute_metrics(["accuracy"], [], [])
    with pytest.raises(ValueError, match="unknown metric"):
        metrics.compute_metrics(["accuracy", "bleu"], [0, 1], [0, 1])


def test_compute_metrics_returns_named_python_floats():
    result = metrics.compute_metrics(["f1", "accuracy"], BINARY_LABELS, BINARY_PREDICTIONS)
    assert result == pytest.approx({"f1": 0.5, "accuracy": 0.6})
    assert list(result) == ["f1", "accuracy"]
    assert all(type(value) is float for value in result.values())
    correlations = metrics.compute_metrics(["pearson", "spearman"], [1, 2, 3, 4], [2.0, 4.0, 5.0, 9.0])
    assert correlations == pytest.approx({"pearson": 11 / math.sqrt(130), "spearman": 1.0})


# ---- task score, GLUE average, table --------------------------------------------------


def test_task_score_is_unweighted_mean_of_metrics():
    assert metrics.task_score({"f1": 0.9, "accuracy": 0.8}) == pytest.approx(0.85)
    assert metrics.task_score({"pearson": 0.88, "spearman": 0.86}) == pytest.approx(0.87)
    assert metrics.task_score({"mcc": -0.2}) == pytest.approx(-0.2)
    with pytest.raises(ValueError):
        metrics.task_score({})


HAND_RESULTS = {
    "CoLA": {"mcc": 0.5},
    "MRPC": {"f1": 0.9, "accuracy": 0.8},
    "MNLI": {"accuracy": 0.8},
    "MNLI-mm": {"accuracy": 0.7},
    "AX": {"mcc": 0.1},
}


def test_glue_average_merges_mnli_and_excludes_ax_by_hand():
    # CoLA 0.5, MRPC (0.9 + 0.8)/2 = 0.85, MNLI (0.8 + 0.7)/2 = 0.75, AX dropped
    # -> (0.5 + 0.85 + 0.75) / 3 = 0.7
    # (Counting MNLI-mm as its own task would give 0.7125; including AX would give 0.55.)
    assert metrics.glue_average(HAND_RESULTS) == pytest.approx(0.7)


def test_glue_average_keeps_a_lone_mnli_half():
    # (0.5 + 0.7) / 2 = 0.6
    assert metrics.glue_average({"CoLA": {"mcc": 0.5}, "MNLI-mm": {"accuracy": 0.7}}) == pytest.approx(0.6)


def test_glue_average_reproduces_glue_paper_table_4():
    # The best-baseline row of Table 4 in Wang et al. (GLUE, ICLR 2019), published Avg 70.0.
    # Nine task scores: 33.6, 90.4, (78.0+84.4)/2, (84.3+63.1)/2, (74.2+72.3)/2, (74.1+74.5)/2, 79.8, 58.9, 65.1
    # -> 630.25 / 9 = 70.03 (MNLI-m/mm as two tasks would give 70.45). Inputs are rounded, hence abs=0.1 pt.
    published_row = {
        "CoLA": {"mcc": 0.336},
        "SST-2": {"accuracy": 0.904},
        "MRPC": {"accuracy": 0.780, "f1": 0.844},
        "QQP": {"accuracy": 0.843, "f1": 0.631},
        "STS-B": {"pearson": 0.742, "spearman": 0.723},
        "MNLI": {"accuracy": 0.741},
        "MNLI-mm": {"accuracy": 0.745},
        "QNLI": {"accuracy": 0.798},
        "RTE": {"accuracy": 0.589},
        "WNLI": {"accuracy": 0.651},
    }
    assert metrics.glue_average(published_row) == pytest.approx(0.700, abs=0.001)


def test_glue_average_errors():
    with pytest.raises(ValueError, match="no GLUE task"):
        metrics.glue_average({"AX": {"mcc": 0.3}})
    with pytest.raises(ValueError, match="no GLUE task"):
        metrics.glue_average({})
    with pytest.raises(ValueError, match="unknown GLUE task"):
        metrics.glue_average({"MNLI-m": {"accuracy": 0.8}})


def test_results_table_lists_each_task_and_the_average():
    table = metrics.format_results_table(HAND_RESULTS, title="dev results")
    lines = table.splitlines()
    assert lines[0] == "dev results"
    for task in HAND_RESULTS:
        assert any(line.startswith(task + " ") for line in lines), task
    average_line = next(line for line in lines if line.startswith("GLUE avg"))
    assert average_line.endswith("70.0")
    assert "f1 90.0 / acc 80.0" in table
    assert any(line.startswith("MRPC") and line.endswith("85.0") for line in lines)
    # Score column is right-aligned: every task row and the average row end at the same column.
    rows = [line for line in lines[2:] if not line.startswith(("-", "note:"))]
    assert len(rows) == len(HAND_RESULTS) + 1
    assert len({len(line) for line in rows}) == 1
    assert "note: AX is diagnostic" in table


def test_results_table_notes_a_missing_average():
    table = metrics.format_results_table({"AX": {"mcc": 0.25}})
    assert "AX" in table and "25.0" in table
    assert "GLUE avg omitted" in table
