"""Compiled inner loops (numba), with the pure-numpy engine as the fallback.

Why numba: the vectorised numpy KS pays one binary search per window point
per feature (``O(m log n)``, ~12 ms at 64 features x 10k x 10k) and a
second pass for the Wasserstein distance (~13 ms). A branch-free merge of the
presorted reference column with the sorted window column computes the exact
lattice KS statistic *and* W1 in one ``O(n + m)`` pass, four feature rows per
loop (~2.5-3 ms for the same case on one thread), which is what takes the engine
past 10x Alibi Detect. Without numba (``import numba`` fails, or
``DRIFTWATCH_NO_NUMBA=1``) every caller falls back to the numpy code, which
gives the same integers.

Threads. The KS merge runs in blocks of feature rows (:func:`ks_w1`), which
the caller and helper threads take as they come free
(:mod:`monitor.drift._tasks`: a window's blocks are transposed, sorted and
merged there, beside the cross-moment product); the chunk floors and the
standardisation of the cross-moment test are ``parallel=True`` with
``prange``. Each feature row is one thread's work, in a fixed order, so
results do not depend on the thread count (``DriftConfig.threads``,
``DRIFTWATCH_DRIFT_THREADS``; default every core numba sees). Compiled once
into numba's on-disk cache (``cache=True``, ``NUMBA_CACHE_DIR``) and loaded
when a detector is built (:func:`load`, from ``DriftDetector.prepare``), never
in a window's report.

The kernels take their inputs already validated (finite floats, rows padded
with one ``+inf`` sentinel): they are private to :mod:`monitor.drift`.
"""

from __future__ import annotations

import math
import os
import threading
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from monitor.drift import _tasks

__all__ = [
    "HAVE_NUMBA",
    "MAX_THREADS",
    "MERGE_BLOCK",
    "blocks",
    "chunk_w1",
    "ks_exact_inside",
    "ks_exact_square",
    "ks_w1",
    "ks_w1_rows",
    "load",
    "merge_pair",
    "quota_cpus",
    "ranks",
    "slide",
    "sliding_h",
    "standardise_rows",
    "standardise_t",
    "threads_for",
    "transpose_pad",
]



def quota_cpus(cgroup: Path = Path("/sys/fs/cgroup")) -> int | None:
    """Whole CPUs the process's cgroup quota allows (rounded up), or None without a quota.

    numba sizes its thread pool by CPU affinity; a container limited to 1 CPU
    on a 32-core host would split every kernel 32 ways and be throttled.
    Reads cgroup v2's ``cpu.max`` (``"<quota> <period>"`` or ``"max ..."``),
    else v1's ``cpu.cfs_quota_us`` / ``cpu.cfs_period_us`` (quota -1: none).
    """
    try:
        v2 = cgroup / "cpu.max"
        if v2.exists():
            quota, period = v2.read_text().split()[:2]
            return None if quota == "max" else max(1, math.ceil(int(quota) / int(period)))
        q = int((cgroup / "cpu" / "cpu.cfs_quota_us").read_text())
        per = int((cgroup / "cpu" / "cpu.cfs_period_us").read_text())
        return None if q <= 0 or per <= 0 else max(1, math.ceil(q / per))
    except (OSError, ValueError):
        return None


_jit: Callable[..., Any] | None
_jit_parallel: Callable[..., Any] | None
_set_threads: Callable[[int], None] | None
prange: Callable[..., Any] = range
MAX_THREADS: int = os.cpu_count() or 1
"""Threads the parallel kernels may use: numba's ``NUMBA_NUM_THREADS`` (the CPUs of the process's
affinity by default), at most the cgroup's CPU quota (:func:`quota_cpus`)."""
try:
    if os.environ.get("DRIFTWATCH_NO_NUMBA", "").strip() not in ("", "0"):
        raise ImportError("disabled by DRIFTWATCH_NO_NUMBA")
    import numba
    from numba import njit as _numba_njit
    from numba import prange

    # cache=True: compiled once into __pycache__ and loaded from there by later processes
    # (a first window pays a load of ~10 ms, not a compile of seconds).
    _jit = _numba_njit(cache=True, nogil=True)
    _jit_parallel = _numba_njit(cache=True, nogil=True, parallel=True)
    _set_threads = numba.set_num_threads
    MAX_THREADS = int(numba.config.NUMBA_NUM_THREADS)  # type: ignore[attr-defined]
    MAX_THREADS = min(MAX_THREADS, quota_cpus() or MAX_THREADS)
    if "NUMBA_THREADING_LAYER" not in os.environ:
        # numba would pick OpenMP where present, whose idle threads spin: on a 2-core machine
        # shared with other work a 2-thread launch then measured 2-8x slower than one thread now
        # and then; the workqueue layer's threads sleep, and it is always available.
        numba.config.THREADING_LAYER = "workqueue"  # type: ignore[attr-defined]
except ImportError:  # pragma: no cover - exercised when numba is absent
    _jit = _jit_parallel = _set_threads = None

HAVE_NUMBA: bool = _jit is not None

SMALL_WORK = 1 << 18
"""Below this many values a kernel runs on the calling thread alone: waking the others costs
more than they save (~1 ms a launch, measured on a loaded 2-core machine, for ~0.1 ms of work)."""

