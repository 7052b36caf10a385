"""A multivariate test: did the features start (or stop) moving together?

KS per feature cannot see a change in how features co-vary when each
feature's own distribution stays the same (rho 0.0 -> 0.8 in a block of
features, marginals unchanged: KS flags nothing). This test compares the
window's pairwise cross-moments with the reference's.

Statistic. Each feature is winsorised at the reference's 0.5% and 99.5%
quantiles and standardised with the (winsorised) reference mean and standard
deviation. For every pair ``i < j`` the window's cross-moment
``c_ij = mean(z_i z_j)`` (a correlation when the window's marginals are the
reference's) is compared with the reference's::

    T = sum_{i<j} (c_ij(window) - c_ij(reference))**2

and the effect size is ``sqrt(T / pairs)``, the root-mean-square change of
the pairwise correlations. Why winsorise: products of heavy-tailed features
have heavier tails still (Student t3 features have no fourth moment), and a
null simulated from the reference cannot see beyond its largest values; on
raw standardised values the null false-alarm rate measured 0.10-0.12 on t3
features. Normal scores of the reference ranks did as well but their search
cost twice the KS test; clipping is two comparisons a value. Why the terms
are not divided by each pair's reference variance: that estimate is noisy
where products are rare, ``1 / var`` is then biased upwards where the
simulated null cannot see it, and the null false-alarm rate measured 0.82 on
zero-inflated features.

Threshold, data-driven. The null distribution is simulated from the
reference itself, once per reference and window size: ``n_draws`` windows
drawn with replacement, their statistics against the reference. A window
drawn from the reference varies like ``1/m``; a real window against a
reference sample of ``n`` rows like ``1/m + 1/n``, and the reference's share
of that is the same for every window it is compared with, so the simulated
statistics are widened for the cross term and shifted by the reference
term's ``REFERENCE_COVERAGE`` quantile (see :meth:`CorrelationReference.null_statistics`):
the level then holds for a given reference, not only on average over
references. The p-value is the larger of the Monte Carlo p-value
``(1 + #{T_b >= T}) / (n_draws + 1)`` and a Pearson type III curve fitted to
the draws (smooth, and it grades statistics beyond the largest draw). The
draws keep the reference's own tails, rare values and ties, which a
chi-squared approximation would not.

Why this test and not the others (measured by ``benchmarks/multivariate.py``):
NannyML's PCA reconstruction error keeps the components that explain 65% of
the reference variance; when the reference features are uncorrelated those
components are noise, and a correlation that appears moves the error by a
random amount (power near its null rate). A domain classifier needs a model
fitted per window (tens of times the KS cost), and a linear one cannot see
covariance at all. MMD with a Gaussian kernel and a permutation test finds
the change but costs ``O((n + m)^2 F)`` per window plus the permutations. The
cross-moment test is one ``(F x m) @ (m x F)`` product per window (``O(m F^2)``,
a BLAS call), its null is simulated once per reference (and window size), and
it has full power at window 1,000 in the setting above.

Categorical features are excluded (their codes have no meaningful product;
their marginals are chi-squared's job), and so are constant reference columns
(no scale to standardise with). A mean shift of two features at once also
moves their cross-moment; the per-feature KS tests say which features.
"""

from __future__ import annotations

import ctypes
import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache, partial

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import special
from scipy.linalg import blas
from scipy.stats import skew
from threadpoolctl import ThreadpoolController

from monitor.drift import _kernels, _tasks
from monitor.drift._checks import FloatArray, as_finite_2d, check_alpha
from monitor.drift.effect_size import column_mean_std

__all__ = ["MIN_ALPHA", "CorrelationReference", "CorrelationResult", "draws_for"]

REFERENCE_COVERAGE = 0.9
"""The threshold holds the level for references whose own noise is below this quantile."""

CLIP_QUANTILE = 0.005
"""Values beyond the reference's 0.5% and 99.5% quantiles are clipped to them (see module doc)."""

