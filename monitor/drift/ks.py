"""Two-sample Kolmogorov-Smirnov test for many features at once.

The statistic is computed on a lattice: with ``n`` reference rows and ``m``
window rows every empirical-CDF difference is an integer multiple of
``1 / lcm(n, m)``, so we carry ``h = D * lcm(n, m)`` as an exact ``int64``.
This makes the statistic bit-for-bit reproducible, lets ties (integer-valued
features) be handled without floating-point surprises, and gives a natural
key for caching p-values and critical values.

Why presorted reference columns: the reference never changes between
windows, so sorting it once in ``__init__`` leaves ``O(m log n)`` binary
searches per feature for a window of ``m`` rows, instead of scipy's
``O((n + m) log(n + m))`` sort and searches per call.

Why critical values: deciding drift at level ``a`` needs only ``D >= D_crit``
where ``D_crit`` depends on ``(n, m, a)`` alone. scipy's asymptotic p-value
(``kstwo.sf``) costs tens of milliseconds per feature for large samples, so
the detector decides on ``h >= h_crit`` (computed once per window size and
cached) and evaluates p-values only where they are reported.

The p-values follow :func:`scipy.stats.ks_2samp` with ``method='auto'``:
exact when ``max(n, m) <= 10000`` (and when the exact computation succeeds),
otherwise the asymptotic ``kstwo.sf(D, round(n m / (n + m)))``. The exact
value at unequal sizes costs ~15 ms per distinct statistic at 10k x 1k, so
the detector's default (``DriftConfig.p_values="near-level"``) computes it
only near the decision level and reports Kolmogorov's limit with Stephens'
correction (:func:`ks_kolmogorov_p`, microseconds for all features) farther
away, where no decision can depend on it.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import lru_cache, partial
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import special
from scipy.stats import kstwo

from monitor.drift import _kernels, _tasks
from monitor.drift._checks import FloatArray, as_2d_with_missing, as_finite_2d
from monitor.drift.effect_size import column_mean_std, wasserstein_prefix, wasserstein_sorted

__all__ = [
    "MAX_AUTO_N",
    "KSMethod",
    "MissingKS",
    "SortedReference",
    "ks_2samp_many",
    "ks_critical_h",
    "ks_kolmogorov_p",
    "ks_lattice",
    "ks_pvalue_h",
    "ks_pvalues",
    "ks_pvalues_sized",
    "resolve_method",
]

KSMethod = Literal["auto", "exact", "asymp"]
MAX_AUTO_N = 10000
"""scipy's ``ks_2samp(method='auto')`` tries the exact distribution up to here."""

_ExactFn = Callable[[int, int, int, float, str], tuple[bool, float, float]]

try:  # scipy's exact two-sample distribution (private, but the reference we mirror).
    from scipy.stats._stats_py import _attempt_exact_2kssamp as _scipy_exact

    _EXACT: _ExactFn | None = _scipy_exact
except ImportError:  # pragma: no cover - only on a scipy that moved it
    _EXACT = None


