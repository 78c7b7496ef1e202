"""GLUE evaluation metrics and the GLUE overall score, in plain numpy.

All values are fractions (accuracy/F1 in [0, 1], correlations in [-1, 1]);
only `format_results_table` scales them to percentages.
"""

from __future__ import annotations

import types
from collections.abc import Callable, Iterable, Mapping, Sequence

import numpy as np

from bam_tf.glue_tasks import TASKS

GLUE_TASKS = tuple(TASKS)  # in the GLUE table's order
DIAGNOSTIC_TASK = "AX"


def _paired_arrays(labels, predictions) -> tuple[np.ndarray, np.ndarray]:
    # ravel so that (n, 1) regression outputs line up with (n,) labels; a (n, k)
    # logits array still fails the length check instead of being silently misread.
    labels = np.ravel(np.asarray(labels))
    predictions = np.ravel(np.asarray(predictions))
    if labels.size != predictions.size:
        raise ValueError(f"labels and predictions differ in length: {labels.size} vs {predictions.size}")
    if labels.size == 0:
        raise ValueError("cannot compute a metric on empty input")
    return labels, predictions


def accuracy(labels, predictions) -> float:
    """Fraction of predictions equal to their label."""
    labels, predictions = _paired_arrays(labels, predictions)
    return float(np.mean(labels == predictions))


def f1(labels, predictions, positive: int = 1) -> float:
    """Binary F1 of class `positive`: 2TP / (2TP + FP + FN).

    Convention: 0.0 when there are no true and no predicted positives (the
    ratio is 0/0), matching sklearn's `f1_score(..., zero_division=0)`.
    """
    labels, predictions = _paired_arrays(labels, predictions)
    is_true = labels == positive
    is_predicted = predictions == positive
    true_positives = np.count_nonzero(is_true & is_predicted)
    denominator = np.count_nonzero(is_true) + np.count_nonzero(is_predicted)  # = 2TP + FP + FN
    return float(2.0 * true_positives / denominator) if denominator else 0.0


def matthews_corrcoef(labels, predictions) -> float:
    """Matthews correlation, in Gorodkin's (2004) K-class form (the binary MCC for K=2).

    0.0 when undefined, e.g. constant predictions or constant labels, as sklearn.
    """
    labels, predictions = _paired_arrays(labels, predictions)
    _, codes = np.unique(np.concatenate([labels, predictions]), return_inverse=True)
    num_classes = int(codes.max()) + 1
    confusion = np.zeros((num_classes, num_classes), dtype=np.float64)
    np.add.at(confusion, (codes[: labels.size], codes[labels.size :]), 1.0)

    true_counts = confusion.sum(axis=1)
    predicted_counts = confusion.sum(axis=0)
    correct = np.trace(confusion)
    total = float(labels.size)
    covariance = correct * total - true_counts @ predicted_counts
    variance_product = (total**2 - predicted_counts @ predicted_counts) * (total**2 - true_counts @ true_counts)
    return float(covariance / np.sqrt(variance_product)) if variance_product > 0 else 0.0


def pearson(labels, predictions) -> float:
    """Pearson correlation; 0.0 when either side is constant (scipy would return nan)."""
    labels, predictions = _paired_arrays(labels, predictions)
    # A constant STS-B predictor (common early in training) must not turn the
    # GLUE average into nan, so undefined correlation scores 0 like MCC does.
    x = labels.astype(np.float64) - np.mean(labels, dtype=np.float64)
    y = predictions.astype(np.float64) - np.mean(predictions, dtype=np.float64)
    denominator = np.sqrt((x @ x) * (y @ y))
    if denominator == 0:
        return 0.0
    return float(np.clip((x @ y) / denominator, -1.0, 1.0))


def _average_ranks(values: np.ndarray) -> np.ndarray:
    """1-based ranks with ties sharing their mean rank (scipy.stats.rankdata 'average')."""
    order = np.argsort(values, kind="stable")
    sorted_values = values[order]
    starts_tie_group = np.concatenate([[True], sorted_values[1:] != sorted_values[:-1]])
    group_starts = np.flatnonzero(starts_tie_group)
    group_ends = np.append(group_starts[1:], values.size)  # exclusive
    mean_rank_of_group = (group_starts + group_ends + 1) / 2.0  # mean of start+1 .. end
    ranks = np.empty(values.size, dtype=np.float64)
    ranks[order] = mean_rank_of_group[np.cumsum(starts_tie_group) - 1]
    return ranks


def spearman(labels, predictions) -> float:
    """Spearman correlation: Pearson of average ranks, as scipy.stats.spearmanr."""
    labels, predictions = _paired_arrays(labels, predictions)
    return pearson(_average_ranks(labels), _average_ranks(predictions))


METRIC_FUNCTIONS: Mapping[str, Callable[..., float]] = types.MappingProxyType(
    {
        "accuracy": accuracy,
        "f1": f1,
        "mcc": matthews_corrcoef,
        "pearson": pearson,
        "spearman": spearman,
    }
)