CALIBRATION_ROWS = 256
"""Null windows are simulated with at most this many rows, then rescaled (see ``null_statistics``)."""

DEFAULT_DRAWS = 1000
"""Simulated null windows per window size (the p-value's resolution is 1/1001)."""

MIN_ALPHA = 1e-5
"""The smallest level the test runs at: ``draws_for(MIN_ALPHA)`` is 100,000 simulated windows,
once per reference (3 s for 64 features at 1e-4 on a busy 2-core machine; the cost goes as ``1 / alpha``)."""


@cache
def _blas() -> ThreadpoolController:
    """The process's BLAS libraries, found once (~7 ms: it inspects the loaded libraries)."""
    return ThreadpoolController()


@contextmanager
def _one_blas_thread() -> Iterator[None]:
    """BLAS on the calling thread only, for one window's product (~10 us to set and reset).

    Why: OpenBLAS's threads spin while they wait for work; on a 2-core machine
    shared with other work (a sidecar beside its model server) the 2-thread
    product of a 10k x 256 window measured 2-7x slower than one thread, and
    a window's product is small enough (~25 ms at 10k x 256) not to need more.
    """
    with _blas().limit(limits=1, user_api="blas"):
        yield


@cache
def _dsyrk_nogil() -> Callable[..., None] | None:
    """scipy's own BLAS ``dsyrk`` (the routine ``scipy.linalg.blas.dsyrk`` wraps), called
    through ctypes, which releases the GIL; None where scipy does not export it.

    Why: the f2py wrapper holds the GIL for the whole product (~16 ms at 10k x 256),
    so the KS blocks beside it (:meth:`monitor.drift.ks.SortedReference.test_window`)
    could not even be handed to the other thread: 2 threads took as long as one
    (27-30 ms against 17-18 ms through ctypes, a product beside 256 rows' sorts).
    The same routine with the same arguments gives the same bits (tested).
    """
    try:
        from scipy.linalg import cython_blas

        capsule = cython_blas.__pyx_capi__["dsyrk"]
        api = ctypes.pythonapi
        api.PyCapsule_GetName.restype = ctypes.c_char_p
        api.PyCapsule_GetName.argtypes = [ctypes.py_object]
        api.PyCapsule_GetPointer.restype = ctypes.c_void_p
        api.PyCapsule_GetPointer.argtypes = [ctypes.py_object, ctypes.c_char_p]
        address = api.PyCapsule_GetPointer(capsule, api.PyCapsule_GetName(capsule))
    except (ImportError, AttributeError, KeyError, ValueError):  # pragma: no cover - another scipy
        return None
    int_p, double_p = ctypes.POINTER(ctypes.c_int), ctypes.POINTER(ctypes.c_double)
    prototype = ctypes.CFUNCTYPE(None, ctypes.c_char_p, ctypes.c_char_p, int_p, int_p, double_p, ctypes.c_void_p,
                                 int_p, double_p, ctypes.c_void_p, int_p)
    return prototype(address)


def _moments_t(zt: NDArray[np.float64]) -> NDArray[np.float64]:
    """``zt @ zt.T / m`` of a C-ordered (F', m) array, upper triangle only (Fortran order):
    ``blas.dsyrk(1 / m, zt.T, trans=1)``, the GIL released while it runs."""
    fp, m = zt.shape
    # As scipy's wrapper calls it: a = zt.T (m x F', Fortran, lda = m), trans T.
    return _syrk_upper(zt, fp, m, b"T", m, lambda: blas.dsyrk(1.0 / m, zt.T, trans=1))


