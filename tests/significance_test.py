"""bam_tf.significance: Mann-Whitney U and Holm-Bonferroni against hand-counted examples and scipy."""

import itertools

import numpy as np
import pytest
from scipy import stats

from bam_tf import significance


def test_u_and_exact_p_when_every_x_beats_every_y():
    # x = [4, 5, 6] vs y = [1, 2, 3]: all 3·3 = 9 pairs have x > y, so U = 9 (the maximum n1·n2).
    # Under H0 each of the C(6, 3) = 20 ways to pick which 3 of the 6 ranks belong to x is equally likely;
    # only {4, 5, 6} gives U ≥ 9, so the one-sided p = P(U ≥ 9) = 1/20 = 0.05.
    result = significance.mann_whitney_u([4, 5, 6], [1, 2, 3], alternative="greater")
    assert result.u == 9
    assert result.p_value == pytest.approx(1 / 20)
    assert result.method == "exact"
    # The other direction: U = 0, and P(U ≥ 0) = 1.
    reverse = significance.mann_whitney_u([1, 2, 3], [4, 5, 6], alternative="greater")
    assert reverse.u == 0 and reverse.p_value == pytest.approx(1.0)


def test_exact_p_of_one_swap():
    # x = [3, 5, 6] vs y = [1, 2, 4]: pairs with x > y: 3 beats 1, 2 (2); 5 and 6 beat all three (6) → U = 8.
    # Rank sets of x (out of C(6, 3) = 20) with U ≥ 8: U = 9 only for {4,5,6}; U = 8 only for {3,5,6}
    # (U = rank sum − 6, so U ≥ 8 ⇔ rank sum ≥ 14: {4,5,6}=15, {3,5,6}=14). p = 2/20 = 0.1.
    result = significance.mann_whitney_u([3, 5, 6], [1, 2, 4])
    assert result.u == 8
    assert result.p_value == pytest.approx(2 / 20)


def test_ties_count_half_and_use_the_exact_permutation_distribution():
    # x = [3, 4, 5] vs y = [1, 2, 3]: 3 ties with 3 (½) and beats 1, 2 → 2.5; 4 and 5 beat all → 6; U = 8.5.
    # Pooled values 1, 2, 3, 3, 4, 5 (mid-ranks 1, 2, 3.5, 3.5, 5, 6); of the 20 splits, U ≥ 8.5 for
    # {3a, 4, 5}, {3b, 4, 5} (U = 8.5) and none higher, since 6 is not a value: p = 2/20 = 0.1.
    result = significance.mann_whitney_u([3, 4, 5], [1, 2, 3])
    assert result.u == 8.5
    assert result.p_value == pytest.approx(0.1)
    assert result.method == "exact permutation (ties)"


def _brute_force_p(x, y):
    """P(U ≥ observed) over every split of the pooled mid-ranks."""
    pooled = np.concatenate([x, y])
    ranks = stats.rankdata(pooled)
    n = len(x)
    observed = ranks[:n].sum() - n * (n + 1) / 2
    splits = list(itertools.combinations(range(len(pooled)), n))
    count = sum(ranks[list(split)].sum() - n * (n + 1) / 2 >= observed - 1e-9 for split in splits)
    return observed, count / len(splits)


@pytest.mark.parametrize("seed", range(6))
def test_matches_brute_force_enumeration_and_scipy(seed):
    rng = np.random.default_rng(seed)
    n1, n2 = rng.integers(2, 6, size=2)
    values = np.round(rng.normal(size=n1 + n2), 1 if seed % 2 else 6)  # odd seeds: ties likely
    x, y = values[:n1], values[n1:]
    result = significance.mann_whitney_u(x, y)
    u, p = _brute_force_p(x, y)
    assert result.u == pytest.approx(u)
    assert result.p_value == pytest.approx(p)
    if len(np.unique(values)) == len(values):
        assert result.p_value == pytest.approx(stats.mannwhitneyu(x, y, alternative="greater", method="exact").pvalue)


def test_rejects_empty_or_nonfinite_samples():
    with pytest.raises(ValueError):
        significance.mann_whitney_u([], [1.0])
    with pytest.raises(ValueError):
        significance.mann_whitney_u([float("nan")], [1.0])


