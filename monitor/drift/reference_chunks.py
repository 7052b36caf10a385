"""What "no drift" looks like inside the reference: effect-size floors from its own chunks.

A reference in time order (a month of production traffic registered as the
reference, a data set sorted by date) varies within itself: departure delays
change with each week's weather. A window of one week then differs from the
whole reference by more than sampling noise, and a test at level alpha calls
that drift: 13 of 24 held-out weeks of popmon's flights in
``benchmarks/detection.py``, with Alibi Detect's KS flagging the same 13.
NannyML sets its thresholds from reference chunks for this reason.

Here the reference is cut, in its own row order, into chunks of the
window's size. Each chunk's effect size against the rest of the reference
is a sample of what the reference's own variation looks like, and a
significant feature is called drift only when its effect size exceeds
``mean + FLOOR_SDS * sd`` of its chunks' (the band NannyML draws). The same
holds for the multivariate statistic. The statistical test still decides
significance at its corrected level; the floor only removes what the
reference itself already does.

Cheap, because the rest of the reference never has to be sorted again. With
``r = chunk / n`` the reference's CDF is ``(1 - r) F_rest + r F_chunk``, so
``F_chunk - F_ref = (1 - r) (F_chunk - F_rest)`` and

- the Wasserstein distance of a chunk to the rest is its distance to the
  whole reference divided by ``1 - r`` (exactly);
- the cross-moment statistic (:mod:`monitor.drift.correlation`), a sum of
  squared differences of means of per-row products, is its statistic
  against the whole reference divided by ``(1 - r)**2`` (exactly);
- categorical counts of the rest are the reference's minus the chunk's.

Time windows hold a different number of rows each, and floors computed per
exact size would cost the whole computation (a walk of the sorted reference,
a product per chunk) on every window. With ``DriftConfig.floor_sizes="grid"``
they are computed at the nearest size of a geometric grid (``GRID_STEPS``
sizes per doubling, :func:`grid_size`) and rescaled to the window's size
(:func:`rescaled`). Why the rescaling holds: a chunk of ``m`` rows is a
sample without replacement of the reference, so at every ``x``
``F_chunk - F_rest = (F_chunk - F_ref) / (1 - r)`` has variance
``F (1 - F) (1/m + 1/(n - m))`` (with the finite-population factor), the
two-sample variance; W1 (the integral of ``|F_chunk - F_rest|``) and the
Jensen-Shannon distance then scale as ``sqrt(1/m + 1/(n - m))``, and the
cross-moment statistic (squared differences of means) as ``1/m + 1/(n - m)``,
their mean and standard deviation alike, so the band ``mean + FLOOR_SDS * sd``
too. What does not scale so, the reference's own structured variation
(weekly seasonality), is off by the ratio at most: the grid size is within a
factor ``2 ** (1 / 16)`` of ``m``, a ratio within 2.2% for the effect sizes
(4.4% for the statistic), where ten chunks' band is itself uncertain by ~25%
(the standard deviation of ten values).

On a shuffled reference (a random training sample) the chunks are
exchangeable with a window and the floors sit at the sampling noise of one
window: at Bonferroni's level over tens of features a significant test
already exceeds them, so decisions do not change. Fewer than
``MIN_CHUNKS`` chunks give no floors (too few to estimate a spread).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np
from numpy.typing import NDArray

__all__ = ["FLOOR_SDS", "GRID_STEPS", "MIN_CHUNKS", "ChunkFloors", "chunk_floors", "grid_size", "rescaled"]

FLOOR_SDS = 3.0
"""Floors sit this many standard deviations above the chunks' mean effect size."""

MIN_CHUNKS = 8
"""Fewer chunks of the window's size than this in the reference: no floors."""


GRID_STEPS = 8
"""Floor sizes per doubling of the window size when sizes vary (``floor_sizes="grid"``)."""


@dataclass(frozen=True, slots=True)
class ChunkFloors:
    """Per-feature effect-size floors (NaN: none) and the multivariate statistic's floor,
    from ``n_chunks`` chunks of ``chunk_size`` rows (rescaled from them, see :func:`rescaled`)."""

    chunk_size: int
    n_chunks: int
    features: NDArray[np.float64]
    multivariate: float | None


ChunkEffects = Callable[[int, NDArray[np.float64], float], NDArray[np.float64]]
"""``(chunk index, chunk rows, r) -> effect size of the chunk against the rest``, per feature
(the index lets a caller read effects it computed for every chunk at once)."""
ChunkStatistic = Callable[[int, NDArray[np.float64], float], float]


