"""Significance tests for comparing methods over seeds: one-sided Mann-Whitney U, Holm-Bonferroni.

Each method gives one dev score per seed and task. "Method A beats method B on task T" is tested with a
one-sided Mann-Whitney U test on the two groups of per-seed scores (alternative: A's scores tend to be
greater), and the per-task p-values of one comparison are corrected for multiplicity with Holm's
step-down method (Holm 1979), which controls the family-wise error rate.

With few seeds the exact test cannot reach small p-values at all: with n1 and n2 scores and no ties the
smallest one-sided p is 1 / C(n1 + n2, n1) (only one of the C(n1 + n2, n1) equally likely splits of the
ranks puts all of A above all of B), e.g. 1/20 = 0.05 for 3 vs 3 seeds. `min_attainable_p` and
`min_adjusted_p` make that explicit so a report can say when nothing could have been significant.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from collections.abc import Sequence

import numpy as np

# Above this many equally likely rank splits, the tie-aware exact permutation test is not enumerated.
_MAX_EXACT_SPLITS = 200_000


@dataclasses.dataclass(frozen=True)
class MannWhitneyResult:
    u: float  # U of the first sample: #{(x, y): x > y} + ½ #{(x, y): x = y}
    p_value: float  # one-sided (or two-sided) p of the chosen alternative
    method: str  # "exact", "exact permutation (ties)" or "asymptotic"
    n1: int
    n2: int


def mann_whitney_u(x: Sequence[float], y: Sequence[float], alternative: str = "greater") -> MannWhitneyResult:
    """Mann-Whitney U test of `x` against `y`; alternative "greater" means x tends to be larger.

    Exact whenever feasible: scipy's exact null distribution without ties; with ties, the exact permutation
    distribution of U over every split of the pooled values (tie-aware, unlike scipy's "exact"); the normal
    approximation (tie- and continuity-corrected) only for large samples with ties.
    """
    from scipy import stats  # scipy is slow to import; only the report needs it

    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if x.ndim != 1 or y.ndim != 1 or not len(x) or not len(y):
        raise ValueError(f"need two non-empty 1-D samples, got shapes {x.shape} and {y.shape}")
    if not (np.isfinite(x).all() and np.isfinite(y).all()):
        raise ValueError("samples must be finite")
    if alternative not in ("greater", "less", "two-sided"):
        raise ValueError(f"unknown alternative {alternative!r}")
    pooled = np.concatenate([x, y])
    has_ties = len(np.unique(pooled)) < len(pooled)
    if has_ties and math.comb(len(pooled), len(x)) <= _MAX_EXACT_SPLITS:
        # Enumerated here rather than by scipy's PermutationMethod, which refuses samples of one value
        # (a grid with one seed per method so far).
        statistic, p_value = _exact_permutation_u(x, y, alternative)
        return MannWhitneyResult(statistic, p_value, "exact permutation (ties)", len(x), len(y))
    method, scipy_method = ("exact", "exact") if not has_ties else ("asymptotic", "asymptotic")
    result = stats.mannwhitneyu(x, y, alternative=alternative, method=scipy_method)
    return MannWhitneyResult(float(result.statistic), float(min(1.0, result.pvalue)), method, len(x), len(y))


def _u_statistic(x: np.ndarray, y: np.ndarray) -> float:
    """Pairs (x_i, y_j) with x_i > y_j, ties counting ½."""
    return float((x[:, None] > y[None, :]).sum() + 0.5 * (x[:, None] == y[None, :]).sum())


def _exact_permutation_u(x: np.ndarray, y: np.ndarray, alternative: str) -> tuple[float, float]:
    """U and its p-value over every split of the pooled values into groups of len(x) and len(y)."""
    pooled = np.concatenate([x, y])
    observed = _u_statistic(x, y)
    null = []
    for chosen in itertools.combinations(range(len(pooled)), len(x)):
        mask = np.zeros(len(pooled), bool)
        mask[list(chosen)] = True
        null.append(_u_statistic(pooled[mask], pooled[~mask]))
    null = np.asarray(null)
    tolerance = 1e-9  # U takes half-integer values; compare them safely
    greater = float(np.mean(null >= observed - tolerance))
    less = float(np.mean(null <= observed + tolerance))
    p_value = {"greater": greater, "less": less, "two-sided": min(1.0, 2 * min(greater, less))}[alternative]
    return observed, p_value


def holm_bonferroni(p_values: Sequence[float]) -> list[float]:
    """Holm-adjusted p-values, in the input order.

    Sort ascending; the k-th smallest (k = 1..m) is multiplied by (m − k + 1); a running maximum keeps the
    adjusted values in the same order as the raw ones; everything is capped at 1. Rejecting the hypotheses
    whose adjusted p is ≤ α is Holm's step-down procedure at family-wise level α.
    """
    p = np.asarray(p_values, dtype=np.float64)
    if p.ndim != 1:
        raise ValueError("p_values must be a flat sequence")
    if not np.all((p >= 0) & (p <= 1)):  # also rejects NaN
        raise ValueError(f"p-values must lie in [0, 1], got {p.tolist()}")
    m = len(p)
    order = np.argsort(p, kind="stable")
    scaled = p[order] * (m - np.arange(m))  # k-th smallest (0-based i) times m − i
    adjusted_sorted = np.minimum(np.maximum.accumulate(scaled), 1.0)
    adjusted = np.empty(m)
    adjusted[order] = adjusted_sorted
    return adjusted.tolist()


def holm_reject(p_values: Sequence[float], alpha: float = 0.05) -> list[bool]:
    return [adjusted <= alpha for adjusted in holm_bonferroni(p_values)]


def min_attainable_p(n1: int, n2: int) -> float:
    """Smallest one-sided exact Mann-Whitney p with samples of n1 and n2: 1 / C(n1 + n2, n1).

    Under the null every assignment of the n1 + n2 ranks to the groups is equally likely; "all of the first
    sample above all of the second" is one of C(n1 + n2, n1) of them (ties only make p larger).
    """
    if n1 < 1 or n2 < 1:
        raise ValueError(f"both samples need at least one value, got n1={n1}, n2={n2}")
    return 1.0 / math.comb(n1 + n2, n1)


def min_adjusted_p(n1: int, n2: int, num_tests: int) -> float:
    """Smallest Holm-adjusted p any of `num_tests` such tests can reach: min(1, m / C(n1 + n2, n1))."""
    return min(1.0, num_tests * min_attainable_p(n1, n2))


def can_reach_significance(n1: int, n2: int, num_tests: int, alpha: float = 0.05) -> bool:
    return min_adjusted_p(n1, n2, num_tests) <= alpha


def seeds_needed(num_tests: int, alpha: float = 0.05, max_seeds: int = 100) -> int:
    """Fewest seeds n per method (n vs n) for which Holm over `num_tests` tests can reach `alpha`."""
    for n in range(1, max_seeds + 1):
        if can_reach_significance(n, n, num_tests, alpha):
            return n
    raise ValueError(f"more than {max_seeds} seeds needed")
