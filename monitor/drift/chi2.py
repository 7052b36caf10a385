"""Chi-squared homogeneity test for categorical features and predicted classes.

Why a homogeneity (2 x K contingency) test and not goodness-of-fit against
the reference proportions: the reference is a sample too. Treating its
proportions as exact inflates the false-alarm rate when the reference is
small; the contingency test accounts for both samples' noise (it is
``scipy.stats.chi2_contingency(..., correction=False)``).

Categories never seen: a category with zero count in both samples carries
no information and would make an expected count zero, so it is dropped
(merged away). A category seen in only one sample needs no pseudo-count: its
expected count is positive because the column total is. Window values of a
categorical feature that the reference never had go to one extra "unseen"
bucket. Yates' continuity correction is not applied: it is conservative and
the windows here are large.

Sparse categories are pooled (``min_expected``). The chi-squared
approximation fails when expected counts are small: a pixel that is 0 in
99% of digits and takes a dozen rare values elsewhere gave p-values so
unreliable that windows of unshifted held-out digits raised dataset drift in
28% of draws at a family-wise alpha of 5% (a value the reference never had,
seen twice in a window, has an expected count of 0.4). Categories whose expected count
in either sample is below ``min_expected`` are merged into one "other"
category; if that is still sparse it joins the smallest remaining category.
The detector pools below 10, not Cochran's 5 (see :data:`MIN_EXPECTED`); with
``min_expected=0`` the function is exactly ``chi2_contingency(correction=False)``.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.stats import chi2 as chi2_dist

__all__ = ["MIN_EXPECTED", "CategoricalReference", "chi2_homogeneity", "chi2_homogeneity_many"]


MIN_EXPECTED = 10.0
"""The smallest expected count the chi-squared approximation is trusted with.

Cochran's rule (5) is calibrated for tests at 5%; the detector's tests run at
``alpha / F`` (0.05 / 64 = 0.0008 under Bonferroni), far in the tail, where
Pearson's approximation is liberal when expected counts are only just above
5. With every feature categorical (digits pixels, integers 0..16), windows of
100 and Bonferroni at 0.05, pooling at 5 raised dataset drift in 0.068 of
null windows; at 10 it stays below alpha (``test_chi2.py`` checks it over
4,000 windows). The cost is power on categories rarer than 10 expected
counts, which are pooled instead of tested one by one."""


def _pool_sparse(
    r: NDArray[np.float64], w: NDArray[np.float64], min_expected: float
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Merge categories with an expected count below ``min_expected`` in either sample.

    One table per row of the (N, K) inputs.
    Returns K + 1 columns: the kept categories (zero where merged away) and
    "other". The sparse categories go to "other"; if that is still sparse it
    joins the smallest kept category (the first one on ties). Columns whose
    total is zero take no part in the test.
    """
    nr = r.sum(axis=-1, keepdims=True)
    nw = w.sum(axis=-1, keepdims=True)
    smaller = np.minimum(nr, nw) / (nr + nw)  # the smaller sample has the smaller expected counts
    col = r + w
    sparse = col * smaller < min_expected
    other_r = np.where(sparse, r, 0.0).sum(axis=-1)
    other_w = np.where(sparse, w, 0.0).sum(axis=-1)
    kept = ~sparse & (col > 0)
    r_out = np.where(kept, r, 0.0)
    w_out = np.where(kept, w, 0.0)
    into_smallest = ((other_r + other_w) * smaller[..., 0] < min_expected) & kept.any(axis=-1)
    if into_smallest.any():
        target = np.argmin(np.where(kept, col, np.inf), axis=-1)
        where = np.nonzero(into_smallest)
        r_out[(*where, target[where])] += other_r[where]
        w_out[(*where, target[where])] += other_w[where]
        other_r = np.where(into_smallest, 0.0, other_r)
        other_w = np.where(into_smallest, 0.0, other_w)
    return (
        np.concatenate([r_out, other_r[..., None]], axis=-1),
        np.concatenate([w_out, other_w[..., None]], axis=-1),
    )