def chunk_floors(
    reference: NDArray[np.float64],
    size: int,
    effects: ChunkEffects,
    multivariate: ChunkStatistic | None = None,
) -> ChunkFloors | None:
    """Floors for windows of ``size`` rows, from the reference's consecutive chunks of that size.

    ``effects`` and ``multivariate`` compute a chunk's effect sizes and
    statistic against the rest of the reference (given ``r``, the chunk's
    share of the reference). None when fewer than ``MIN_CHUNKS`` fit.

    Examples
    --------
    A reference whose mean moves halfway through: the floor of the moving
    feature is far above that of the steady one.

    >>> rng = np.random.default_rng(0)
    >>> ref = rng.normal(size=(4000, 2))
    >>> ref[2000:, 0] += 0.5
    >>> def mean_gap(index, chunk, r):
    ...     rest_mean = (ref.mean(axis=0) - r * chunk.mean(axis=0)) / (1 - r)
    ...     return np.abs(chunk.mean(axis=0) - rest_mean)
    >>> floors = chunk_floors(ref, 250, mean_gap)
    >>> floors.n_chunks, bool(floors.features[0] > 3 * floors.features[1])
    (16, True)
    >>> chunk_floors(ref, 1000, mean_gap) is None
    True
    """
    if size < 1:
        raise ValueError(f"size must be positive, got {size}")
    n = int(reference.shape[0])
    n_chunks = n // size
    if n_chunks < MIN_CHUNKS:
        return None
    r = size / n
    rows = [np.asarray(reference[c * size : (c + 1) * size], dtype=np.float64) for c in range(n_chunks)]
    per_chunk = np.stack([effects(c, chunk, r) for c, chunk in enumerate(rows)])
    features = _band(per_chunk)
    floor_mv = None
    if multivariate is not None:
        floor_mv = float(_band(np.array([[multivariate(c, chunk, r)] for c, chunk in enumerate(rows)]))[0])
    return ChunkFloors(chunk_size=size, n_chunks=n_chunks, features=features, multivariate=floor_mv)


def _band(values: NDArray[np.float64]) -> NDArray[np.float64]:
    """``mean + FLOOR_SDS * sd`` per column over the chunks (rows); NaN where a column has none."""
    with np.errstate(invalid="ignore"):
        finite = np.where(np.isfinite(values), values, np.nan)
        counts = np.isfinite(finite).sum(axis=0)
        mean = np.nansum(finite, axis=0) / np.maximum(counts, 1)
        sd = np.sqrt(np.nansum((finite - mean) ** 2, axis=0) / np.maximum(counts - 1, 1))
    return np.where(counts >= MIN_CHUNKS, mean + FLOOR_SDS * sd, np.nan)


def grid_size(m: int, largest: int) -> int:
    """The size whose chunks give the floors of windows of ``m`` rows when sizes vary.

    The nearest point of the grid ``2 ** (k / GRID_STEPS)`` (rounded to rows),
    at most ``largest`` (the largest size with ``MIN_CHUNKS`` chunks: then a
    window that has floors at its own size has them from the grid, and
    ``largest`` lies between ``m`` and the grid point, closer still).

    >>> [grid_size(m, 1100) for m in (30, 900, 1000, 1090)]
    [29, 939, 1024, 1100]
    """
    if m < 1:
        raise ValueError(f"size must be positive, got {m}")
    point = round(2.0 ** (round(GRID_STEPS * math.log2(m)) / GRID_STEPS))
    return max(1, min(point, largest))


def rescaled(floors: ChunkFloors, n: int, m: int) -> ChunkFloors:
    """Floors of chunks of ``floors.chunk_size`` rows rescaled to windows of ``m`` rows, in a
    reference of ``n`` rows (see the module doc): effect sizes by
    ``sqrt(s)``, the cross-moment statistic by ``s``, with
    ``s = (1/m + 1/(n - m)) / (1/g + 1/(n - g))`` for ``g = floors.chunk_size``.
    Needs ``m < n``, and returns ``floors`` itself when ``m == g``.

    >>> f = ChunkFloors(chunk_size=1000, n_chunks=10, features=np.array([0.1]), multivariate=0.5)
    >>> g = rescaled(f, 10_000, 250)
    >>> round(float(g.features[0]) / 0.1, 3), round(g.multivariate / 0.5, 3), g.chunk_size
    (1.922, 3.692, 1000)
    """
    g = floors.chunk_size
    if m == g:
        return floors
    if not 0 < m < n:
        raise ValueError(f"window size must be in (0, {n}), got {m}")
    scale = (1.0 / m + 1.0 / (n - m)) / (1.0 / g + 1.0 / (n - g))
    mv = None if floors.multivariate is None else floors.multivariate * scale
    return replace(floors, features=floors.features * math.sqrt(scale), multivariate=mv)