def ks_lattice(n: int, m: int) -> tuple[int, int, int]:
    """Return ``(lcm, a, b)`` with ``lcm = lcm(n, m)``, ``a = lcm // n``, ``b = lcm // m``.

    ``F_ref(x) - F_win(x) = (a * count_ref(x) - b * count_win(x)) / lcm``, an
    exact integer numerator.
    """
    if n <= 0 or m <= 0:
        raise ValueError(f"sample sizes must be positive, got n={n}, m={m}")
    g = math.gcd(n, m)
    lcm = (n // g) * m
    return lcm, lcm // n, lcm // m


def resolve_method(n: int, m: int, method: KSMethod = "auto") -> Literal["exact", "asymp"]:
    """Which p-value path scipy's ``ks_2samp`` would take for sizes ``n, m``.

    Mirrors scipy: ``auto`` is exact when ``max(n, m) <= 10000``; ``exact``
    falls back to asymptotic when ``lcm`` would overflow an int32.
    """
    if method not in ("auto", "exact", "asymp"):
        raise ValueError(f"method must be 'auto', 'exact' or 'asymp', got {method!r}")
    if method == "auto":
        return "exact" if max(n, m) <= MAX_AUTO_N else "asymp"
    if method == "exact":
        g = math.gcd(n, m)
        if n // g >= np.iinfo(np.int32).max / (m // g):
            return "asymp"
        return "exact"
    return "asymp"


def _asymp_p(n: int, m: int, d: NDArray[np.float64]) -> NDArray[np.float64]:
    """scipy's asymptotic two-sided p-value, ``kstwo.sf(d, round(n m / (n + m)))``.

    One deviation: for ``n = m = 1`` the effective size rounds to 0 and scipy
    returns NaN; we return 1.0 (no evidence), so decisions never see a NaN.
    """
    big, small = (float(n), float(m)) if n >= m else (float(m), float(n))
    en = np.round(big * small / (big + small))
    if en < 1:
        return np.ones_like(np.asarray(d, dtype=np.float64))
    return np.clip(np.asarray(kstwo.sf(d, en), dtype=np.float64), 0.0, 1.0)


def ks_kolmogorov_p(n: int, m: int, h: ArrayLike) -> NDArray[np.float64]:
    """Kolmogorov's limiting p-value with Stephens' small-sample correction, vectorised.

    ``Q_KS((sqrt(e) + 0.12 + 0.11 / sqrt(e)) D)`` with ``e = n m / (n + m)``:
    one ``special.kolmogorov`` call for all features (microseconds), where
    scipy's exact path costs ~15 ms per statistic at 10k x 1k and its
    ``kstwo.sf`` ~0.3 ms. Used for the p-values that cannot change a
    decision (``DriftConfig.p_values="near-level"``); within 1% of the exact
    value for p > 0.02 and within 5% down to 1e-6 at 10k x 1k (measured).

    >>> round(float(ks_kolmogorov_p(10_000, 1_000, [450])[0]), 4)
    0.0489
    """
    lcm, _, _ = ks_lattice(n, m)
    e = n * m / (n + m)
    scale = math.sqrt(e) + 0.12 + 0.11 / math.sqrt(e)
    d = np.asarray(h, dtype=np.float64) / lcm
    return np.clip(np.asarray(special.kolmogorov(scale * d), dtype=np.float64), 0.0, 1.0)


@lru_cache(maxsize=65536)
def ks_pvalue_h(n: int, m: int, h: int, method: KSMethod = "auto") -> tuple[float, str]:
    """Two-sided p-value of ``D = h / lcm(n, m)``, as scipy computes it.

    Returns ``(p_value, method_used)``; ``method_used`` is ``"exact"`` or
    ``"asymp"`` (the exact path falls back to asymptotic when it overflows,
    as in scipy). Cached: the key is small and integer.

    Examples
    --------
    >>> p, how = ks_pvalue_h(100, 100, 20)
    >>> how, round(p, 6)
    ('exact', 0.036384)
    """
    lcm, _, _ = ks_lattice(n, m)
    if h < 0 or h > lcm:
        raise ValueError(f"h must lie in [0, {lcm}], got {h}")
    mode = resolve_method(n, m, method)
    d = h / lcm
    if mode == "exact":
        prob = _exact_p(n, m, h, d)
        if prob is not None:
            return prob, "exact"
    return float(_asymp_p(n, m, np.asarray(d))), "asymp"


def _exact_p(n: int, m: int, h: int, d: float) -> float | None:
    """scipy's exact two-sided p-value, or None where scipy falls back to asymptotic.

    With numba, our compiled ports of scipy's two exact paths (bit-identical;
    the equal-size path is a Python loop in scipy, ~50x slower); without it,
    scipy's own private function.
    """
    if h == 0:
        return 1.0
    if _kernels.HAVE_NUMBA:
        prob = (
            _kernels.ks_exact_square(n, h)
            if n == m
            else _kernels.ks_exact_inside(n, m, math.gcd(n, m), h)
        )
    elif _EXACT is not None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            ok, _, prob = _EXACT(n, m, math.gcd(n, m), d, "two-sided")
        if not ok:
            return None
    else:  # pragma: no cover - only on a scipy that moved it, without numba
        return None
    if not 0.0 <= prob <= 1.0:  # also NaN: scipy then uses the asymptotic path
        return None
    return float(prob)


def ks_pvalues(
    n: int, m: int, h: ArrayLike, method: KSMethod = "auto", threads: int | None = 1
) -> tuple[NDArray[np.float64], list[str]]:
    """Vectorised p-values for an array of lattice statistics ``h``.

    The asymptotic path calls ``kstwo.sf`` once on the array of distinct
    statistics (not once per feature); the exact path goes through the
    cached scalar :func:`ks_pvalue_h`, once per distinct ``h``, on up to
    ``threads`` threads (None: every core numba sees) when numba computes
    them (its kernels release the GIL; each value is the same whichever
    thread computes it).

    Returns the p-values and, per entry, the method used.
    """
    harr = np.asarray(h, dtype=np.int64).ravel()
    if harr.size == 0:
        return np.empty(0, dtype=np.float64), []
    lcm, _, _ = ks_lattice(n, m)
    uniq, inverse = np.unique(harr, return_inverse=True)
    mode = resolve_method(n, m, method)
    if mode == "asymp":
        p_u = _asymp_p(n, m, uniq / lcm)
        how_u = ["asymp"] * len(uniq)
    else:
        hs = [int(v) for v in uniq]
        workers = _kernels.MAX_THREADS if threads is None else max(1, min(threads, _kernels.MAX_THREADS))
        if workers > 1 and len(hs) > 1 and _kernels.HAVE_NUMBA:
            shares = [hs[i::workers] for i in range(workers)]  # one task per thread allowed
            done = list(_pool().map(lambda share: [ks_pvalue_h(n, m, v, method) for v in share], shares))
            pairs = [done[i % workers][i // workers] for i in range(len(hs))]
        else:
            pairs = [ks_pvalue_h(n, m, v, method) for v in hs]
        p_u = np.array([p for p, _ in pairs], dtype=np.float64)
        how_u = [how for _, how in pairs]
    return p_u[inverse], [how_u[i] for i in inverse]


@lru_cache(maxsize=1)
def _pool() -> ThreadPoolExecutor:
    """Threads for exact p-values of distinct statistics (created at first use)."""
    return ThreadPoolExecutor(max_workers=_kernels.MAX_THREADS, thread_name_prefix="ks-exact")


def _p_of_d_one(n: int, m: int, method: KSMethod) -> float:
    """The p-value of ``D = 1`` (the samples do not overlap): the smallest one can reach.

    On the exact path it is ``2 / C(n + m, n)`` in closed form (both orders of
    the two samples), where computing it through the exact distribution
    costs a full lattice pass (~100 ms at 10k x 1k).

    >>> round(_p_of_d_one(3, 5, "auto"), 12) == round(ks_pvalue_h(3, 5, ks_lattice(3, 5)[0])[0], 12)
    True
    """
    if resolve_method(n, m, method) == "exact":
        return min(1.0, 2.0 * math.exp(math.lgamma(n + 1) + math.lgamma(m + 1) - math.lgamma(n + m + 1)))
    return ks_pvalue_h(n, m, ks_lattice(n, m)[0], method)[0]


@lru_cache(maxsize=4096)
def ks_critical_h(n: int, m: int, level: float, method: KSMethod = "auto") -> int:
    """Smallest lattice statistic ``h`` whose p-value is ``< level``.

    ``D * lcm >= ks_critical_h(...)`` is then exactly the decision
    ``p_value < level`` (the p-value is non-increasing in ``D``), without
    computing any p-value per window. Returns ``lcm + 1`` when no statistic
    can reach the level (tiny samples, tiny level).

    Cached per ``(n, m, level, method)``: a count-based window keeps its
    size, so this runs once per detector.

    Examples
    --------
    >>> h = ks_critical_h(100, 100, 0.05)
    >>> lcm, _, _ = ks_lattice(100, 100)
    >>> h / lcm
    0.2
    """
    if not (0.0 < level <= 1.0):
        raise ValueError(f"level must lie in (0, 1], got {level!r}")
    lcm, _, _ = ks_lattice(n, m)

    def p(hv: int) -> float:
        return ks_pvalue_h(n, m, hv, method)[0]

    if _p_of_d_one(n, m, method) >= level:
        return lcm + 1
    # The guess inverts Kolmogorov's limit with Stephens' correction (ks_kolmogorov_p): it
    # lands within a step or two of the exact critical value, so the search costs a few
    # exact p-values (~15 ms each at 10k x 1k) instead of a dozen.
    e = max(n * m / (n + m), 1.0)
    scale = math.sqrt(e) + 0.12 + 0.11 / math.sqrt(e)
    h0 = min(max(math.ceil(float(special.kolmogi(level)) / scale * lcm), 1), lcm)
    # Where lcm(n, m) is large (most sizes of a time window: 10k x 937 rows has lcm 9.37M)
    # a step of the lattice is tiny and the guess lands ~500 steps off: ~18 exact p-values
    # (~30 ms at 10k x 1k) for every new window size. The ratio of the exact p-value to the
    # limit varies slowly with D, so the limit inverted at level * limit / exact (at the
    # guess) lands within a few steps (measured, 10k x 900-1,100 rows at 0.05 / 64: 0-21);
    # twice, then the search as before: the same answer from any start.
    for _ in range(2):
        exact, limit = p(h0), float(ks_kolmogorov_p(n, m, [h0])[0])
        target = level * limit / exact if exact > 0.0 else 0.0
        if not 0.0 < target < 1.0:
            break
        h1 = min(max(math.ceil(float(special.kolmogi(target)) / scale * lcm), 1), lcm)
        if h1 == h0:
            break
        h0 = h1
    # Bracket: lo has p >= level, hi has p < level, by galloping from the guess.
    if p(h0) < level:
        hi, step = h0, 1
        lo = max(h0 - step, 0)
        while lo > 0 and p(lo) < level:
            hi = lo
            step *= 2
            lo = max(hi - step, 0)
    else:
        lo, step = h0, 1
        hi = min(h0 + step, lcm)
        while p(hi) >= level:
            lo = hi
            step *= 2
            hi = min(lo + step, lcm)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if p(mid) < level:
            hi = mid
        else:
            lo = mid
    return hi


@dataclass(frozen=True, slots=True)
class MissingKS:
    """Per-feature KS on present values: lattice ``h`` (-1: not testable), raw W1
    (NaN where not testable; None unless asked) and the sizes ``n``, ``m`` it was
    computed on (``D = h / lcm(n, m)``)."""

    h: NDArray[np.int64]
    w1: NDArray[np.float64] | None
    n: NDArray[np.int64]
    m: NDArray[np.int64]


MERGE_MAX_RATIO = 30
"""Compiled kernels while ``n_reference <= MERGE_MAX_RATIO * n_window`` (see ``use_merge``)."""

_BLOCK = 512


def _transpose_padded(x: NDArray[np.float64]) -> NDArray[np.float64]:
    """(rows, F) -> contiguous (F, rows + 1) with ``+inf`` in the last column.

    Copied in blocks of rows so each block stays in cache: a plain
    ``x.T.copy()`` of a 10k x 64 array is ~4x slower here.
    """
    rows, cols = x.shape
    out = np.empty((cols, rows + 1), dtype=np.float64)
    out[:, rows] = np.inf
    for s in range(0, rows, _BLOCK):
        e = min(s + _BLOCK, rows)
        out[:, s:e] = x[s:e].T
    return out


def _tie_counts(ws: NDArray[np.float64]) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """Per sorted row: ``#(w < w_i)`` and ``#(w <= w_i)`` for every position ``i``.

    Vectorised over all rows; without ties these are ``i`` and ``i + 1``.
    """
    f, m = ws.shape
    idx = np.arange(m, dtype=np.int64)
    new = ws[:, 1:] != ws[:, :-1]
    if new.all():
        return np.broadcast_to(idx, (f, m)), np.broadcast_to(idx + 1, (f, m))
    starts = np.ones((f, m), dtype=bool)
    starts[:, 1:] = new
    left = np.maximum.accumulate(np.where(starts, idx, 0), axis=1)
    ends = np.ones((f, m), dtype=bool)
    ends[:, :-1] = new
    right = np.minimum.accumulate(np.where(ends, idx + 1, m)[:, ::-1], axis=1)[:, ::-1]
    return left, right


class SortedReference:
    """Reference columns sorted once, ready to test windows against.

    Parameters
    ----------
    reference : array_like, shape (n, F)
        Reference sample, finite values.
    with_wasserstein : bool
        Also precompute what the O(m) Wasserstein-1 distance needs (column
        means and prefix sums of the centred sorted columns).
    threads : int or None
        Threads of the compiled kernel (None: every core numba sees). The
        results do not depend on it.
    with_order : bool
        Also keep the rows each sorted value came from (``order``, int32),
        for :meth:`chunk_w1`.

    Notes
    -----
    For a sorted window column ``w`` the supremum of ``F_ref - F_win`` is
    reached just before a window point (``#ref < w_i`` against ``#win < w_i``)
    and the supremum of ``F_win - F_ref`` at a window point
    (``#win <= w_i`` against ``#ref <= w_i``). So only the window points need
    locating in the reference, never the reference points in the window.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> ref = SortedReference(rng.normal(size=(500, 3)))
    >>> d = ref.statistic(rng.normal(size=(200, 3)) + [0.0, 0.0, 1.0])
    >>> bool(d[2] > 0.3), bool(d[0] < 0.15)
    (True, True)
    """

    def __init__(
        self,
        reference: ArrayLike,
        with_wasserstein: bool = False,
        threads: int | None = None,
        with_order: bool = False,
    ) -> None:
        self.threads = threads
        ref, has_missing = as_2d_with_missing(reference, "reference")
        if ref.shape[0] == 0:
            raise ValueError("reference must have at least one row")
        self.n: int = int(ref.shape[0])
        self.n_features: int = int(ref.shape[1])
        # Present (non-NaN) values per feature: n everywhere unless the reference has missing values.
        self.counts: NDArray[np.int64] = (
            self.n - np.isnan(ref).sum(axis=0) if has_missing else np.full(self.n_features, self.n)
        ).astype(np.int64)
        self.ragged: bool = bool((self.counts != self.n).any())
        # Row-major (F, n + 1): each feature's sorted column is contiguous and
        # ends with a +inf sentinel for the merge kernel; ``sorted`` is the
        # (F, n) view without it. NaN sorts last and becomes +inf, so a ragged
        # column f is its counts[f] present values, then sentinels.
        self.padded: NDArray[np.float64] = _transpose_padded(ref)
        # Where each sorted value came from (F, n), for the reference-chunk floors (chunk_w1).
        self.order: NDArray[np.int32] | None = None
        if with_order:
            self.order = np.argsort(self.padded[:, : self.n], axis=1).astype(np.int32)
            self.padded[:, : self.n] = np.take_along_axis(self.padded[:, : self.n], self.order, axis=1)
        else:
            self.padded[:, : self.n].sort(axis=1)
        if has_missing:
            self.padded[np.isnan(self.padded)] = np.inf
        self.sorted: NDArray[np.float64] = self.padded[:, : self.n]
        self.has_ties: NDArray[np.bool_] = (
            (self.sorted[:, 1:] == self.sorted[:, :-1]).any(axis=1)
            if self.n > 1
            else np.zeros(self.n_features, dtype=bool)
        )
        # Scaled before squaring: a plain std overflows beyond ~1e154 (effect sizes then read 0).
        if self.ragged:
            stats = [column_mean_std(self.sorted[f, :c]) if c else (0.0, 0.0) for f, c in enumerate(self.counts)]
            self.mean = np.array([float(mu) for mu, _ in stats])
            self.std = np.array([float(sd) for _, sd in stats])
        else:
            self.mean, self.std = column_mean_std(self.sorted, axis=1)
        # Prefix sums of the centred sorted rows (F, n + 1), ``wasserstein_prefix`` of each row
        # (a ragged row's entries past its counts[f] + 1 are never read).
        self.prefix: NDArray[np.float64] | None = None
        if with_wasserstein:
            self.prefix = np.zeros((self.n_features, self.n + 1), dtype=np.float64)
            if self.ragged:
                for f in range(self.n_features):
                    self.prefix[f, : self.counts[f] + 1] = wasserstein_prefix(
                        self.sorted[f, : self.counts[f]] - self.mean[f]
                    )
            else:
                np.cumsum(self.sorted - self.mean[:, None], axis=1, out=self.prefix[:, 1:])
        self._padded32: NDArray[np.float32] | None = None
        self._exact32: bool | None = None  # None: not looked at yet

    def padded_float32(self) -> NDArray[np.float32] | None:
        """``padded`` as float32, or None when a value of the reference is not a float32.

        Why: the monitor's windows and references are float32. The merge then
        runs on float32 rows on both sides: the same comparisons and values
        (each float32 is a float64 exactly), where converting each window
        value to float64 inside the merge's dependency chain cost ~15% of it.
        Made at the first float32 window (half the memory of ``padded``).
        """
        if self._exact32 is None:
            as32 = self.padded.astype(np.float32)
            self._exact32 = bool(np.array_equal(as32, self.padded))
            self._padded32 = as32 if self._exact32 else None
        return self._padded32

    def sort_window(self, window: ArrayLike) -> NDArray[np.float64]:
        """Validate a (m, F) window and return its columns sorted as (F, m)."""
        return self.sort_window_padded(window)[:, :-1]

    def sort_window_padded(self, window: ArrayLike, checked: bool = False) -> NDArray[np.float64]:
        """Validate a (m, F) window; its columns sorted as (F, m + 1), ``+inf`` last.

        A blocked transpose (4x faster than ``np.sort(w.T, axis=1)``, which
        sorts strided rows) into a padded buffer, then an in-place row sort.
        ``checked``: the caller has validated it (2-D float64, F finite columns).
        """
        w = np.asarray(window, dtype=np.float64) if checked else as_finite_2d(window, "window", self.n_features)
        if w.shape[0] == 0:
            raise ValueError("window must have at least one row")
        out = _transpose_padded(w)
        out[:, :-1].sort(axis=1)
        return out

    def use_merge(self, m: int) -> bool:
        """Whether the compiled kernels beat binary searches for a window of ``m`` rows.

        The kernels cost ``O(n + m)`` per feature, the searches ``O(m log n)``
        plus an ``O(m)`` W1 pass: measured here, the kernels win up to a
        reference ~30 times the window (and always when the window is larger).
        """
        return _kernels.HAVE_NUMBA and self.n <= MERGE_MAX_RATIO * m

    def test_window(
        self,
        window: ArrayLike,
        wasserstein: bool = True,
        checked: bool = False,
        alongside: Sequence[Callable[[], None]] = (),
        transposed: Callable[[FloatArray, int, int], None] | None = None,
    ) -> tuple[NDArray[np.int64], NDArray[np.float64] | None]:
        """KS lattice statistics and raw W1 per feature for an unsorted (m, F) window
        (``checked``: validated by the caller, a 2-D float32 or float64 array of F finite
        columns; unchecked windows are converted to float64).

        With the merge kernel, blocks of features are transposed, then sorted
        and merged, each block a task of :mod:`monitor.drift._tasks` (the sort
        shares the threads with the merge). ``transposed(rows, f0, f1)`` is
        called once per block with the window's columns ``f0:f1`` as rows
        ``rows[f0:f1, :m]``, unsorted (the cross-moment test standardises
        them from there); ``alongside``: other work of the same window that
        may use what ``transposed`` wrote (the cross-moment product), run
        after every block is transposed, first, beside the sorts and merges.

        A float32 window (the monitor's) against a reference of float32 values
        (the monitor's: :meth:`padded_float32`) is transposed, sorted and merged
        as float32, half the bytes of an upcast copy; every comparison and
        value is the one of the same window upcast, so are the statistics and
        W1, bit for bit; ``rows`` is then float32. Otherwise (a reference with
        other values, the numpy engine, a reference with missing values) it is
        taken as float64.
        """
        w: FloatArray = np.asarray(window) if checked else as_finite_2d(window, "window", self.n_features)
        if w.dtype != np.float32:
            w = np.asarray(w, dtype=np.float64)
        m = int(w.shape[0])
        if m == 0:
            raise ValueError("window must have at least one row")
        ref_rows: NDArray[np.float32] | NDArray[np.float64] = self.padded
        if not self.use_merge(m) or self.ragged:
            w = np.asarray(w, dtype=np.float64)
            if transposed is not None:
                rows = _transpose_padded(w)
                transposed(rows, 0, self.n_features)
                rows[:, :-1].sort(axis=1)
            else:
                rows = self.sort_window_padded(w, checked=True)
            result = self.test_padded(rows, wasserstein)
            for task in alongside:
                task()
            return result
        if w.dtype == np.float32:
            ref32 = self.padded_float32()
            if ref32 is None:
                w = np.asarray(w, dtype=np.float64)
            else:
                ref_rows = ref32
        lcm, a, b = ks_lattice(self.n, m)
        # Any layout: the monitor's window is a strided view of its stored rows (each row ends
        # with its predicted class), read once here rather than copied first.
        padded = np.empty((self.n_features, m + 1), dtype=w.dtype)
        h = np.zeros(self.n_features, dtype=np.int64)
        acc = np.zeros(self.n_features, dtype=np.float64)

        def transpose(f0: int, f1: int) -> None:
            _kernels.transpose_pad(w, padded, f0, f1)
            if transposed is not None:
                transposed(padded, f0, f1)

        def merge(f0: int, f1: int) -> None:
            padded[f0:f1, :m].sort(axis=1)
            _kernels.ks_w1_rows(ref_rows, padded, a, b, wasserstein, h, acc, f0, f1)

        work = self.n_features * (self.n + m)
        threads = 1 if work < _kernels.SMALL_WORK else _kernels.threads_for(self.threads)
        spans = _kernels.blocks(self.n_features)
        _tasks.run([partial(transpose, f0, f1) for f0, f1 in spans], threads)
        _tasks.run([*alongside, *(partial(merge, f0, f1) for f0, f1 in spans)], threads)
        return h, (acc / lcm if wasserstein else None)

    def test_padded(
        self, window_padded: NDArray[np.float64], wasserstein: bool = True
    ) -> tuple[NDArray[np.int64], NDArray[np.float64] | None]:
        """As :meth:`test_sorted`, for sorted rows padded with ``+inf`` (F, m + 1)."""
        self._uniform()
        m = int(window_padded.shape[1]) - 1
        if not self.use_merge(m):
            return self.test_sorted(window_padded[:, :m], wasserstein)
        if window_padded.ndim != 2 or window_padded.shape[0] != self.n_features or m < 1:
            raise ValueError(
                f"window_padded must have shape ({self.n_features}, m + 1), got {window_padded.shape}"
            )
        lcm, a, b = ks_lattice(self.n, m)
        h = np.zeros(self.n_features, dtype=np.int64)
        acc = np.zeros(self.n_features, dtype=np.float64)
        _kernels.ks_w1(self.padded, window_padded, a, b, wasserstein, h, acc, self.threads)
        return h, (acc / lcm if wasserstein else None)

    def chunk_w1(self, size: int) -> NDArray[np.float64] | None:
        """Raw W1 of each chunk of ``size`` consecutive reference rows against the whole
        reference, (n_chunks, F).

        One compiled walk of the sorted reference serves every chunk, ``O(n)``
        per feature whatever the number of chunks (see ``_kernels.chunk_w1``):
        the prefix-sum form of :func:`~monitor.drift.effect_size.wasserstein_sorted`,
        equal to testing each chunk as a window to ~1e-13 relative. None where
        it does not apply: without numba, ``with_order`` or ``with_wasserstein``,
        with missing values, or with no whole chunk.
        """
        n_chunks = self.n // size
        if (self.order is None or self.prefix is None or self.ragged or not _kernels.HAVE_NUMBA
                or n_chunks < 1):
            return None
        return _kernels.chunk_w1(self.padded, self.prefix, self.mean, self.order, size, n_chunks, self.threads).T

    def statistic_h(self, window_sorted: NDArray[np.float64]) -> NDArray[np.int64]:
        """Lattice statistics ``h = D * lcm(n, m)`` for presorted window rows (F, m)."""
        return self.test_sorted(window_sorted, wasserstein=False)[0]

    def test_sorted(
        self, window_sorted: NDArray[np.float64], wasserstein: bool = True
    ) -> tuple[NDArray[np.int64], NDArray[np.float64] | None]:
        """KS lattice statistics and (optionally) raw W1 distances per feature.

        ``window_sorted`` is (F, m), each row sorted. The W1 distance reuses
        the KS ranks, so it adds ``O(m)`` per feature.
        """
        self._uniform()
        if window_sorted.ndim != 2 or window_sorted.shape[0] != self.n_features:
            raise ValueError(
                f"window_sorted must have shape ({self.n_features}, m), got {window_sorted.shape}"
            )
        if wasserstein and self.prefix is None:
            raise ValueError("built without with_wasserstein=True")
        m = int(window_sorted.shape[1])
        if self.use_merge(m):
            padded = np.empty((self.n_features, m + 1), dtype=np.float64)
            padded[:, :m] = window_sorted
            padded[:, m] = np.inf
            return self.test_padded(padded, wasserstein)
        _, a, b = ks_lattice(self.n, m)
        cw_left, cw_right = _tie_counts(window_sorted)
        out = np.zeros(self.n_features, dtype=np.int64)
        w1 = np.zeros(self.n_features, dtype=np.float64) if wasserstein else None
        last = self.n - 1
        for f in range(self.n_features):
            out[f], w1_f = self._search_row(f, self.sorted[f], window_sorted[f], cw_left[f], cw_right[f], a, b,
                                            last, w1 is not None)
            if w1 is not None:
                w1[f] = w1_f
        return out, w1

    def _search_row(
        self,
        f: int,
        r: NDArray[np.float64],
        w: NDArray[np.float64],
        cw_left: NDArray[np.int64],
        cw_right: NDArray[np.int64],
        a: int,
        b: int,
        last: int,
        wasserstein: bool,
    ) -> tuple[int, float]:
        """One feature by binary searches: lattice ``h`` and raw W1 (0.0 unless asked)."""
        rl = np.searchsorted(r, w, side="left")
        # Without ties in the reference at most one reference point equals w.
        rr = (
            np.searchsorted(r, w, side="right")
            if self.has_ties[f]
            else rl + (r[np.minimum(rl, last)] == w)
        )
        d_plus = int((rl * a - cw_left * b).max())
        d_minus = int((cw_right * b - rr * a).max())
        w1 = 0.0
        if wasserstein and self.prefix is not None:
            w1 = wasserstein_sorted(r, self.prefix[f], w, rl, shift=float(self.mean[f]))
        return max(d_plus, d_minus, 0), w1

    def _uniform(self) -> None:
        if self.ragged:
            raise ValueError("the reference has missing values: test windows with test_missing()")

    def test_missing(self, window: ArrayLike, wasserstein: bool = True) -> MissingKS:
        """KS on the present values of each feature, for windows (or a reference) with NaN.

        Each feature is its own two-sample test of ``n_f`` reference against
        ``m_f`` window values (NaN left out, as scipy's ``nan_policy="omit"``),
        so each has its own lattice: one merge (or search) per feature over
        its present values. Features with no present value on a side get
        ``h = -1`` (not testable).
        """
        w, _ = as_2d_with_missing(window, "window", self.n_features)
        if w.shape[0] == 0:
            raise ValueError("window must have at least one row")
        if self.prefix is None:
            wasserstein = False
        sizes = (w.shape[0] - np.isnan(w).sum(axis=0)).astype(np.int64)
        padded = _transpose_padded(w)
        padded[:, :-1].sort(axis=1)  # NaN last: present values first, then sentinels
        padded[np.isnan(padded)] = np.inf
        h = np.full(self.n_features, -1, dtype=np.int64)
        w1 = np.full(self.n_features, np.nan)
        acc = np.zeros(1)
        for f in range(self.n_features):
            n_f, m_f = int(self.counts[f]), int(sizes[f])
            if n_f == 0 or m_f == 0:
                continue
            lcm, a, b = ks_lattice(n_f, m_f)
            if _kernels.HAVE_NUMBA and n_f <= MERGE_MAX_RATIO * m_f:
                # One row on this thread: a parallel launch per feature would cost more than it saves.
                _kernels.merge_pair(self.padded[f : f + 1, : n_f + 1], padded[f : f + 1, : m_f + 1], a, b,
                                    wasserstein, h[f : f + 1], acc, 0, 0)
                w1[f] = acc[0] / lcm
                continue
            col = padded[f : f + 1, :m_f]
            cw_left, cw_right = _tie_counts(col)
            h[f], w1_f = self._search_row(f, self.sorted[f, :n_f], col[0], cw_left[0], cw_right[0], a, b,
                                          n_f - 1, wasserstein)
            w1[f] = w1_f
        return MissingKS(h=h, w1=w1 if wasserstein else None, n=self.counts.copy(), m=sizes)

    def statistic(self, window: ArrayLike) -> NDArray[np.float64]:
        """KS statistic ``D`` per feature for an unsorted (m, F) window."""
        wp = self.sort_window_padded(window)
        lcm, _, _ = ks_lattice(self.n, wp.shape[1] - 1)
        return self.test_padded(wp, wasserstein=False)[0] / lcm


def ks_pvalues_sized(
    n: ArrayLike, m: ArrayLike, h: ArrayLike, method: KSMethod = "auto"
) -> tuple[NDArray[np.float64], list[str | None]]:
    """:func:`ks_pvalues` where each statistic has its own sample sizes (missing values).

    One :func:`ks_pvalues` call per distinct ``(n, m)`` pair; entries with
    ``h < 0`` (not testable) get NaN and method ``None``.
    """
    narr = np.asarray(n, dtype=np.int64).ravel()
    marr = np.asarray(m, dtype=np.int64).ravel()
    harr = np.asarray(h, dtype=np.int64).ravel()
    p = np.full(harr.size, np.nan)
    how: list[str | None] = [None] * harr.size
    ok = harr >= 0
    if not ok.any():
        return p, how
    pairs, group = np.unique(np.column_stack([narr[ok], marr[ok]]), axis=0, return_inverse=True)
    where = np.flatnonzero(ok)
    for g, (n_g, m_g) in enumerate(pairs.tolist()):
        members = where[group.ravel() == g]
        p_g, how_g = ks_pvalues(int(n_g), int(m_g), harr[members], method)
        p[members] = p_g
        for i, method_used in zip(members.tolist(), how_g, strict=True):
            how[i] = method_used
    return p, how


def ks_2samp_many(
    reference: ArrayLike, window: ArrayLike, method: KSMethod = "auto"
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """``scipy.stats.ks_2samp`` column by column, vectorised.

    NaN is a missing value, left out of its column's test as scipy's
    ``nan_policy="omit"`` does; a column with no value left on one side
    gets NaN for both results.

    Parameters
    ----------
    reference, window : array_like, shapes (n, F) and (m, F)
    method : {"auto", "exact", "asymp"}
        As in scipy.

    Returns
    -------
    statistic, pvalue : ndarray, shape (F,)

    Examples
    --------
    >>> from scipy.stats import ks_2samp
    >>> rng = np.random.default_rng(1)
    >>> x, y = rng.normal(size=(300, 2)), rng.normal(0.2, 1, size=(120, 2))
    >>> d, p = ks_2samp_many(x, y)
    >>> ref = ks_2samp(x[:, 1], y[:, 1])
    >>> bool(abs(d[1] - ref.statistic) < 1e-12 and abs(p[1] - ref.pvalue) < 1e-12)
    True
    >>> y[::3, 1] = np.nan
    >>> d, p = ks_2samp_many(x, y)
    >>> ref = ks_2samp(x[:, 1], y[:, 1], nan_policy="omit")
    >>> bool(abs(d[1] - ref.statistic) < 1e-12 and abs(p[1] - ref.pvalue) < 1e-12)
    True
    """
    ref = SortedReference(reference)
    win, missing = as_2d_with_missing(window, "window", ref.n_features)
    if ref.ragged or missing:
        res = ref.test_missing(win, wasserstein=False)
        lcm = np.array([ks_lattice(int(a), int(b))[0] if h >= 0 else 1
                        for a, b, h in zip(res.n, res.m, res.h, strict=True)], dtype=np.float64)
        p_sized, _ = ks_pvalues_sized(res.n, res.m, res.h, method)
        return np.where(res.h >= 0, res.h / lcm, np.nan), p_sized
    wp = ref.sort_window_padded(win)
    m = int(wp.shape[1]) - 1
    lcm_u, _, _ = ks_lattice(ref.n, m)
    h = ref.test_padded(wp, wasserstein=False)[0]
    p, _ = ks_pvalues(ref.n, m, h, method)
    return h / lcm_u, p