_PARALLEL = threading.Lock()
"""One parallel kernel at a time: numba's workqueue layer must not be entered from two threads
at once (detectors run in ``asyncio.to_thread`` workers), and the thread count is set per
calling thread just before the launch. Each launch uses every thread it is given."""


def _merge_pair_py(
    ref: NDArray[np.float64],
    win: NDArray[np.float64],
    a: int,
    b: int,
    want_w1: bool,
    h_out: NDArray[np.int64],
    w1_out: NDArray[np.float64],
    f: int,
    g: int,
) -> None:  # pragma: no cover - compiled by numba; the Python body is the specification
    """Feature rows ``f`` and ``g``: lattice KS ``h`` and ``lcm * W1`` of two padded sorted rows each.

    ``ref`` is (F, n + 1) and ``win`` (F, m + 1), each row sorted with a
    ``+inf`` sentinel in its last slot. Walking the merged order (reference
    first on ties), ``d = a * i - b * j`` is ``lcm * (F_ref - F_win)`` after
    ``i`` reference and ``j`` window points. The ECDFs are right-continuous,
    so ``d`` is a value of the difference only where the next merged value
    differs from the current one (after a whole tie group): only there does
    ``|d|`` enter the supremum ``h`` (one running maximum of ``|d|``: the
    same integer as the larger of ``max d`` and ``-min d``, one register and
    two operations fewer a step). Between two merged values the difference is
    constant, so ``W1 * lcm = sum |d| (next - current)`` (ties contribute 0
    width). The selects compile to conditional moves: no unpredictable branch.

    Why two rows in one loop: each step waits for the load its own index
    selects (a chain of ~20 cycles), so one row at a time leaves the core
    idle; two independent chains interleaved run ~1.5x faster, and each row
    keeps its own order of operations (the same bits as one at a time).
    ``f == g`` is allowed (an odd last row). :func:`_merge_quad_py` takes
    four. ``j`` is kept as its own counter rather than ``step - i``: derived,
    it lengthens the chain from ``i`` to the next load (measured 1.2-1.6x slower).

    ``ref`` and ``win`` are both float64, or both float32 (the monitor's
    windows and references): the comparisons are then those of the same
    values as float64, and W1 is accumulated in float64 from the float64
    values of ``nxt`` and ``v``, so ``h`` and W1 have the bits of the float64
    rows (a float64 row converts to itself). Converting each window value
    inside the loop instead (float32 window, float64 reference) lengthened
    the dependency chain: ~15% slower than either.
    """
    n = ref.shape[1] - 1
    m = win.shape[1] - 1
    r, w, r2, w2 = ref[f], win[f], ref[g], win[g]
    i = j = i2 = j2 = 0
    h = h2 = 0
    acc = acc2 = 0.0
    for _ in range(n + m - 1):
        rv, wv, rv2, wv2 = r[i], w[j], r2[i2], w2[j2]
        take = 1 if rv <= wv else 0
        take2 = 1 if rv2 <= wv2 else 0
        v, v2 = min(rv, wv), min(rv2, wv2)
        i += take
        j += 1 - take
        i2 += take2
        j2 += 1 - take2
        d = abs(a * i - b * j)
        d2 = abs(a * i2 - b * j2)
        nxt, nxt2 = min(r[i], w[j]), min(r2[i2], w2[j2])
        h = max(h, d if nxt != v else 0)
        h2 = max(h2, d2 if nxt2 != v2 else 0)
        if want_w1:
            acc += d * (np.float64(nxt) - np.float64(v))
            acc2 += d2 * (np.float64(nxt2) - np.float64(v2))
    h_out[f] = h
    w1_out[f] = acc
    h_out[g] = h2
    w1_out[g] = acc2


