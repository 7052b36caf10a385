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
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.stats import chi2 as chi2_dist

__all__ = ["CategoricalReference", "chi2_homogeneity"]


def chi2_homogeneity(ref_counts: ArrayLike, win_counts: ArrayLike) -> tuple[float, float, int]:
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
