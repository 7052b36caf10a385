"""Incremental two-sample KS over a sliding window (pure, in memory).

Why: a sliding window of ``m`` rows that advances by ``k << m`` rows would
otherwise re-sort ``m`` values and re-locate all of them in the reference on
every step. Here each feature keeps two histograms of the window over the
reference's rank buckets: ``A[j] = #{w : #ref < w = j}`` and
``B[j] = #{w : #ref <= w = j}``. A step locates only the ``k`` new values in
the reference (``O(k log n)``), takes the ``k`` leaving values' ranks from a
ring buffer, and updates both histograms; the statistic is one vectorised
cumulative sum over the ``n + 1`` buckets of every feature.

Exactness (the window's own jumps included). For a reference value ``v``
with ``lo = #ref < v`` and ``hi = #ref <= v``:

- ``#win <= v = #{w : rank_left(w) <= hi - 1}`` and
  ``#win < v = #{w : rank_right(w) <= lo}``;
- ``F_ref - F_win`` is largest at a reference value (between two reference
  values ``F_ref`` is flat and ``F_win`` grows);
- ``F_win - F_ref`` is largest just before a reference value, after all the
  window points of the gap, which is ``#win < v`` against ``#ref < v``.

So both suprema over the real line are read at the reference values, with
every window jump counted, and the lattice statistic ``h = D * lcm(n, m)``
is the same integer as :class:`monitor.drift.ks.SortedReference` gives and
as scipy's ``ks_2samp``. Cost per step: ``O(F (k log n + n))``, independent
of the window size, so it suits references up to ~10x the window.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

from monitor.drift import _kernels
from monitor.drift._checks import as_2d_with_missing, check_alpha
from monitor.drift.corrections import Correction, reject
from monitor.drift.ks import KSMethod, SortedReference, ks_critical_h, ks_lattice, ks_pvalues

__all__ = ["INCREMENTAL_MIN_RATIO", "SlidingKS", "incremental_pays"]

# An incremental report costs about F (n + k) (the step's ranks and histogram moves, the
# statistic's pass over the n + 1 buckets); a full recompute about F m (sorting the window
# and merging it with the reference); the rest of a report (p-values, the multivariate
# test, prediction drift) is the same either way. Measured with the monitor's detector
# (benchmarks/drift.py --sliding-only, six runs, benchmarks/RESULTS.md): below m = 8 (n + k)
# the whole test was faster in every run (1.1-6.6x; at the defaults, 10k rows stepped by 1k
# against a 10k reference, 1.5-2.7x); from 8 to 17 (n + k) either one, by up to 1.3x, from
# run to run; at 33-50 (n + k) the step won by 1.3-1.7x, or tied.
INCREMENTAL_MIN_RATIO = 20


def incremental_pays(n_ref: int, window: int, step: int) -> bool:
    """Whether a sliding window of ``window`` rows advancing by ``step`` against a reference
    of ``n_ref`` rows is cheaper stepped (:class:`SlidingKS`) than tested whole.

    The monitor's reporter keeps a :class:`SlidingKS` only where this holds; the
    statistics, p-values and decisions are the same either way (a full test also
    reports every feature's effect size, not only the significant ones').

    >>> incremental_pays(10_000, 10_000, 1_000), incremental_pays(10_000, 100_000, 1_000)
    (False, False)
    >>> incremental_pays(1_000, 50_000, 500)
    True
    """
    return window >= INCREMENTAL_MIN_RATIO * (n_ref + step)


class SlidingKS:
    """KS statistics of a fixed-size sliding window against a fixed reference.

    Parameters
    ----------
    reference : SortedReference or array_like (n, F)
        The reference (sorted once).
    window : array_like, shape (m, F)
        The initial window, oldest row first.

    Examples
    --------
    >>> from scipy.stats import ks_2samp
    >>> rng = np.random.default_rng(0)
    >>> ref, stream = rng.normal(size=(1000, 2)), rng.normal(size=(700, 2))
    >>> sk = SlidingKS(ref, stream[:500])
    >>> sk.step(stream[500:600])  # 100 new rows in, 100 oldest out
    >>> d = sk.statistic()
    >>> bool(abs(d[1] - ks_2samp(ref[:, 1], stream[100:600, 1]).statistic) < 1e-12)
    True
    """

    def __init__(self, reference: SortedReference | ArrayLike, window: ArrayLike) -> None:
        self.reference = (
            reference if isinstance(reference, SortedReference) else SortedReference(reference)
        )
        ref = self.reference
        f, n = ref.n_features, ref.n
        if ref.ragged:
            raise ValueError("the reference has missing values: no incremental KS (test windows whole)")
        win, _ = as_2d_with_missing(window, "window", f)
        if win.shape[0] == 0:
            raise ValueError("window must have at least one row")
        self.m: int = int(win.shape[0])
        # NaN (missing) values in the ring. They get some rank like any value, the
        # same one when they leave, so the histograms are exact again once none is
        # left; meanwhile the statistic would be wrong and is refused.
        self.missing: int = int(np.isnan(win).sum())
        # Ring buffer (F, m) of raw rows and their reference ranks; column
        # `self._head` is the oldest row.
        self._raw: NDArray[np.float64] = np.ascontiguousarray(win.T)
        self._rl, self._rr = self._ranks(self._raw)
        self._head = 0
        self._base = (np.arange(f, dtype=np.int64) * (n + 1))[:, None]
        size = f * (n + 1)
        self._hist_l = np.bincount((self._rl + self._base).ravel(), minlength=size)
        self._hist_r = np.bincount((self._rr + self._base).ravel(), minlength=size)
        # Window points equal to a reference value (rank_right > rank_left):
        # while there are none, the two histograms coincide.
        self._n_equal = int((self._rr != self._rl).sum())
        # Per reference position i: lo(i) = #ref < r_i, hi(i) = #ref <= r_i.
        self._lo: NDArray[np.int64] | None = None
        self._hi: NDArray[np.int64] | None = None
        if ref.has_ties.any():
            self._lo, self._hi = self._ranks(ref.sorted)

    def _ranks(self, values: NDArray[np.float64]) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
        """``#ref < v`` and ``#ref <= v`` for each row of ``values`` (F, k).

        Keys are searched in sorted order (3x faster binary searches: each
        search starts where the previous ended) and scattered back.
        """
        ref = self.reference.sorted
        rl = np.empty(values.shape, dtype=np.int64)
        rr = np.empty(values.shape, dtype=np.int64)
        if _kernels.HAVE_NUMBA and values.shape[1]:
            _kernels.ranks(
                self.reference.padded,
                self.reference.n,
                self.reference.has_ties,
                np.ascontiguousarray(values),
                rl,
                rr,
            )
            return rl, rr
        last = self.reference.n - 1
        order = np.argsort(values, axis=1)
        keys = np.take_along_axis(values, order, axis=1)
        for f in range(values.shape[0]):
            left = np.searchsorted(ref[f], keys[f], side="left")
            right = (
                np.searchsorted(ref[f], keys[f], side="right")
                if self.reference.has_ties[f]
                else left + (ref[f][np.minimum(left, last)] == keys[f])
            )
            rl[f, order[f]] = left
            rr[f, order[f]] = right
        return rl, rr

    @property
    def window(self) -> NDArray[np.float64]:
        """The current window as (m, F), oldest row first (a copy)."""
        order = (np.arange(self.m) + self._head) % self.m
        return self._raw[:, order].T.copy()

    def step(self, new_rows: ArrayLike) -> None:
        """Slide by ``k = len(new_rows)``: drop the ``k`` oldest rows, append the new ones.

        ``k`` must not exceed the window size (use a new instance for a jump).
        """
        f = self.reference.n_features
        new, new_missing = as_2d_with_missing(new_rows, "new_rows", f)
        k = int(new.shape[0])
        if k == 0:
            return
        if k > self.m:
            raise ValueError(f"a step of {k} rows exceeds the window of {self.m}")
        if self.missing:
            self.missing -= int(np.isnan(self._raw[:, (self._head + np.arange(k)) % self.m]).sum())
        if new_missing:
            self.missing += int(np.isnan(new).sum())
        vals = np.ascontiguousarray(new.T)
        add_l, add_r = self._ranks(vals)
        if _kernels.HAVE_NUMBA:
            self._n_equal += _kernels.slide(
                self._hist_l.reshape(f, self.reference.n + 1),
                self._hist_r.reshape(f, self.reference.n + 1),
                self._raw, self._rl, self._rr, self._head, vals, add_l, add_r,
            )
        else:
            cols = (self._head + np.arange(k)) % self.m
            self._n_equal += int((add_r != add_l).sum())
            self._n_equal -= int((self._rr[:, cols] != self._rl[:, cols]).sum())
            np.subtract.at(self._hist_l, (self._rl[:, cols] + self._base).ravel(), 1)
            np.subtract.at(self._hist_r, (self._rr[:, cols] + self._base).ravel(), 1)
            np.add.at(self._hist_l, (add_l + self._base).ravel(), 1)
            np.add.at(self._hist_r, (add_r + self._base).ravel(), 1)
            self._raw[:, cols] = vals
            self._rl[:, cols] = add_l
            self._rr[:, cols] = add_r
        self._head = (self._head + k) % self.m

    def statistic_h(self) -> NDArray[np.int64]:
        """Lattice statistics ``h = D * lcm(n, m)`` per feature (refused while the
        window holds a missing value: test it with ``ks_2samp_many`` or the detector)."""
        if self.missing:
            raise ValueError("the window holds missing values: the incremental statistic does not apply")
        ref = self.reference
        f, n = ref.n_features, ref.n
        _, a, b = ks_lattice(n, self.m)
        if _kernels.HAVE_NUMBA:
            out = np.empty(f, dtype=np.int64)
            has_lohi = self._lo is not None and self._hi is not None
            empty = np.zeros((f, 0), dtype=np.int64)
            _kernels.sliding_h(
                self._hist_l.reshape(f, n + 1),
                self._hist_r.reshape(f, n + 1),
                self._lo if self._lo is not None else empty,
                self._hi if self._hi is not None else empty,
                has_lohi,
                a,
                b,
                out,
            )
            return out
        cum_l = np.cumsum(self._hist_l.reshape(f, n + 1), axis=1)  # #win with rank_left <= j
        if self._lo is None and self._n_equal == 0:
            # Common continuous case: one pass, t_i = b #win<=r_i - a i, and
            # a (i + 1) - b #win<=r_i = a - t_i.
            t = cum_l[:, :n] * b
            t -= a * np.arange(n, dtype=np.int64)
            d_plus = a - t.min(axis=1)
            d_minus = t.max(axis=1)
            return np.maximum(np.maximum(d_plus, d_minus), 0).astype(np.int64)
        cum_r = np.cumsum(self._hist_r.reshape(f, n + 1), axis=1)  # #win with rank_right <= j
        if self._lo is None or self._hi is None:
            i = np.arange(n, dtype=np.int64)
            d_plus = ((i + 1) * a - b * cum_l[:, :n]).max(axis=1)
            d_minus = (b * cum_r[:, :n] - a * i).max(axis=1)
        else:
            d_plus = (a * self._hi - b * np.take_along_axis(cum_l, self._hi - 1, axis=1)).max(
                axis=1
            )
            d_minus = (b * np.take_along_axis(cum_r, self._lo, axis=1) - a * self._lo).max(axis=1)
        return np.maximum(np.maximum(d_plus, d_minus), 0).astype(np.int64)

    def statistic(self) -> NDArray[np.float64]:
        """KS statistic ``D`` per feature, identical to ``scipy.stats.ks_2samp``."""
        lcm, _, _ = ks_lattice(self.reference.n, self.m)
        return self.statistic_h() / lcm

    def pvalues(self, method: KSMethod = "auto") -> NDArray[np.float64]:
        """scipy-identical p-values per feature (costly for large windows, see ks.py)."""
        return ks_pvalues(self.reference.n, self.m, self.statistic_h(), method)[0]

    def drifted(
        self, alpha: float = 0.05, correction: Correction = "bonferroni", method: KSMethod = "auto"
    ) -> NDArray[np.bool_]:
        """Per-feature decisions; Bonferroni and none use the cached critical value."""
        check_alpha(alpha)
        f = self.reference.n_features
        if correction == "fdr_bh":
            return reject(self.pvalues(method), alpha, correction)
        if correction not in ("bonferroni", "none"):
            raise ValueError(f"unknown correction {correction!r}")
        level = alpha / f if correction == "bonferroni" else alpha
        return self.statistic_h() >= ks_critical_h(self.reference.n, self.m, level, method)