def _merge_quad_py(
    ref: NDArray[np.float64],
    win: NDArray[np.float64],
    a: int,
    b: int,
    want_w1: bool,
    h_out: NDArray[np.int64],
    w1_out: NDArray[np.float64],
    f: int,
) -> None:  # pragma: no cover - compiled by numba; the Python body is the specification
    """:func:`_merge_pair_py` of rows ``f`` to ``f + 3``, four independent merges interleaved.

    Each row's step is the pair's, in the same order (so the same bits as
    the row merged alone); four dependency chains overlap where two still
    left the core waiting on loads. Measured in one process, alternating
    with the pair loop on the same float32 rows, one thread, F=64 10k x 10k:
    ~0.82x its time (with the single running maximum of ``|d|``; with the
    two maxima of the earlier pair loop, four rows gained only ~3%, likely
    spilling registers: x86-64 has 16).
    """
    n = ref.shape[1] - 1
    m = win.shape[1] - 1
    r0, w0, r1, w1 = ref[f], win[f], ref[f + 1], win[f + 1]
    r2, w2, r3, w3 = ref[f + 2], win[f + 2], ref[f + 3], win[f + 3]
    i0 = j0 = i1 = j1 = i2 = j2 = i3 = j3 = 0
    h0 = h1 = h2 = h3 = 0
    c0 = c1 = c2 = c3 = 0.0
    for _ in range(n + m - 1):
        a0, b0, a1, b1 = r0[i0], w0[j0], r1[i1], w1[j1]
        a2, b2, a3, b3 = r2[i2], w2[j2], r3[i3], w3[j3]
        t0 = 1 if a0 <= b0 else 0
        t1 = 1 if a1 <= b1 else 0
        t2 = 1 if a2 <= b2 else 0
        t3 = 1 if a3 <= b3 else 0
        v0, v1, v2, v3 = min(a0, b0), min(a1, b1), min(a2, b2), min(a3, b3)
        i0 += t0
        j0 += 1 - t0
        i1 += t1
        j1 += 1 - t1
        i2 += t2
        j2 += 1 - t2
        i3 += t3
        j3 += 1 - t3
        d0 = abs(a * i0 - b * j0)
        d1 = abs(a * i1 - b * j1)
        d2 = abs(a * i2 - b * j2)
        d3 = abs(a * i3 - b * j3)
        x0, x1 = min(r0[i0], w0[j0]), min(r1[i1], w1[j1])
        x2, x3 = min(r2[i2], w2[j2]), min(r3[i3], w3[j3])
        h0 = max(h0, d0 if x0 != v0 else 0)
        h1 = max(h1, d1 if x1 != v1 else 0)
        h2 = max(h2, d2 if x2 != v2 else 0)
        h3 = max(h3, d3 if x3 != v3 else 0)
        if want_w1:
            c0 += d0 * (np.float64(x0) - np.float64(v0))
            c1 += d1 * (np.float64(x1) - np.float64(v1))
            c2 += d2 * (np.float64(x2) - np.float64(v2))
            c3 += d3 * (np.float64(x3) - np.float64(v3))
    h_out[f], h_out[f + 1], h_out[f + 2], h_out[f + 3] = h0, h1, h2, h3
    w1_out[f], w1_out[f + 1], w1_out[f + 2], w1_out[f + 3] = c0, c1, c2, c3


def _ks_w1_rows_py(
    ref: NDArray[np.float64],
    win: NDArray[np.float64],
    a: int,
    b: int,
    want_w1: bool,
    h_out: NDArray[np.int64],
    w1_out: NDArray[np.float64],
    f0: int,
    f1: int,
) -> None:  # pragma: no cover - compiled by numba; the Python body is the specification
    """Lattice KS ``h`` and ``lcm * W1`` of rows ``f0 <= f < f1`` of ``ref`` (F, n + 1) against
    ``win`` (F, m + 1): by fours (:func:`_merge_quad_py`), the last one to three rows by pairs
    (:func:`_merge_pair_py`; an odd last row alone).

    One block of :func:`ks_w1`, on the calling thread; each row is computed
    the same way whichever block, group and thread it falls in.
    """
    f = f0
    while f + 4 <= f1:
        _merge_quad(ref, win, a, b, want_w1, h_out, w1_out, f)
        f += 4
    while f < f1:
        _merge_pair(ref, win, a, b, want_w1, h_out, w1_out, f, min(f + 1, f1 - 1))
        f += 2


_TRANSPOSE_TILE = 256
"""Window rows per tile of :func:`_transpose_pad_py`."""


def _transpose_pad_py(
    w: NDArray[np.float64], out: NDArray[np.float64], f0: int, f1: int
) -> None:  # pragma: no cover - compiled by numba; the Python body is the specification
    """``out[f, :m] = w[:, f]`` and ``out[f, m] = +inf`` for ``f0 <= f < f1``: a block of
    window columns, row-major and padded for the merge (``w`` is (m, F), any layout; ``out``
    of its dtype, float32 or float64).

    In tiles of ``_TRANSPOSE_TILE`` window rows, eight output rows at a time: a
    tile's source lines (256 x 64 bytes for 16 float32 columns) stay in L1
    while every output row writes its contiguous run of 256 values. Writing
    all of a block's rows for each window row in turn (the loop before) kept
    16 strided write streams and read each source line once per window row:
    64 x 10k float32 from a cold window, one thread, in blocks of 16, 1.70 ->
    0.49 ms (a strided view of the stored rows: 2.64 -> 0.52 ms). Only copies:
    the same bits.
    """
    m = w.shape[0]
    for r0 in range(0, m, _TRANSPOSE_TILE):
        r1 = min(r0 + _TRANSPOSE_TILE, m)
        f = f0
        while f + 8 <= f1:
            o0, o1, o2, o3 = out[f], out[f + 1], out[f + 2], out[f + 3]
            o4, o5, o6, o7 = out[f + 4], out[f + 5], out[f + 6], out[f + 7]
            for r in range(r0, r1):
                src = w[r]
                o0[r], o1[r], o2[r], o3[r] = src[f], src[f + 1], src[f + 2], src[f + 3]
                o4[r], o5[r], o6[r], o7[r] = src[f + 4], src[f + 5], src[f + 6], src[f + 7]
            f += 8
        for g in range(f, f1):  # fewer than eight left
            o = out[g]
            for r in range(r0, r1):
                o[r] = w[r, g]
    for f in range(f0, f1):
        out[f, m] = np.inf