def _moments_rows(z: NDArray[np.float64]) -> NDArray[np.float64]:
    """``z.T @ z / rows`` of a C-ordered (rows, F') block, upper triangle only (Fortran order):
    ``blas.dsyrk(1 / rows, z.T)``, the same routine and arguments (so the same bits), the GIL
    released while it runs (see :func:`_dsyrk_nogil`)."""
    rows, fp = z.shape
    # As scipy's wrapper calls it: a = z.T (F' x rows, Fortran, lda = F'), trans N.
    return _syrk_upper(z, fp, rows, b"N", fp, lambda: blas.dsyrk(1.0 / rows, z.T))


def _syrk_upper(
    a: NDArray[np.float64], n: int, k: int, trans: bytes, lda: int, wrapped: Callable[[], object]
) -> NDArray[np.float64]:
    """``dsyrk`` (uplo U, alpha ``1 / k``) of the C-ordered ``a`` read as the Fortran matrix
    scipy's wrapper would pass: the (n, n) result, upper triangle only, through
    :func:`_dsyrk_nogil`; ``wrapped()`` (scipy's wrapper, the GIL held) where that cannot
    serve."""
    dsyrk = _dsyrk_nogil()
    if dsyrk is None or not a.flags.c_contiguous or k >= 2**31:  # pragma: no cover - another scipy
        return np.asarray(wrapped())
    out = np.zeros((n, n), dtype=np.float64, order="F")
    n_, k_, lda_ = ctypes.c_int(n), ctypes.c_int(k), ctypes.c_int(lda)
    alpha, beta = ctypes.c_double(1.0 / k), ctypes.c_double(0.0)
    dsyrk(b"U", trans, ctypes.byref(n_), ctypes.byref(k_), ctypes.byref(alpha), a.ctypes.data,
          ctypes.byref(lda_), ctypes.byref(beta), out.ctypes.data, ctypes.byref(n_))
    return out


def pearson3_sf(x: float, skewness: float, loc: float, scale: float) -> float:
    """``scipy.stats.pearson3.sf(x, skewness, loc=loc, scale=scale)`` for scalars, the same bits.

    The same special functions on the same arguments as scipy, without its
    distribution machinery (~100 us a call, where the window's p-value and the
    bisection of :meth:`CorrelationReference.threshold` call it up to ~100 times).

    >>> from scipy.stats import pearson3
    >>> pearson3_sf(2.5, 0.8, 1.0, 0.7) == float(pearson3.sf(2.5, 0.8, loc=1.0, scale=0.7))
    True
    """
    z = (x - loc) / scale
    if abs(skewness) < 0.000016:  # scipy's switch to the normal law
        return float(special.ndtr(-z))
    beta = 2.0 / skewness
    alpha = beta * beta  # as numpy squares an array (Python's ** 2 may round otherwise)
    t = beta * (z - (0.0 - alpha / beta))
    if skewness > 0:  # gamma.sf(t, alpha); its support starts at 0
        return 1.0 if t <= 0 else float(special.gammaincc(alpha, t))
    return 0.0 if t <= 0 else float(special.gammainc(alpha, t))  # gamma.cdf(t, alpha)


def draws_for(alpha: float) -> int:
    """Simulated null windows for a test at ``alpha``: ``DEFAULT_DRAWS``, or enough for the
    Monte Carlo p-value to reach ``alpha`` (``(n_draws + 1) * alpha >= 1``) at smaller levels.

    >>> draws_for(0.05), draws_for(1e-3), draws_for(1e-4)
    (1000, 1000, 10000)
    """
    return max(DEFAULT_DRAWS, math.ceil(1.0 / alpha))


@dataclass(frozen=True, slots=True)
class CorrelationResult:
    """One window's cross-moment test.

    ``effect_size`` is the root-mean-square change of the pairs'
    cross-moments (correlation units), ``threshold`` the statistic's critical
    value at ``alpha`` for this window size.
    """

    statistic: float
    p_value: float
    threshold: float
    effect_size: float
    drifted: bool
    n_features: int


