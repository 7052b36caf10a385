"""Missing values: how a NaN feature value enters the drift tests.

A null logged by a user (NaN in the stream's float32 features) is never
turned into a number. Per feature, the window and the reference each have
``missing`` values and ``present`` ones, and two questions are asked:

1. Did the distribution of the present values change? KS (numeric) or
   chi-squared (categorical) runs on the present values only, exactly as
   ``scipy.stats.ks_2samp(..., nan_policy="omit")`` /
   ``chi2_contingency`` on the non-missing values would. Each feature then
   has its own sample sizes ``n_f`` and ``m_f``. A feature with fewer than
   ``min_window_size`` present values in the window (all-NaN included), or
   none in the reference, is not tested: its report says
   ``insufficient_data`` and it is never "no drift".
2. Did the missing rate change? Fisher's exact test (two-sided, the
   p-value of :func:`scipy.stats.fisher_exact`) of the 2x2 table
   reference/window x missing/present. Exact rather than chi-squared: a
   feature that starts arriving null is the case that matters, and then the
   reference's missing count is 0 and the expected counts are far below
   what Pearson's approximation needs at a per-test level of ``alpha / F``
   (5 nulls in a window of 1,000 against none in 10,000 reference rows:
   expected 0.45, Fisher's p = 5.6e-6). Its effect size is the absolute
   difference of the missing shares.

Both kinds of test are in one family for the correction. The missing-rate
test of a feature joins it only when its table is informative (some value
is missing and some is present, over both samples): so a window and a
reference without any NaN have the same family, decisions and speed as
before. Choosing the tests by the table's margins keeps the correction
valid: Fisher's test is conditional on those margins, so each test that
joins is exact given that it joined. Bonferroni divides ``alpha`` by
``F + F_missing``; Benjamini-Hochberg ranks the ``F + F_missing`` p-values
together, a feature whose distribution was not tested counting as p = 1.
A feature drifts when either of its tests is significant (and, with
``min_effect_size``, its effect size reaches it).

The multivariate cross-moment test uses the rows with every numeric
feature present (complete cases), in the reference and in the window;
dropping incomplete rows is unbiased when values are missing at random, and
a change in missingness itself is caught by test 2. A window with fewer
complete rows than ``CALIBRATION_ROWS`` (256) and than its size gets no
multivariate test: each such size would need its own null simulation.

Cost: each feature with a null has its own sample sizes, so no KS
critical value is shared and the p-values decide. Under the default
``p_values="near-level"`` scipy's exact p-value is computed only within a
factor 10 of the per-test level (Kolmogorov's limit elsewhere, where it
cannot flip a decision); ``"all"`` and BH compute every one exactly. At 64
features, 10k reference x 1k window rows, a window with 5% nulls in every
feature took ~9 ms, in 4 features ~8 ms, without nulls ~5.5 ms (one loaded
run; ``benchmarks/drift.py`` prints "nulls in k" rows).

Examples
--------
>>> from scipy.stats import fisher_exact
>>> p = fisher_exact_two_sided([0, 30], [10_000, 9_000], [5, 2], [995, 98])
>>> bool(abs(p[0] - fisher_exact([[0, 10_000], [5, 995]]).pvalue) < 1e-12)
True
>>> bool(abs(p[1] - fisher_exact([[30, 9_000], [2, 98]]).pvalue) < 1e-12)
True
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.stats import hypergeom

__all__ = ["MissingRateTests", "fisher_exact_two_sided", "missing_rate_tests"]

_LOG_TOLERANCE = 1e-7
"""Two table probabilities within this relative difference count as equal (R's ``fisher.test``)."""


def _bisect_last_at_most(
    lo: NDArray[np.int64], hi: NDArray[np.int64], target: NDArray[np.float64],
    fn: Callable[[NDArray[np.int64]], NDArray[np.float64]],
) -> NDArray[np.int64]:
    """Per table, the largest ``x`` in ``[lo, hi]`` with ``fn(x) <= target`` (``lo - 1`` if none),
    ``fn`` non-decreasing on the range: scipy's ``_binary_search``, for all tables at once."""
    left, right = lo - 1, hi + 1  # fn(left) <= target < fn(right), by convention at the ends
    while (right - left > 1).any():
        active = right - left > 1
        mid = np.where(active, (left + right) // 2, left)
        ok = fn(mid) <= target
        left = np.where(active & ok, mid, left)
        right = np.where(active & ~ok, mid, right)
    return left


def fisher_exact_two_sided(
    ref_missing: ArrayLike, ref_present: ArrayLike, win_missing: ArrayLike, win_present: ArrayLike
) -> NDArray[np.float64]:
    """Two-sided p-values of Fisher's exact test for many 2x2 tables at once.

    Table ``[[ref_missing, ref_present], [win_missing, win_present]]`` per
    entry; the p-value is :func:`scipy.stats.fisher_exact`'s: the
    probability, under the hypergeometric law of the top-left cell, of the
    tables no more likely than the observed one, as the observed side's
    tail (``cdf``/``sf``) plus the other side's, whose boundary scipy finds by
    a binary search. Here the search runs for every table at once, on the
    log-probabilities (``hypergeom.pmf`` costs ~40 us a value, ``logpmf``
    0.4 us), and treats two probabilities as equal within a relative
    ``1e-7`` (R's ``fisher.test`` tolerance; scipy's is 1e-14, finer than
    ``logpmf``'s rounding, which would split mirror-image tables). A table
    with an empty row or column gets 1.0, as in scipy.
    """
    a = np.asarray(ref_missing, dtype=np.int64).ravel()
    b = np.asarray(ref_present, dtype=np.int64).ravel()
    c = np.asarray(win_missing, dtype=np.int64).ravel()
    d = np.asarray(win_present, dtype=np.int64).ravel()
    if not (a.shape == b.shape == c.shape == d.shape):
        raise ValueError("the four count arrays must have one length")
    if (a < 0).any() or (b < 0).any() or (c < 0).any() or (d < 0).any():
        raise ValueError("counts must be non-negative")
    p = np.ones(a.size)
    todo = np.flatnonzero((a + b > 0) & (c + d > 0) & (a + c > 0) & (b + d > 0))
    if not todo.size:
        return p
    a, b, c, d = a[todo], b[todo], c[todo], d[todo]
    total, n1, n = a + b + c + d, a + b, a + c

    def logpmf(x: NDArray[np.int64]) -> NDArray[np.float64]:
        return np.asarray(hypergeom.logpmf(x, total, n1, n), dtype=np.float64)

    mode = ((n + 1) * (n1 + 1) // (total + 2)).astype(np.int64)
    target = logpmf(a) + _LOG_TOLERANCE  # "no more likely than observed", in logs
    out = np.ones(a.size)
    low = (a < mode) & (logpmf(mode) > target)
    high = (a > mode) & (logpmf(mode) > target)
    if low.any():
        # -logpmf is non-decreasing on [mode, n]: the last x there as likely as observed or less.
        guess = _bisect_last_at_most(np.where(low, mode, 0), np.where(low, n, 0), -target, lambda x: -logpmf(x))
        tails = hypergeom.cdf(a[low], total[low], n1[low], n[low]) + hypergeom.sf(
            guess[low], total[low], n1[low], n[low]
        )
        out[low] = tails
    if high.any():
        guess = _bisect_last_at_most(np.zeros_like(a), np.where(high, mode, 0), target, logpmf)
        tails = hypergeom.sf(a[high] - 1, total[high], n1[high], n[high]) + hypergeom.cdf(
            guess[high], total[high], n1[high], n[high]
        )
        out[high] = tails
    p[todo] = np.minimum(out, 1.0)
    return p


@dataclass(frozen=True, slots=True)
class MissingRateTests:
    """Per feature: which missing-rate tests apply (an informative table), their
    p-values (NaN where they do not apply) and effect sizes (absolute change of
    the missing share)."""

    applies: NDArray[np.bool_]
    p_value: NDArray[np.float64]
    effect: NDArray[np.float64]


def missing_rate_tests(
    ref_missing: ArrayLike, n_ref: int, win_missing: ArrayLike, m_win: int
) -> MissingRateTests:
    """Fisher's test of each feature's missing rate, reference against window.

    >>> t = missing_rate_tests([0, 0, 100], 1000, [0, 50, 10], 100)
    >>> t.applies.tolist(), round(float(t.effect[1]), 2), bool(t.p_value[1] < 1e-30)
    ([False, True, True], 0.5, True)
    """
    rm = np.asarray(ref_missing, dtype=np.int64).ravel()
    wm = np.asarray(win_missing, dtype=np.int64).ravel()
    total_missing = rm + wm
    applies = (total_missing > 0) & (total_missing < n_ref + m_win)
    p = np.full(rm.size, np.nan)
    if applies.any():
        p[applies] = fisher_exact_two_sided(rm[applies], n_ref - rm[applies], wm[applies], m_win - wm[applies])
    effect = np.where(applies, np.abs(wm / max(m_win, 1) - rm / max(n_ref, 1)), np.nan)
    return MissingRateTests(applies=applies, p_value=p, effect=effect)