def _sliding_h_py(
    hist_l: NDArray[np.int64],
    hist_r: NDArray[np.int64],
    lo: NDArray[np.int64],
    hi: NDArray[np.int64],
    has_lohi: bool,
    a: int,
    b: int,
    h_out: NDArray[np.int64],
) -> None:  # pragma: no cover - compiled by numba; the Python body is the specification
    """Lattice KS ``h`` from the rank-bucket histograms of :class:`SlidingKS`.

    ``hist_l``/``hist_r`` are (F, n + 1): window points per reference rank
    ``#ref < w`` / ``#ref <= w``. At the ``i``-th sorted reference value
    ``r_i`` (``lo = #ref < r_i``, ``hi = #ref <= r_i``; ``i`` and ``i + 1``
    without ties): ``#win < r_i = cum_r[lo]`` and ``#win <= r_i = cum_l[hi - 1]``
    (cumulative sums), so ``d+ = a hi - b cum_l[hi - 1]`` and
    ``d- = b cum_r[lo] - a lo``, as in :meth:`SlidingKS.statistic_h`. One
    fused pass per feature instead of two cumulative sums over (F, n + 1).
    """
    n_feat = hist_l.shape[0]
    n = hist_l.shape[1] - 1
    for f in range(n_feat):
        hl = hist_l[f]
        hr = hist_r[f]
        best = 0
        if has_lohi:
            # Running cumulative sums, read at lo[i] and hi[i] - 1 (both non-decreasing in i).
            cl = 0  # sum hl[0..pl]
            cr = 0  # sum hr[0..pr]
            pl = -1
            pr = -1
            for i in range(n):
                t_hi = hi[f, i] - 1
                while pl < t_hi:
                    pl += 1
                    cl += hl[pl]
                t_lo = lo[f, i]
                while pr < t_lo:
                    pr += 1
                    cr += hr[pr]
                best = max(best, a * hi[f, i] - b * cl, b * cr - a * t_lo)
        else:
            cl = 0
            cr = hr[0]
            for i in range(n):
                cl += hl[i]
                best = max(best, a * (i + 1) - b * cl, b * cr - a * i)
                cr += hr[i + 1]
        h_out[f] = best


_SEARCH_BLOCK = 32


def _ranks_py(
    ref: NDArray[np.float64],
    n: int,
    has_ties: NDArray[np.bool_],
    vals: NDArray[np.float64],
    out_l: NDArray[np.int64],
    out_r: NDArray[np.int64],
) -> None:  # pragma: no cover - compiled by numba; the Python body is the specification
    """``#ref < v`` and ``#ref <= v`` for every value of ``vals`` (F, k), unsorted.

    ``ref`` holds the sorted reference rows in its first ``n`` columns. All
    searches over one row take the same number of halvings, so 32 of them run
    interleaved: their loads are independent and overlap, where one search at
    a time waits for each load in turn (measured: 1.0 ms for 64 x 1k keys in
    10k against 2.8 ms for numpy's argsort + sorted-key ``searchsorted``).
    """
    n_feat = vals.shape[0]
    k = vals.shape[1]
    base = np.zeros(_SEARCH_BLOCK, dtype=np.int64)
    for f in range(n_feat):
        r = ref[f]
        v = vals[f]
        for upper in range(2 if has_ties[f] else 1):
            for q0 in range(0, k, _SEARCH_BLOCK):
                nb = min(q0 + _SEARCH_BLOCK, k) - q0
                for t in range(nb):
                    base[t] = 0
                size = n
                while size > 1:
                    half = size >> 1
                    if upper:
                        for t in range(nb):
                            b0 = base[t]
                            base[t] = b0 + half if r[b0 + half - 1] <= v[q0 + t] else b0
                    else:
                        for t in range(nb):
                            b0 = base[t]
                            base[t] = b0 + half if r[b0 + half - 1] < v[q0 + t] else b0
                    size -= half
                for t in range(nb):
                    x = v[q0 + t]
                    b0 = base[t]
                    if upper:
                        out_r[f, q0 + t] = b0 + (1 if r[b0] <= x else 0)
                    else:
                        pos = b0 + (1 if r[b0] < x else 0)
                        out_l[f, q0 + t] = pos
                        if not has_ties[f]:
                            out_r[f, q0 + t] = pos + (1 if pos < n and r[pos] == x else 0)


def _slide_py(
    hist_l: NDArray[np.int64],
    hist_r: NDArray[np.int64],
    raw: NDArray[np.float64],
    ring_l: NDArray[np.int64],
    ring_r: NDArray[np.int64],
    head: int,
    vals: NDArray[np.float64],
    new_l: NDArray[np.int64],
    new_r: NDArray[np.int64],
) -> int:  # pragma: no cover - compiled by numba; the Python body is the specification
    """One sliding step in place; returns the change in "window points equal to a reference value".

    The ``k`` ring-buffer columns from ``head`` (mod ``m``) leave the
    histograms (F, n + 1) and are overwritten by the new values and ranks.
    Replaces four ``np.add.at`` calls and six fancy-indexed copies.
    """
    n_feat = raw.shape[0]
    m = raw.shape[1]
    k = vals.shape[1]
    delta = 0
    for f in range(n_feat):
        hl = hist_l[f]
        hr = hist_r[f]
        c = head
        for j in range(k):
            ol = ring_l[f, c]
            orr = ring_r[f, c]
            hl[ol] -= 1
            hr[orr] -= 1
            nl = new_l[f, j]
            nr = new_r[f, j]
            hl[nl] += 1
            hr[nr] += 1
            delta += (1 if nr != nl else 0) - (1 if orr != ol else 0)
            ring_l[f, c] = nl
            ring_r[f, c] = nr
            raw[f, c] = vals[f, j]
            c += 1
            if c == m:
                c = 0
    return delta