def compute_metrics(metric_names: Sequence[str], labels, predictions) -> dict[str, float]:
    """Evaluate each named metric of `METRIC_FUNCTIONS` on the same labels and predictions.

    `predictions` are class indices for accuracy/f1/mcc and float scores for
    pearson/spearman. Raises ValueError on an unknown name, a length mismatch or empty input.
    """
    unknown = [name for name in metric_names if name not in METRIC_FUNCTIONS]
    if unknown:
        raise ValueError(f"unknown metric(s) {unknown}; known: {sorted(METRIC_FUNCTIONS)}")
    labels, predictions = _paired_arrays(labels, predictions)
    return {name: float(METRIC_FUNCTIONS[name](labels, predictions)) for name in metric_names}


def task_score(metrics: Mapping[str, float]) -> float:
    """A task's GLUE score: the unweighted mean of its metrics (MRPC: (f1 + acc) / 2)."""
    if not metrics:
        raise ValueError("a task needs at least one metric to be scored")
    return float(np.mean([float(value) for value in metrics.values()]))


def glue_average(results: Mapping[str, Mapping[str, float]], user_tasks: Iterable[str] = ()) -> float:
    """GLUE overall score: macro-average of task scores over the tasks present in `results`.

    Convention (Wang et al., GLUE, ICLR 2019, Sec. 3.4 and Table 4; the
    gluebenchmark.com leaderboard "Score"): every task weighs the same; a
    task with several metrics scores their unweighted mean; MNLI counts as
    ONE task whose score is the mean of matched ("MNLI") and mismatched
    ("MNLI-mm") accuracy, so a full run averages 9 task scores; the AX
    diagnostic is not part of the score. Missing tasks are left out of the
    mean, so a partial run is not comparable to a published GLUE score.

    `user_tasks` names the run's own tasks (--task_defs); each counts as one task, like a GLUE task:
    with them the value is the average over every task given, not a GLUE score (format_results_table
    labels the row "Average" then).

    Raises ValueError on a task name that is neither in `GLUE_TASKS` nor in `user_tasks` (a typo such
    as "MNLI-m" would otherwise count MNLI twice) or when no task is left.
    """
    user_tasks = list(user_tasks)
    unknown = [task for task in results if task not in GLUE_TASKS and task not in user_tasks]
    if unknown:
        raise ValueError(f"unknown GLUE task(s) {unknown}; known: {list(GLUE_TASKS)}"
                         + (f" and the user tasks {user_tasks}" if user_tasks else ""))
    scores = {task: task_score(metrics) for task, metrics in results.items() if task != DIAGNOSTIC_TASK}
    if "MNLI" in scores and "MNLI-mm" in scores:
        scores["MNLI"] = (scores["MNLI"] + scores.pop("MNLI-mm")) / 2.0
    if not scores:
        raise ValueError("no GLUE task to average (AX alone does not count)")
    return float(np.mean(list(scores.values())))


_SHORT_METRIC_NAMES = {"accuracy": "acc"}


def format_results_table(results: Mapping[str, Mapping[str, float]], title: str | None = None,
                         user_tasks: Iterable[str] = ()) -> str:
    """Plain-text table: one row per task (in the given order) and a final GLUE average row.

    Metrics and scores are shown as percentages with one decimal. With user tasks (--task_defs) among
    the rows (`user_tasks` names them) the last row is "Average" (over every task, see glue_average) and a
    note says so.
    """

    def percent(value: float) -> str:
        return f"{100.0 * value:.1f}"

    rows = []
    for task, metrics in results.items():
        metric_cell = " / ".join(
            f"{_SHORT_METRIC_NAMES.get(name, name)} {percent(value)}" for name, value in metrics.items()
        )
        score_cell = percent(task_score(metrics)) if metrics else "-"
        rows.append((task, metric_cell or "-", score_cell))

    notes = []
    average_row = None
    try:
        user = [task for task in results if task in set(user_tasks)]
        average_row = ("Average" if user else "GLUE avg", "", percent(glue_average(results, user)))
        if user:
            notes.append(f"note: Average is over every task, including the user task(s) {', '.join(user)}; "
                         "it is not a GLUE score.")
        if "MNLI" in results and "MNLI-mm" in results:
            notes.append(f"note: {average_row[0]} counts MNLI once, as the mean of MNLI and MNLI-mm.")
        if DIAGNOSTIC_TASK in results:
            notes.append(f"note: AX is diagnostic and not part of {average_row[0]}.")
    except ValueError as error:
        notes.append(f"note: GLUE avg omitted: {error}")

    header = ("Task", "Metrics (%)", "Score")
    all_rows = [header, *rows] + ([average_row] if average_row else [])
    task_width, metric_width, score_width = (max(len(row[column]) for row in all_rows) for column in range(3))

    def line(task: str, metric_cell: str, score_cell: str) -> str:
        return f"{task:<{task_width}}  {metric_cell:<{metric_width}}  {score_cell:>{score_width}}".rstrip()

    separator = line("-" * task_width, "-" * metric_width, "-" * score_width)
    body = [line(*row) for row in rows]
    if average_row:
        body += [separator, line(*average_row)]
    lines = ([title] if title else []) + [line(*header), separator, *body, *notes]
    return "\n".join(lines)
