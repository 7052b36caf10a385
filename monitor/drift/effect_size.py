"""Effect sizes reported beside every test.

Why: with a reference of 100k rows a KS test flags shifts far too small to
matter; with a window of 30 rows it misses large ones. An effect size in
stable units lets a user (and ``min_effect_size``) tell a significant shift
from one that matters.

- Numeric features: the Wasserstein-1 distance between the reference and
  the window, divided by the reference standard deviation (so 0.3 means "the
  mass moved by 0.3 reference std on average"). A constant reference column
  (std 0) is divided by 1 instead, i.e. the raw W1 in feature units.
- Categorical features and predicted classes: the Jensen-Shannon distance
  (base 2, in [0, 1]). It is finite when a category is missing from one side,
  so it needs no pseudo-count. The population stability index is provided
  for users who know its rules of thumb; it needs a pseudo-count ``eps``
  because ``log(0)`` is infinite.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = [
    "column_mean_std",
    "jensen_shannon",
    "normalised_wasserstein",
    "psi",
    "wasserstein_prefix",
    "wasserstein_sorted",
    "wasserstein_std_scale",
]


def wasserstein_prefix(ref_sorted_row: NDArray[np.float64]) -> NDArray[np.float64]:
    """Prefix sums ``P[k] = sum(r[:k])`` of a sorted reference column (length n + 1).

    Precomputed once per reference: with them the integral of the reference
    quantile function up to any ``k / n`` is ``P[k] / n``.
    """
    out = np.zeros(ref_sorted_row.size + 1, dtype=np.float64)
    np.cumsum(ref_sorted_row, out=out[1:])
    return out


def wasserstein_sorted(
    ref_sorted_row: NDArray[np.float64],
    prefix: NDArray[np.float64],
    win_sorted_row: NDArray[np.float64],
    rank_left: NDArray[np.int64] | None = None,
    shift: float = 0.0,
) -> float:
    """Exact W1 between a sorted reference column and a sorted window column.

    ``W1 = integral over u in (0, 1) of |Q_ref(u) - Q_win(u)|``. ``Q_win`` is
    constant (``c = w_j``) on each ``(j/m, (j+1)/m]``; there the integral of
    ``|Q_ref - c|`` splits at ``s = #(ref < c) / n`` and needs only the
    integral of ``Q_ref``, read off the prefix sums. So the cost is ``O(m)``
    given the ranks ``rank_left = searchsorted(ref, win, 'left')`` that the KS
    test computes anyway, not ``O((n + m) log(n + m))`` as a merged sort.

    W1 is shift invariant; for accuracy the integral is taken on values
    minus ``shift`` (pass the reference mean, and ``prefix`` computed on
    ``ref - shift``), without copying the reference column.

    Examples
    --------
    >>> from scipy.stats import wasserstein_distance
    >>> rng = np.random.default_rng(0)
    >>> r, w = np.sort(rng.normal(size=200)), np.sort(rng.normal(0.5, 1, size=70))
    >>> ours = wasserstein_sorted(r, wasserstein_prefix(r), w)
    >>> bool(abs(ours - wasserstein_distance(r, w)) < 1e-12)
    True
    """
    n = int(ref_sorted_row.size)
    m = int(win_sorted_row.size)
    if n == 0 or m == 0:
        raise ValueError("both samples must be non-empty")
    rl = (
        np.searchsorted(ref_sorted_row, win_sorted_row, side="left")
        if rank_left is None
        else np.asarray(rank_left, dtype=np.int64)
    )
    jj = np.arange(m + 1, dtype=np.int64)
    k = (jj * n) // m  # grid point j/m falls in reference step k
    frac = (jj * n - k * m) / (n * m)  # j/m - k/n, exact numerator
    qi = prefix[k] / n + frac * (ref_sorted_row[np.minimum(k, n - 1)] - shift)
    qi0, qi1 = qi[:-1], qi[1:]
    j = jj[:-1]
    below = rl * m < j * n  # s below the segment: clip to its start
    above = rl * m > (j + 1) * n  # s above the segment: clip to its end
    s = np.clip(rl / n, j / m, (j + 1) / m)
    qis = np.where(below, qi0, np.where(above, qi1, prefix[rl] / n))
    total = (win_sorted_row - shift) * (2.0 * s - (2 * j + 1) / m) + qi0 + qi1 - 2.0 * qis
    return float(max(total.sum(), 0.0))


def column_mean_std(x: ArrayLike, axis: int = 0) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Mean and (population) standard deviation along ``axis``, finite for any finite input.

    Why not ``x.std()``: it squares the deviations, which overflows to
    ``inf`` once they pass ~1e154, and an effect size divided by ``inf``
    read 0.0 for features on such scales. Each column is divided by its
    largest absolute value first (a power of two, so the division is exact)
    and the result multiplied back.

    Examples
    --------
    >>> x = np.array([[1e200, 1.0], [3e200, 3.0]])
    >>> mean, std = column_mean_std(x)
    >>> mean.tolist(), std.tolist()
    ([2e+200, 2.0], [1e+200, 1.0])
    """
    arr = np.asarray(x, dtype=np.float64)
    peak = np.max(np.abs(arr), axis=axis, keepdims=True) if arr.size else np.ones_like(arr)
    # frexp: peak = frac * 2**exp with frac in [0.5, 1); scaling by 2**-exp is exact.
    _, exp = np.frexp(np.where(peak > 0, peak, 1.0))
    scale = np.ldexp(1.0, exp)
    scaled = arr / scale
    mean = scaled.mean(axis=axis, keepdims=True)
    std = scaled.std(axis=axis, keepdims=True)
    return (
        np.squeeze(mean * scale, axis=axis),
        np.squeeze(std * scale, axis=axis),
    )