def _ks_exact_square_py(n: int, h: int) -> float:  # pragma: no cover - compiled by numba
    """``P(D >= h / n)`` for two samples of ``n``: scipy's ``_compute_prob_outside_square``.

    The same operations in the same order, so the same bits. scipy runs this
    loop (``n`` steps) in Python: ~2.5 ms at n = 10,000 against ~0.05 ms
    compiled, per p-value.
    """
    p_out = 0.0
    k = n // h
    while k >= 0:
        p1 = 1.0
        for j in range(h):
            p1 = (n - k * h - j) * p1 / (n + k * h + j + 1)
        p_out = p1 * (1.0 - p_out)
        k -= 1
    return 2 * p_out


def _diagonal_py(
    cur: NDArray[np.float64], prev: NDArray[np.float64], jf: NDArray[np.float64], t1: int, end: int, fs: float
) -> None:  # pragma: no cover - compiled by numba; the Python body is the specification
    """``cur[j + 1] = (prev[j + 1] (s - j) + prev[j] j) / s`` for ``t1 <= j < end``: one
    anti-diagonal of :func:`_ks_exact_inside_py`.

    A loop of its own over slices, indexed from 0: LLVM then vectorises it
    (4 divisions per instruction; written inline, with indices it cannot
    prove non-negative and ``cur``/``prev`` swapped each diagonal, it stayed
    scalar). The same operations per cell, so the same bits; 2-3x faster
    at 10k x 1k and 10k x 10k.
    """
    c = cur[t1 + 1 : end + 1]
    p1 = prev[t1 + 1 : end + 1]
    p0 = prev[t1:end]
    jj = jf[t1:end]
    for k in range(c.shape[0]):
        c[k] = (p1[k] * (fs - jj[k]) + p0[k] * jj[k]) / fs


def _ks_exact_inside_py(m: int, n: int, g: int, h: int) -> float:  # pragma: no cover - compiled by numba
    """``P(D >= h / lcm)`` for unequal sizes, bit-identical to scipy's ``_compute_outer_prob_inside_method``.

    Hodges' inside method with Viehmann's 1 - p recursion: ``A(i, j)``, the
    probability that a random lattice path to ``(i, j)`` has left the band
    ``lo(i) <= j < hi(i)``, is 1 outside the band, 0 or 1 on column 0, and
    ``(A(i-1, j) i + A(i, j-1) j) / (i + j)`` inside; the p-value is
    ``A(m, n)``. scipy sweeps column by column, where each cell waits for the
    division of the one below it (~10-40 ns a cell). Both predecessors of a
    cell lie on the previous anti-diagonal ``i + j = s - 1``, so sweeping
    anti-diagonals makes the cells of one diagonal independent: the same
    operations on the same operands (so the same bits), 5-20x faster
    (10k x 1k: ~1.4 ms against ~12 ms a p-value).
    """
    if m < n:
        m, n = n, m
    mg = m // g
    ng = n // g
    lo = np.empty(m + 1, dtype=np.int64)
    hi = np.empty(m + 1, dtype=np.int64)
    for i in range(m + 1):
        lo[i] = min(max(int(math.floor((ng * i - h) / mg)) + 1, 0), n)  # noqa: RUF046 (an int under numba too)
        hi[i] = min(int(math.ceil((ng * i + h) / mg)), n + 1)  # noqa: RUF046
        if i > 0 and hi[i] <= lo[i]:
            return 1.0  # a column with no room: every path leaves the band
    lo[0] = 0
    jf = np.arange(n + 1).astype(np.float64)
    prev = np.ones(n + 2)  # diagonal s - 1; slot j + 1 holds cell j (slot 0: j = -1)
    cur = np.ones(n + 2)  # diagonal s, holding s - 2 until overwritten
    prev[1] = 0.0  # s = 0: the origin, inside the band
    seg_prev = (0, 1)  # in-band j range [a, b) of diagonal s - 1
    seg_old = (0, 0)  # ... and of s - 2, whose slots in ``cur`` go back to 1
    t1 = 0
    t2 = 0
    for s in range(1, m + n + 1):
        jmin = max(0, s - m)
        jmax = min(n, s)
        # The band on diagonal s is [t1, t2): both ends only move up with s.
        t1 = max(t1, jmin)
        while t1 <= jmax and lo[s - t1] > t1:
            t1 += 1
        t2 = max(t2, t1)
        while t2 <= jmax and t2 < hi[s - t2]:
            t2 += 1
        for j in range(seg_old[0], seg_old[1]):
            cur[j + 1] = 1.0
        end = t2
        origin_column = end - 1 == s  # cell (0, s) is in the band: 0
        if origin_column:
            end -= 1
        fs = float(s)
        _diagonal(cur, prev, jf, t1, end, fs)
        if origin_column:
            cur[s + 1] = 0.0
        seg_old = seg_prev
        seg_prev = (t1, t2)
        prev, cur = cur, prev
    return float(prev[n + 1])


