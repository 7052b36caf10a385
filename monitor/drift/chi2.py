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
in either sample is below ``min_expected`` (Cochran's rule: 5) are merged
into one "other" category; if that is still sparse it joins the smallest
remaining category. The detector applies the rule; with ``min_expected=0``
the function is exactly ``chi2_contingency(correction=False)``.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.stats import chi2 as chi2_dist

__all__ = ["CategoricalReference", "chi2_homogeneity"]


MIN_EXPECTED = 5.0
"""Cochran's rule: the smallest expected count the chi-squared approximation trusts."""


def _pool_sparse(
    r: NDArray[np.float64], w: NDArray[np.float64], min_expected: float
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Merge categories with an expected count below ``min_expected`` in either sample."""
    total = r.sum() + w.sum()
    smaller = min(r.sum(), w.sum()) / total
    expected = (r + w) * smaller  # the smaller sample has the smaller expected counts
    sparse = expected < min_expected
    if not sparse.any() or (sparse.all() and sparse.size <= 1):
        return r, w
    r_keep, w_keep = r[~sparse], w[~sparse]
    other_r, other_w = r[sparse].sum(), w[sparse].sum()
    if (other_r + other_w) * smaller < min_expected and r_keep.size:
        smallest = int(np.argmin(r_keep + w_keep))
        r_keep, w_keep = r_keep.copy(), w_keep.copy()
        r_keep[smallest] += other_r
        w_keep[smallest] += other_w
        return r_keep, w_keep
    return np.append(r_keep, other_r), np.append(w_keep, other_w)


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
    if (r < 0).any() or (w < 0).any() or not (np.isfinite(r).all() and np.isfinite(w).all()):
        raise ValueError("counts must be finite and non-negative")
    nr, nw = r.sum(), w.sum()
    if nr <= 0 or nw <= 0:
        raise ValueError("each sample needs at least one observation")
    keep = (r + w) > 0
    r, w = r[keep], w[keep]
    if min_expected > 0:
        r, w = _pool_sparse(r, w, min_expected)
    k = r.size
    if k < 2:
        return 0.0, 1.0, 0
    col = r + w
    total = nr + nw
    er, ew = col * (nr / total), col * (nw / total)
    stat = float(np.sum((r - er) ** 2 / er) + np.sum((w - ew) ** 2 / ew))
    dof = k - 1
    return stat, float(chi2_dist.sf(stat, dof)), dof


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