def wasserstein_std_scale(ref_std: ArrayLike) -> NDArray[np.float64]:
    """Denominators for the normalised W1: the reference std, or 1 where it is 0."""
    s = np.asarray(ref_std, dtype=np.float64)
    return np.where(s > 0, s, 1.0)


def normalised_wasserstein(reference: ArrayLike, window: ArrayLike) -> float:
    """W1 between two 1-D samples divided by the reference std (1 if constant).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> ref = rng.normal(0, 2, size=5000)
    >>> round(normalised_wasserstein(ref, ref + ref.std()), 9)  # shift by one std
    1.0
    """
    r = np.sort(np.asarray(reference, dtype=np.float64).ravel())
    w = np.sort(np.asarray(window, dtype=np.float64).ravel())
    if r.size == 0 or w.size == 0:
        raise ValueError("both samples must be non-empty")
    if not (np.isfinite(r).all() and np.isfinite(w).all()):
        raise ValueError("samples contain NaN or infinite values")
    mean, std = column_mean_std(r)
    mu = float(mean)
    rc, wc = r - mu, w - mu
    w1 = wasserstein_sorted(rc, wasserstein_prefix(rc), wc)
    return w1 / float(wasserstein_std_scale(std))


def _proportions(counts: ArrayLike) -> NDArray[np.float64]:
    c = np.asarray(counts, dtype=np.float64)
    if c.ndim != 1 or (c < 0).any() or not np.isfinite(c).all():
        raise ValueError("counts must be a 1-D array of finite non-negative numbers")
    total = c.sum()
    if total <= 0:
        raise ValueError("counts must not all be zero")
    return c / total


def jensen_shannon(ref_counts: ArrayLike, win_counts: ArrayLike) -> float:
    """Jensen-Shannon distance (base 2, in [0, 1]) between two count vectors.

    Same as ``scipy.spatial.distance.jensenshannon(p, q, base=2)``, computed
    here to avoid its per-call overhead and to keep ``0 * log 0 = 0``.

    Examples
    --------
    >>> jensen_shannon([10, 10], [10, 10])
    0.0
    >>> jensen_shannon([10, 0], [0, 10])
    1.0
    """
    p, q = _proportions(ref_counts), _proportions(win_counts)
    if p.shape != q.shape:
        raise ValueError(f"count vectors differ in length: {p.shape} vs {q.shape}")
    mid = 0.5 * (p + q)

    def kl(a: NDArray[np.float64]) -> float:
        nz = a > 0
        return float(np.sum(a[nz] * np.log2(a[nz] / mid[nz])))

    js = 0.5 * kl(p) + 0.5 * kl(q)
    return float(np.sqrt(min(max(js, 0.0), 1.0)))


def psi(ref_counts: ArrayLike, win_counts: ArrayLike, eps: float = 1e-4) -> float:
    """Population stability index ``sum((q - p) * ln(q / p))``.

    Proportions are floored at ``eps`` (then renormalised) because a category
    absent from one side would make the index infinite.

    Examples
    --------
    >>> psi([50, 50], [50, 50])
    0.0
    >>> round(psi([90, 10], [50, 50]), 4)
    0.8789
    """
    if eps <= 0:
        raise ValueError(f"eps must be positive, got {eps}")
    p, q = _proportions(ref_counts), _proportions(win_counts)
    if p.shape != q.shape:
        raise ValueError(f"count vectors differ in length: {p.shape} vs {q.shape}")
    p = np.maximum(p, eps)
    q = np.maximum(q, eps)
    p, q = p / p.sum(), q / q.sum()
    return float(np.sum((q - p) * np.log(q / p)))