def _chunk_w1_py(
    ref: NDArray[np.float64],
    prefix: NDArray[np.float64],
    mean: NDArray[np.float64],
    order: NDArray[np.int32],
    size: int,
    out: NDArray[np.float64],
) -> None:  # pragma: no cover - compiled by numba; the Python body is the specification
    """``out[f, c]`` = W1 of the reference's chunk ``c`` (``size`` rows) against the whole
    reference, for every feature row ``f`` and chunk at once, in one ``O(n)`` walk per row.

    ``ref`` is the padded sorted reference (F, n + 1), ``prefix`` the prefix
    sums of its centred rows (F, n + 1; ``mean`` the centres), ``order[f, k]``
    the row its ``k``-th sorted value came from (chunk ``row // size``;
    ``>= n_chunks``: in none); ``out`` is (F, n_chunks).

    The quantile form of W1 (:func:`monitor.drift.effect_size.wasserstein_sorted`):
    ``W1 = sum_j integral over (j/m, (j+1)/m] of |Q_ref(u) - w_j|`` for the
    chunk's sorted values ``w_j``. With ``I(u)`` the integral of ``Q_ref`` up
    to ``u`` (from the prefix sums) and ``s`` the point where ``Q_ref``
    crosses ``w_j`` (``#ref < w_j`` over ``n``, clipped to the segment), a
    segment contributes ``(w_j - mu) (2 s - (2 j + 1) / m) + I(j/m) +
    I((j+1)/m) - 2 I(s)``. A chunk's points are reference points, met in
    sorted order by walking the sorted reference: ``w_j`` is the chunk's
    ``j``-th value met and ``#ref < w_j`` the start of its tie group, so every
    chunk costs its own ``m`` terms (``I(j/m)`` is tabulated once per row).
    The walk that added every chunk's term at every reference value cost
    ``n * n_chunks`` steps: at F=256, 10k x 10 chunks of 1k, one thread,
    ~35 ms against ~13 ms (loaded 2-core machine, one process).
    Prefix sums lose bits to cancellation: ~1e-13 relative against scipy
    (the merge kernel: ~1e-14), far below any floor's own noise.
    """
    n_feat = ref.shape[0]
    n = ref.shape[1] - 1
    n_chunks = out.shape[1]
    m = size
    inv_n = 1.0 / n
    inv_nm = 1.0 / (float(n) * float(m))
    inv_size = 1.0 / size
    for f in prange(n_feat):
        r = ref[f]
        p = prefix[f]
        mu = mean[f]
        rows = order[f]
        iq = np.empty(m + 1, dtype=np.float64)  # I(j / m)
        for j in range(m + 1):
            k = (j * n) // m
            iq[j] = p[k] * inv_n + ((j * n - k * m) * inv_nm) * (r[min(k, n - 1)] - mu)
        counts = np.zeros(n_chunks + 1, dtype=np.int64)  # slot n_chunks: rows in no chunk, not kept
        acc = np.zeros(n_chunks + 1, dtype=np.float64)
        start = 0  # #ref < r[k]: where r[k]'s tie group starts
        prev = r[0]
        for k in range(n):
            v = r[k]
            start = k if v != prev else start
            prev = v
            # floor(row / size) without an integer division: (row + 0.5) / size is at least
            # 0.5 / size from any integer, far beyond the product's rounding.
            c = min(int((rows[k] + 0.5) * inv_size), n_chunks)
            j = counts[c]  # < m: a chunk has m rows, the leftover slot fewer
            counts[c] = j + 1
            q0 = iq[j]
            q1 = iq[j + 1]
            xm = start * m
            lo = j * n
            # s = #ref < v over n, clipped to [j/m, (j+1)/m]; as n m s. Every operand is loaded
            # and the clips are selects, not branches (their outcome is a coin toss: ~2x slower).
            sm = min(max(xm, lo), lo + n)
            qs = p[start] * inv_n
            qs = q0 if xm <= lo else qs
            qs = q1 if xm >= lo + n else qs
            acc[c] += (v - mu) * ((2 * sm - (2 * j + 1) * n) * inv_nm) + (q0 + q1) - 2.0 * qs
        for c2 in range(n_chunks):
            out[f, c2] = max(acc[c2], 0.0)


_STD_BLOCK = 256
"""Rows per block of :func:`_standardise_t_py` (one thread's share at a time)."""