class CorrelationReference:
    """Reference side of the cross-moment test, computed once per reference.

    Parameters
    ----------
    reference : array_like, shape (n, F)
        Reference rows, finite values.
    alpha : float
        Level of the test, in (0, 1).
    n_draws : int
        Simulated null windows per window size (at least ``ceil(1 / alpha)``,
        or no window could ever be significant).
    seed : int
        Seed of the null simulation: the same reference gives the same
        thresholds on every replica.
    threads : int or None
        Threads of the compiled standardisation (None: every core numba sees).

    Attributes
    ----------
    columns : ndarray of int
        The reference columns the test uses (non-constant ones).

    Examples
    --------
    >>> rng = np.random.default_rng(5)
    >>> ref = rng.normal(size=(5000, 6))
    >>> test = CorrelationReference(ref, alpha=0.05)
    >>> same = rng.normal(size=(1000, 6))
    >>> test.test(same).drifted
    False
    >>> shared = rng.normal(size=(1000, 1))  # features 0-2 now move together
    >>> moved = same.copy()
    >>> moved[:, :3] = np.sqrt(0.8) * shared + np.sqrt(0.2) * moved[:, :3]
    >>> result = test.test(moved)
    >>> result.drifted, result.p_value < 1e-6, round(result.effect_size, 2)
    (True, True, 0.36)
    """

    def __init__(
        self,
        reference: ArrayLike,
        alpha: float = 0.05,
        n_draws: int = DEFAULT_DRAWS,
        seed: int = 0,
        threads: int | None = None,
    ) -> None:
        self.alpha = check_alpha(alpha)
        self.threads = threads
        if int(n_draws) != n_draws or n_draws < 1:
            raise ValueError(f"n_draws must be a positive integer, got {n_draws!r}")
        if (n_draws + 1) * self.alpha < 1:
            raise ValueError(
                f"n_draws={n_draws} is too few for alpha={alpha}: need at least {int(np.ceil(1 / alpha)) - 1}"
            )
        ref = as_finite_2d(reference, "reference")
        if ref.shape[0] < 2:
            raise ValueError("reference must have at least two rows")
        self.n_draws = int(n_draws)
        self.seed = int(seed)
        self.n: int = int(ref.shape[0])
        self.n_input_features: int = int(ref.shape[1])
        # Winsorising bounds: the reference's CLIP_QUANTILE tails, or its range for a column
        # whose tails are a single value (e.g. 99.5% zeros), where clipping would erase it.
        lo, hi = np.quantile(ref, [CLIP_QUANTILE, 1.0 - CLIP_QUANTILE], axis=0)
        flat = lo >= hi
        lo = np.where(flat, ref.min(axis=0), lo)
        hi = np.where(flat, ref.max(axis=0), hi)
        clipped = np.clip(ref, lo, hi)
        mean, std = column_mean_std(clipped)
        self.columns: NDArray[np.intp] = np.flatnonzero(std > 0)
        self.n_features = int(self.columns.size)
        self._lo, self._hi = lo[self.columns], hi[self.columns]
        self.mean, self.std = mean[self.columns], std[self.columns]
        # Standardised reference, kept for the null simulation.
        self._z: NDArray[np.float64] = (clipped[:, self.columns] - self.mean) / self.std
        z = self._z
        self.moments: NDArray[np.float64] = (z.T @ z) / self.n
        var = ((z * z).T @ (z * z)) / self.n - self.moments**2
        # Pairs whose product never varies in the reference (e.g. two columns that are
        # never non-zero together) have no null spread to calibrate against: left out.
        self._pairs: NDArray[np.bool_] = np.triu(var > 1e-12, 1)
        self.n_pairs: int = int(self._pairs.sum())
        # The same pairs as flat indices, and the reference's moments there: a window's
        # ``moments.take`` reads them in the mask's order (the same bits) ~4x faster than
        # boolean indexing (~0.6 ms at 256 features, of a ~13 ms warm window).
        self._pair_index: NDArray[np.intp] = np.flatnonzero(self._pairs)
        # Input column -> its row in a standardised window (-1: not used), for window_rows.
        self._positions: NDArray[np.intp] = np.full(self.n_input_features, -1, dtype=np.intp)
        self._positions[self.columns] = np.arange(self.n_features)
        self._ref_pairs: NDArray[np.float64] = self.moments.take(self._pair_index)
        self._draws_cache: dict[int, NDArray[np.float64]] = {}
        self._null: dict[int, NDArray[np.float64]] = {}
        self._shape: dict[int, tuple[float, float, float]] = {}
        self._threshold: dict[int, float] = {}

    @property
    def applicable(self) -> bool:
        """False when fewer than two usable columns leave no pair to test."""
        return self.n_pairs > 0

    def _standardise(self, windows: NDArray[np.float64]) -> NDArray[np.float64]:
        """Winsorised at the reference's bounds, standardised with its mean and std."""
        return (np.clip(windows[..., self.columns], self._lo, self._hi) - self.mean) / self.std

    def _statistics_z(self, z: NDArray[np.float64]) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """Statistics and RMS moment changes of standardised windows (k, m, F')."""
        m = z.shape[-2]
        moments = np.matmul(np.swapaxes(z, -1, -2), z) / m
        stat = np.einsum("kij,ij->k", (moments - self.moments) ** 2, self._pairs)
        return stat, np.sqrt(stat / max(self.n_pairs, 1))

    def window_statistic(self, window: NDArray[np.float64], threads: int | None = None) -> tuple[float, float]:
        """Statistic and RMS moment change of one validated (m, F) window of finite floats.

        :meth:`_statistics_z` for one window, in two passes instead of seven: the
        compiled standardisation writes the window transposed, and BLAS's
        symmetric product (``dsyrk``) computes the upper triangle only, half of
        ``z.T @ z``, which is all the statistic reads. ``threads``: of the
        standardisation (None: the reference's); the values do not depend on it.
        The detector standardises a window as its KS blocks transpose it
        instead (:meth:`window_rows`).
        """
        zt = _kernels.standardise_t(window, self.columns, self._lo, self._hi, self.mean, self.std,
                                    self.threads if threads is None else threads)
        return self.standardised_statistic(zt)

    def window_rows(self, m: int) -> tuple[NDArray[np.float64], Callable[[FloatArray, int, int], None]]:
        """An empty standardised window (F', m) and the function that fills it from the window's
        columns as rows (``rows[f0:f1, :m]``, features ``f0:f1`` of the input): what
        :meth:`monitor.drift.ks.SortedReference.test_window` calls as it transposes them for
        KS, so the window is read once for both tests. The same values as
        :meth:`window_statistic`'s standardisation (float32 rows, the monitor's, are read
        as the float64 values they equal); then :meth:`standardised_statistic`."""
        zt = np.empty((self.n_features, m), dtype=np.float64)
        pos = self._positions

        def fill(rows: FloatArray, f0: int, f1: int) -> None:
            _kernels.standardise_rows(rows, pos, self._lo, self._hi, self.mean, self.std, zt, f0, f1)

        return zt, fill

    def standardised_statistic(self, zt: NDArray[np.float64]) -> tuple[float, float]:
        """Statistic and RMS moment change of a standardised window, transposed (F', m)."""
        with _one_blas_thread():
            moments = _moments_t(zt)
        stat = float(np.sum((moments.take(self._pair_index) - self._ref_pairs) ** 2))
        return stat, math.sqrt(stat / max(self.n_pairs, 1))

    def chunk_statistic(self, start: int, stop: int) -> float:
        """:meth:`window_statistic` of the reference's own rows ``[start, stop)`` (a chunk for the
        effect floors, :mod:`monitor.drift.reference_chunks`): they are standardised already."""
        with _one_blas_thread():
            return self._rows_statistic(start, stop)

    def chunk_statistics(self, size: int, n_chunks: int) -> NDArray[np.float64]:
        """:meth:`chunk_statistic` of the chunks ``[c * size, (c + 1) * size)``, ``c < n_chunks``:
        the same bits, for a tenth of the overhead and on every thread.

        One BLAS thread limit around them all (entering threadpoolctl costs
        ~20 us idle, ~0.2 ms on a loaded machine, against ~0.1-2 ms a
        chunk's product), and the chunks shared out between the caller and
        its helpers (:mod:`monitor.drift._tasks`, ``threads``): each product
        releases the GIL. At F=256, 10 chunks of 1k rows: ~19 ms on one
        thread, the bulk of a window size's floors.
        """
        out = np.empty(n_chunks, dtype=np.float64)

        def one(c: int) -> None:
            out[c] = self._rows_statistic(c * size, (c + 1) * size)

        threads = 1 if n_chunks * size * self.n_features < _kernels.SMALL_WORK else _kernels.threads_for(self.threads)
        with _one_blas_thread():
            _tasks.run([partial(one, c) for c in range(n_chunks)], threads)
        return out

    def _rows_statistic(self, start: int, stop: int) -> float:
        """The statistic of standardised reference rows ``[start, stop)``, BLAS limited by the caller."""
        moments = _moments_rows(self._z[start:stop])
        return float(np.sum((moments.take(self._pair_index) - self._ref_pairs) ** 2))

    def statistics(self, windows: ArrayLike) -> NDArray[np.float64]:
        """The statistic ``T`` of a stack of windows, shape (k, m, F) -> (k,).

        Vectorised (one batched matrix product): what the calibration and its
        tests use to evaluate many windows at once.
        """
        w = np.asarray(windows, dtype=np.float64)
        if w.ndim != 3 or w.shape[2] != self.n_input_features:
            raise ValueError(
                f"windows must have shape (k, m, {self.n_input_features}), got {w.shape}"
            )
        if w.shape[1] < 1:
            raise ValueError("windows must have at least one row")
        if not np.isfinite(w).all():
            raise ValueError("windows contain NaN or infinite values")
        return self._statistics_z(self._standardise(w))[0]

    def _draws(self, rows: int) -> NDArray[np.float64]:
        """Statistics of ``n_draws`` windows of ``rows`` rows drawn from the reference (cached)."""
        cached = self._draws_cache.get(rows)
        if cached is None:
            rng = np.random.default_rng([self.seed, rows])
            cached = np.empty(self.n_draws, dtype=np.float64)
            batch = max(1, 4_000_000 // max(rows * self.n_features, 1))
            with _one_blas_thread():  # many small products: threads would only wait on each other
                for start in range(0, self.n_draws, batch):
                    stop = min(start + batch, self.n_draws)
                    idx = rng.integers(0, self.n, size=(stop - start, rows))
                    cached[start:stop] = self._statistics_z(self._z[idx])[0]
            self._draws_cache[rows] = cached
        return cached

    def prepare(self) -> None:
        """Simulate the null draws that every window of ``CALIBRATION_ROWS`` rows or more uses."""
        self._draws(CALIBRATION_ROWS)
        _blas()

    def null_statistics(self, m: int) -> NDArray[np.float64]:
        """Simulated null statistics for windows of ``m`` rows against this reference, sorted.

        Windows of ``CALIBRATION_ROWS`` rows or more share one set of draws
        (at that size), rescaled by ``CALIBRATION_ROWS / m``: the statistic is
        a sum of squared means, so its scale goes as ``1/m`` while its shape
        is that of the smaller windows, whose tails are heavier (conservative).
        The reference's own noise adds a term distributed like ``m/n`` times
        the window's; it is fixed for a given reference, so the threshold
        covers its ``REFERENCE_COVERAGE`` quantile and widens the spread by the
        cross term (``sqrt(1 + 2 m / n)``) rather than averaging it away.
        """
        if m < 1:
            raise ValueError(f"window size must be >= 1, got {m}")
        cached = self._null.get(m)
        if cached is None:
            rows = min(m, CALIBRATION_ROWS)
            window_part = self._draws(rows) * (rows / m)
            ratio = m / self.n
            centre = float(window_part.mean())
            cached = np.sort(
                centre
                + (window_part - centre) * np.sqrt(1.0 + 2.0 * ratio)
                + ratio * float(np.quantile(window_part, REFERENCE_COVERAGE))
            )
            if len(self._null) >= 64:  # time windows: many sizes; keep the memory bounded
                oldest = next(iter(self._null))
                for table in (self._null, self._shape, self._threshold):
                    table.pop(oldest, None)
            self._null[m] = cached
            mu, sd = float(cached.mean()), float(cached.std())
            self._shape[m] = (mu, sd, float(skew(cached)) if sd > 0 else 0.0)
        return cached

    def p_value(self, statistic: float, m: int) -> float:
        """p-value of ``statistic`` for a window of ``m`` rows.

        Two estimates of the same tail: the Monte Carlo p-value
        ``(1 + #{T_b >= T}) / (n_draws + 1)`` and a Pearson type III curve
        with the draws' mean, standard deviation and skewness (smooth, and
        it extrapolates beyond the largest draw, so a rule on ``p < 0.001``
        can fire with 1,000 draws). The larger of the two is reported, except
        beyond the largest draw, where only the curve says anything.
        """
        null = self.null_statistics(m)
        exceed = null.size - int(np.searchsorted(null, statistic, side="left"))
        mc = (1.0 + exceed) / (null.size + 1.0)
        mu, sd, sk = self._shape[m]
        if sd <= 0:
            return mc
        curve = pearson3_sf(statistic, sk, mu, sd)
        return curve if exceed == 0 else max(mc, curve)

    def threshold(self, m: int) -> float:
        """The statistic's critical value at ``alpha`` for windows of ``m`` rows.

        ``p_value(T, m) <= alpha`` exactly when ``T >= threshold(m)`` (both
        tail estimates are non-increasing in ``T``); found by bisection once
        per size and cached.
        """
        cached = self._threshold.get(m)
        if cached is None:
            null = self.null_statistics(m)
            lo, hi = 0.0, float(null[-1])
            while self.p_value(hi, m) > self.alpha:
                lo, hi = hi, 2.0 * hi + 1e-300
            for _ in range(100):
                mid = 0.5 * (lo + hi)
                if self.p_value(mid, m) <= self.alpha:
                    hi = mid
                else:
                    lo = mid
                if hi - lo <= 1e-12 * hi:
                    break
            cached = hi
            self._threshold[m] = cached
        return cached

    def test(
        self, window: ArrayLike, checked: bool = False, statistic: tuple[float, float] | None = None
    ) -> CorrelationResult:
        """Test one (m, F) window against the reference.

        ``checked``: the caller has validated the window already (a 2-D float32 or
        float64 array of F finite columns), so it is not scanned again. ``statistic``:
        the window's :meth:`window_statistic`, if the caller computed it already (the
        window is then read for its size only: a float32 one is not upcast).
        """
        w = np.asarray(window) if checked else as_finite_2d(window, "window", self.n_input_features)
        m = int(w.shape[0])
        if m < 1:
            raise ValueError("window must have at least one row")
        if not self.applicable:
            raise ValueError("the reference has fewer than two non-constant columns: nothing to test")
        t, rms = self.window_statistic(np.asarray(w, dtype=np.float64)) if statistic is None else statistic
        p = self.p_value(t, m)
        return CorrelationResult(
            statistic=t,
            p_value=p,
            threshold=self.threshold(m),
            effect_size=rms,
            drifted=p <= self.alpha,
            n_features=self.n_features,
        )