def test_holm_by_hand():
    # p = [0.01, 0.04, 0.03], m = 3. Sorted: 0.01 (k=1) × 3 = 0.03; 0.03 (k=2) × 2 = 0.06;
    # 0.04 (k=3) × 1 = 0.04, raised to 0.06 by the running maximum. Back in input order:
    # [0.03, 0.06, 0.06].
    assert significance.holm_bonferroni([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    assert significance.holm_reject([0.01, 0.04, 0.03], alpha=0.05) == [True, False, False]


def test_holm_caps_at_one_and_handles_edge_cases():
    # 0.4 × 3 = 1.2 → 1; 0.5 × 2 = 1.0; 0.9 × 1 → max(0.9, 1.0) = 1.
    assert significance.holm_bonferroni([0.5, 0.4, 0.9]) == pytest.approx([1.0, 1.0, 1.0])
    assert significance.holm_bonferroni([0.02]) == pytest.approx([0.02])
    assert significance.holm_bonferroni([]) == []
    # Equal p-values: 0.01 × 2 = 0.02 for the first, 0.01 × 1 → 0.02 for the second.
    assert significance.holm_bonferroni([0.01, 0.01]) == pytest.approx([0.02, 0.02])
    with pytest.raises(ValueError):
        significance.holm_bonferroni([0.1, float("nan")])
    with pytest.raises(ValueError):
        significance.holm_bonferroni([1.5])


def test_holm_against_the_step_down_definition():
    rng = np.random.default_rng(0)
    for _ in range(20):
        p = rng.uniform(0, 0.2, size=rng.integers(1, 8))
        alpha = 0.05
        # Step-down: reject the k-th smallest while p_(k) ≤ α / (m − k + 1); stop at the first failure.
        order = np.argsort(p)
        reject = np.zeros(len(p), bool)
        for k, index in enumerate(order):
            if p[index] > alpha / (len(p) - k):
                break
            reject[index] = True
        assert significance.holm_reject(p, alpha) == reject.tolist()


def test_min_attainable_p():
    assert significance.min_attainable_p(3, 3) == pytest.approx(1 / 20)  # 1 / C(6, 3)
    assert significance.min_attainable_p(2, 2) == pytest.approx(1 / 6)
    assert significance.min_attainable_p(5, 5) == pytest.approx(1 / 252)
    assert significance.min_attainable_p(1, 1) == pytest.approx(0.5)
    # It is the p of the most extreme data: every x above every y.
    for n1, n2 in [(2, 3), (3, 3), (4, 2)]:
        x, y = np.arange(n2, n2 + n1) + 0.5, np.arange(n2)
        assert significance.mann_whitney_u(x, y).p_value == pytest.approx(significance.min_attainable_p(n1, n2))
    with pytest.raises(ValueError):
        significance.min_attainable_p(0, 3)


def test_three_seeds_cannot_be_significant_over_five_tasks():
    # 3 vs 3 seeds: the best possible p is 0.05; Holm multiplies the smallest by 5 → 0.25 > 0.05.
    assert significance.min_adjusted_p(3, 3, 5) == pytest.approx(0.25)
    assert not significance.can_reach_significance(3, 3, 5)
    # Even a single test at 3 vs 3 only just reaches 0.05.
    assert significance.can_reach_significance(3, 3, 1)
    # 5 tasks need 5 seeds each: 5 / C(10, 5) = 5/252 ≈ 0.0198 ≤ 0.05, while 5 / C(8, 4) = 5/70 > 0.05.
    assert significance.seeds_needed(5) == 5
    assert significance.seeds_needed(1) == 3


def test_one_value_per_sample_with_a_tie_is_tested_exactly():
    """One seed per method so far: 2 splits of [0.6, 0.6]; U = 0.5 either way, so p = 1 (and no error)."""
    result = significance.mann_whitney_u([0.6], [0.6], alternative="greater")
    assert result.u == 0.5 and result.p_value == 1.0 and result.method == "exact permutation (ties)"
    # [0.7] vs [0.6, 0.6]: U = 2 (beats both); splits put 0.7 in x once out of 3 → p = 1/3
    result = significance.mann_whitney_u([0.7], [0.6, 0.6], alternative="greater")
    assert result.u == 2.0 and result.p_value == pytest.approx(1 / 3)