def _standardise_t_py(
    w: NDArray[np.float64],
    cols: NDArray[np.intp],
    lo: NDArray[np.float64],
    hi: NDArray[np.float64],
    mean: NDArray[np.float64],
    std: NDArray[np.float64],
    zt: NDArray[np.float64],
) -> None:  # pragma: no cover - compiled by numba; the Python body is the specification
    """``zt[c, r] = (clip(w[r, cols[c]], lo[c], hi[c]) - mean[c]) / std[c]``: the cross-moment
    test's standardised window, transposed to (F', m) for the product, in one pass.

    numpy takes five passes and four temporaries for the same values (the
    same operations, so the same bits): ~8x slower at 10k x 64. Blocks of
    rows are independent, so the compiled version spreads them over threads.
    """
    m = w.shape[0]
    n_blocks = (m + _STD_BLOCK - 1) // _STD_BLOCK
    for blk in prange(n_blocks):
        r0 = blk * _STD_BLOCK
        r1 = min(r0 + _STD_BLOCK, m)
        for c in range(cols.shape[0]):
            col = cols[c]
            low = lo[c]
            high = hi[c]
            mu = mean[c]
            sd = std[c]
            for r in range(r0, r1):
                v = min(max(w[r, col], low), high)
                zt[c, r] = (v - mu) / sd


def _standardise_rows_py(
    rows: NDArray[np.float64],
    pos: NDArray[np.intp],
    lo: NDArray[np.float64],
    hi: NDArray[np.float64],
    mean: NDArray[np.float64],
    std: NDArray[np.float64],
    zt: NDArray[np.float64],
    f0: int,
    f1: int,
) -> None:  # pragma: no cover - compiled by numba; the Python body is the specification
    """:func:`_standardise_t_py` from the window's transposed rows: for ``f0 <= f < f1`` with
    ``c = pos[f] >= 0``, ``zt[c, r] = (clip(rows[f, r], lo[c], hi[c]) - mean[c]) / std[c]``
    for ``r < zt.shape[1]``.

    The KS blocks have each feature's window column as a contiguous row
    already (before sorting it): read from there, the loop is contiguous on
    both sides and vectorises, where reading the (m, F) window gathers with a
    stride of F values. The same operations on the same values, so the same bits;
    float32 ``rows`` are read as the float64 values they equal.
    """
    m = zt.shape[1]
    for f in range(f0, f1):
        c = pos[f]
        if c < 0:
            continue
        low = lo[c]
        high = hi[c]
        mu = mean[c]
        sd = std[c]
        src = rows[f]
        dst = zt[c]
        for r in range(m):
            dst[r] = (min(max(np.float64(src[r]), low), high) - mu) / sd


if _jit is not None and _jit_parallel is not None:
    ks_exact_square: Callable[[int, int], float] = _jit(_ks_exact_square_py)
    _diagonal: Callable[..., None] = _jit(_diagonal_py)
    ks_exact_inside: Callable[[int, int, int, int], float] = _jit(_ks_exact_inside_py)
    merge_pair: Callable[..., None] = _jit(_merge_pair_py)
    _merge_pair = merge_pair  # the names _ks_w1_rows_py calls, compiled
    _merge_quad: Callable[..., None] = _jit(_merge_quad_py)
    ks_w1_rows: Callable[..., None] = _jit(_ks_w1_rows_py)
    transpose_pad: Callable[..., None] = _jit(_transpose_pad_py)
    _standardise_t: Callable[..., None] = _jit_parallel(_standardise_t_py)
    _standardise_t_serial: Callable[..., None] = _jit(_standardise_t_py)
    standardise_rows: Callable[..., None] = _jit(_standardise_rows_py)
    _chunk_w1: Callable[..., None] = _jit_parallel(_chunk_w1_py)
    sliding_h: Callable[..., None] = _jit(_sliding_h_py)
    ranks: Callable[..., None] = _jit(_ranks_py)
    slide: Callable[..., int] = _jit(_slide_py)
else:  # pragma: no cover
    ks_exact_square = _ks_exact_square_py
    _diagonal = _diagonal_py
    ks_exact_inside = _ks_exact_inside_py
    merge_pair = _merge_pair = _merge_pair_py
    _merge_quad = _merge_quad_py
    ks_w1_rows = _ks_w1_rows_py
    transpose_pad = _transpose_pad_py
    _standardise_t = _standardise_t_serial = _standardise_t_py
    standardise_rows = _standardise_rows_py
    _chunk_w1 = _chunk_w1_py
    sliding_h = _sliding_h_py
    ranks = _ranks_py
    slide = _slide_py


MERGE_BLOCK = 16
"""Feature rows per task of :func:`ks_w1` (a multiple of four: rows go by fours). At 10k x 10k a block is
~1 ms of work: small enough to share out, large enough that handing it out costs nothing."""


def threads_for(threads: int | None) -> int:
    """The thread count a kernel runs on: ``threads`` within [1, ``MAX_THREADS``], None: ``MAX_THREADS``."""
    return MAX_THREADS if threads is None else max(1, min(int(threads), MAX_THREADS))


def blocks(n_rows: int) -> list[tuple[int, int]]:
    """``[f0, f1)`` ranges of ``MERGE_BLOCK`` rows covering ``n_rows``."""
    return [(f0, min(f0 + MERGE_BLOCK, n_rows)) for f0 in range(0, n_rows, MERGE_BLOCK)]