def chi2_homogeneity_many(
    ref_counts: ArrayLike, win_counts: ArrayLike, min_expected: float = 0.0
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.int64]]:
    """:func:`chi2_homogeneity` for many tables at once.

    ``ref_counts`` and ``win_counts`` broadcast against each other, the last
    axis holding the K categories (e.g. one reference of shape (F, K) against
    windows of shape (N, F, K)). Returns ``(statistic, p_value, dof)`` with
    the broadcast leading shape. Every sample needs at least one observation.

    Examples
    --------
    >>> stat, p, dof = chi2_homogeneity_many([[50, 30, 20]], [[30, 30, 40], [50, 30, 20]])
    >>> dof.tolist(), p.round(4).tolist()
    ([2, 2], [0.0029, 1.0])
    """
    r0 = np.asarray(ref_counts, dtype=np.float64)
    w0 = np.asarray(win_counts, dtype=np.float64)
    if r0.ndim == 0 or w0.ndim == 0 or r0.shape[-1] != w0.shape[-1]:
        raise ValueError(f"count arrays differ in their last (category) axis: {r0.shape} vs {w0.shape}")
    if not (np.isfinite(r0).all() and np.isfinite(w0).all()) or (r0 < 0).any() or (w0 < 0).any():
        raise ValueError("counts must be finite and non-negative")
    r_b, w_b = np.broadcast_arrays(r0, w0)
    lead = r_b.shape[:-1]
    r, w = r_b.reshape(-1, r_b.shape[-1]), w_b.reshape(-1, w_b.shape[-1])  # one table per row
    nr, nw = r.sum(axis=-1), w.sum(axis=-1)
    if (nr <= 0).any() or (nw <= 0).any():
        raise ValueError("each sample needs at least one observation")
    if min_expected > 0:
        r, w = _pool_sparse(r, w, min_expected)
    col = r + w
    total = (nr + nw)[..., None]
    er, ew = col * (nr[..., None] / total), col * (nw[..., None] / total)
    present = col > 0
    safe_er, safe_ew = np.where(present, er, 1.0), np.where(present, ew, 1.0)
    terms = (r - er) ** 2 / safe_er + (w - ew) ** 2 / safe_ew
    stat = np.where(present, terms, 0.0).sum(axis=-1)
    dof = present.sum(axis=-1).astype(np.int64) - 1
    testable = dof >= 1
    p = np.where(testable, chi2_dist.sf(stat, np.maximum(dof, 1)), 1.0)
    return (
        np.where(testable, stat, 0.0).reshape(lead),
        p.reshape(lead),
        np.maximum(dof, 0).reshape(lead),
    )


def chi2_homogeneity(
    ref_counts: ArrayLike, win_counts: ArrayLike, min_expected: float = 0.0
) -> tuple[float, float, int]:
    """Chi-squared test that two count vectors come from one distribution.

    Returns ``(statistic, p_value, dof)``. With fewer than two categories
    observed at all the samples cannot differ: ``(0.0, 1.0, 0)``.

    Examples
    --------
    >>> from scipy.stats import chi2_contingency
    >>> ref, win = [50, 30, 20, 0], [30, 30, 35, 5]
    >>> stat, p, dof = chi2_homogeneity(ref, win)
    >>> res = chi2_contingency([ref, win], correction=False)
    >>> bool(abs(stat - res.statistic) < 1e-9 and dof == res.dof)
    True
    """
    r = np.asarray(ref_counts, dtype=np.float64).ravel()
    w = np.asarray(win_counts, dtype=np.float64).ravel()
    if r.shape != w.shape:
        raise ValueError(f"count vectors differ in length: {r.shape} vs {w.shape}")
    stat, p, dof = chi2_homogeneity_many(r, w, min_expected)
    return float(stat), float(p), int(dof)


class CategoricalReference:
    """Reference categories and counts of one categorical column, computed once.

    Parameters
    ----------
    column : array_like, shape (n,)
        Reference values (any finite floats; each distinct value is a category).

    Examples
    --------
    >>> ref = CategoricalReference([0, 1, 1, 2, 2, 2])
    >>> ref.window_counts([2, 2, 5]).tolist()  # last bucket: values unseen in the reference
    [0, 0, 2, 1]
    """

    def __init__(self, column: ArrayLike) -> None:
        col = np.asarray(column, dtype=np.float64).ravel()
        if col.size == 0:
            raise ValueError("reference column must not be empty")
        cats, counts = np.unique(col, return_counts=True)
        self.categories: NDArray[np.float64] = cats
        # Last bucket: window values the reference never had (count 0 here).
        self.counts: NDArray[np.int64] = np.append(counts, 0).astype(np.int64)

    def window_counts(self, column: ArrayLike) -> NDArray[np.int64]:
        """Counts of a window column per reference category, plus an unseen bucket."""
        col = np.asarray(column, dtype=np.float64).ravel()
        k = self.categories.size
        idx = np.searchsorted(self.categories, col)
        idx_c = np.minimum(idx, k - 1)
        known = self.categories[idx_c] == col
        bucket = np.where(known, idx_c, k)
        return np.bincount(bucket, minlength=k + 1).astype(np.int64)