def ks_w1(
    ref: NDArray[np.float64],
    win: NDArray[np.float64],
    a: int,
    b: int,
    want_w1: bool,
    h_out: NDArray[np.int64],
    w1_out: NDArray[np.float64],
    threads: int | None = None,
) -> None:
    """Lattice KS ``h`` and ``lcm * W1`` of every row of ``ref`` (F, n + 1) against ``win`` (F, m + 1):
    blocks of :func:`_ks_w1_rows_py`, shared by the caller and helpers (:mod:`monitor.drift._tasks`).

    The result is the same for every thread count (each row is computed the same way).
    """
    if ref.shape[0] * (ref.shape[1] + win.shape[1]) < SMALL_WORK:
        threads = 1
    _tasks.run([partial(ks_w1_rows, ref, win, a, b, want_w1, h_out, w1_out, f0, f1)
                for f0, f1 in blocks(ref.shape[0])], threads_for(threads))


def _launch(kernel: Callable[..., None], threads: int | None, *args: Any) -> None:
    """Run a parallel kernel on ``threads`` threads (None: ``MAX_THREADS``), one launch at a time."""
    if _set_threads is None:  # pragma: no cover - without numba
        kernel(*args)
        return
    with _PARALLEL:
        _set_threads(threads_for(threads))
        kernel(*args)


def standardise_t(
    w: NDArray[np.float64],
    cols: NDArray[np.intp],
    lo: NDArray[np.float64],
    hi: NDArray[np.float64],
    mean: NDArray[np.float64],
    std: NDArray[np.float64],
    threads: int | None = None,
) -> NDArray[np.float64]:
    """:func:`_standardise_t_py` into a new (F', m) array, compiled and spread over ``threads``
    (without numba, numpy's five passes: the same values, not a Python loop per value)."""
    if _jit is None:  # pragma: no cover - exercised when numba is absent
        return np.ascontiguousarray(((np.clip(w[:, cols], lo, hi) - mean) / std).T)
    zt = np.empty((cols.shape[0], w.shape[0]), dtype=np.float64)
    if zt.size < SMALL_WORK:
        threads = 1
    if threads_for(threads) == 1:  # on the calling thread: no launch to wait for (the same bits)
        _standardise_t_serial(np.ascontiguousarray(w), cols, lo, hi, mean, std, zt)
    else:
        _launch(_standardise_t, threads, np.ascontiguousarray(w), cols, lo, hi, mean, std, zt)
    return zt


def chunk_w1(
    ref: NDArray[np.float64], prefix: NDArray[np.float64], mean: NDArray[np.float64],
    order: NDArray[np.int32], size: int, n_chunks: int, threads: int | None = None,
) -> NDArray[np.float64]:
    """:func:`_chunk_w1_py` into a new (F, n_chunks) array for chunks of ``size`` rows, given the
    rows ``order`` (F, n) of the sorted values; compiled and spread over ``threads``."""
    out = np.zeros((ref.shape[0], n_chunks), dtype=np.float64)
    _launch(_chunk_w1, threads, ref, prefix, mean, order, size, out)
    return out


def load() -> None:
    """Load (or compile) the parallel kernels and start their threads now, not in a first window.

    numba compiles each kernel once into its on-disk cache (``cache=True``;
    ``NUMBA_CACHE_DIR``); a new process still loads it (~20-50 ms) and starts
    its thread pool at the first call. The monitor calls this when it builds a
    detector (:meth:`monitor.drift.DriftDetector.prepare`).
    """
    if _jit is None:  # pragma: no cover - without numba there is nothing to load
        return
    ref = np.array([[0.0, np.inf]])
    h = np.zeros(1, dtype=np.int64)
    ks_w1(ref, ref, 1, 1, True, h, np.zeros(1))
    transpose_pad(np.zeros((1, 1)), np.zeros((1, 2)), 0, 1)
    # A window's kernels for every form the detector is handed a window in (numba compiles one
    # version per dtype, layout and writability): float32 as the monitor's stream carries it,
    # contiguous or a view of its stored rows (which end with the predicted class), read-only
    # when it wraps the stored bytes (np.frombuffer).
    for dtype in (np.float32, np.float64):
        for writeable in (True, False):
            block = np.zeros((2, 3), dtype=dtype)
            for w in (block[:, :2], np.ascontiguousarray(block[:, :2])):
                w.setflags(write=writeable)
                transpose_pad(w, np.zeros((2, 3), dtype=dtype), 0, 2)
    win32 = np.array([[0.0, np.inf]], dtype=np.float32)
    ks_w1_rows(win32, win32, 1, 1, True, h, np.zeros(1), 0, 1)
    for rows in (ref, win32):
        standardise_rows(rows, np.zeros(1, dtype=np.intp), np.zeros(1), np.ones(1), np.zeros(1), np.ones(1),
                         np.zeros((1, 1)), 0, 1)
    one = (np.zeros((1, 1)), np.zeros(1, dtype=np.intp), np.zeros(1), np.ones(1), np.zeros(1), np.ones(1))
    standardise_t(*one)  # on the calling thread (small)
    _launch(_standardise_t, None, *one, np.zeros((1, 1)))
    chunk_w1(ref, np.zeros((1, 2)), np.zeros(1), np.zeros((1, 1), dtype=np.int32), 1, 1)
