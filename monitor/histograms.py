"""Per-feature histograms of the reference and of each reported window, for the web UI.

Why: the dashboard overlays a window's distribution on the reference's for any
feature, and the browser must never receive raw rows. So the reporter bins a
window's rows when it tests them and stores only counts, in bins fixed per
model version from the reference.

Bins, and why the size is bounded:

- numeric feature: at most ``MAX_BINS`` equal-width bins over the reference's
  range (unit bins centred on the integers when the reference holds integers
  spanning fewer than ``MAX_BINS`` values, e.g. pixel intensities), plus one
  bin below and one above that range, so a shift out of the reference's range
  stays visible: ``<= MAX_BINS + 2`` counts;
- categorical feature: the ``MAX_CATEGORIES`` most frequent reference
  categories plus one "other" bucket: ``<= MAX_CATEGORIES + 1`` counts.

Missing values (NaN, a logged null) fall in no bin: each feature's count
list ends with one more count, its missing values, which
:meth:`FeatureBins.histograms` reports apart (``reference_missing``,
``window_missing``). A stored window therefore holds at most
``F * (max(MAX_BINS, MAX_CATEGORIES) + 3)`` integers whatever its number of
rows (64 pixel features: at most 1,472), and the reference's counts and
edges are stored once per model version. Numeric counts are one
``np.bincount`` over all features at once.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import numpy.typing as npt
import orjson
import redis.asyncio as aioredis
from pydantic import BaseModel, Field

from monitor.drift.report import FeatureDrift
from monitor.windows import series_keys
from shared.keys import Keys

MAX_BINS = 20
MAX_CATEGORIES = 20


class FeatureHistogram(BaseModel):
    """One feature's reference and window counts in the same bins."""

    name: str
    kind: Literal["numeric", "categorical"]
    edges: list[float] | None = Field(
        default=None,
        description="Numeric: the n+1 bin edges; counts[0] is below edges[0], counts[-1] above edges[-1]",
    )
    categories: list[str] | None = Field(
        default=None, description="Categorical: one count per category, then counts[-1] for every other value"
    )
    reference: list[int]
    window: list[int]
    reference_missing: int = Field(default=0, description="Missing (null) values in the reference, in no bin")
    window_missing: int = Field(default=0, description="Missing (null) values in the window, in no bin")
    test: FeatureDrift | None = Field(default=None, description="The feature's test in the window's drift report")


class WindowHistograms(BaseModel):
    window: int
    model_version: str
    features: list[FeatureHistogram]


class FeatureBins:
    """Bins of every feature, fixed from a reference sample.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> ref = np.column_stack([rng.normal(size=500), rng.integers(0, 4, 500)])
    >>> bins = FeatureBins(ref, ["x", "pixel"])
    >>> len(bins.edges[0]) - 1, bins.edges[1]  # 20 bins; unit bins for small integers
    (20, [-0.5, 0.5, 1.5, 2.5, 3.5])
    >>> counts = bins.counts(np.array([[100.0, 3.0], [-100.0, 7.0], [np.nan, 3.0]]))
    >>> counts[0][0], counts[0][-2], counts[1][4], counts[1][-2]  # below, above, 3, above
    (1, 1, 2, 1)
    >>> counts[0][-1], counts[1][-1]  # then each feature's missing values
    (1, 0)
    """

    def __init__(
        self, reference: npt.ArrayLike, feature_names: list[str], categorical: npt.ArrayLike | None = None
    ) -> None:
        ref = np.asarray(reference, dtype=np.float64)
        n_features = ref.shape[1]
        cat = np.zeros(n_features, dtype=bool) if categorical is None else np.asarray(categorical, dtype=bool)
        self.names = list(feature_names)
        self.numeric = np.flatnonzero(~cat)
        self.categorical = np.flatnonzero(cat)
        num = ref[:, self.numeric]
        # Bins from the present values; a column with none gets one bin at 0.
        present = ~np.isnan(num)
        lo = np.where(present, num, np.inf).min(axis=0, initial=np.inf)
        hi = np.where(present, num, -np.inf).max(axis=0, initial=-np.inf)
        lo, hi = np.where(present.any(axis=0), lo, 0.0), np.where(present.any(axis=0), hi, 0.0)
        integer = np.all((num == np.round(num)) | ~present, axis=0) & (hi - lo < MAX_BINS)
        self.n_bins = np.where(integer, hi - lo + 1, np.where(hi > lo, MAX_BINS, 1)).astype(np.int64)
        self.lo = np.where(integer, lo - 0.5, lo)
        self.hi = np.where(integer, hi + 0.5, hi)
        self.width = np.where(self.hi > self.lo, (self.hi - self.lo) / self.n_bins, 1.0)
        # Edges padded to MAX_BINS + 1 per feature, so one fancy index reads any feature's bin bounds.
        self._edges = np.full((self.numeric.size, MAX_BINS + 1), np.inf)
        for j, n in enumerate(self.n_bins.tolist()):
            self._edges[j, : n + 1] = np.linspace(self.lo[j], self.hi[j], n + 1)
        self.edges: list[list[float]] = [self._edges[j, : n + 1].tolist() for j, n in enumerate(self.n_bins.tolist())]
        # Categorical: the most frequent reference values, sorted for searchsorted.
        self.categories: list[npt.NDArray[np.float64]] = []
        for f in self.categorical:
            column = ref[:, f]
            values, counts = np.unique(column[~np.isnan(column)], return_counts=True)
            top = values[np.argsort(-counts, kind="stable")[:MAX_CATEGORIES]]
            self.categories.append(np.sort(top))
        self.reference_counts = self.counts(ref)

    def counts(self, rows: npt.ArrayLike) -> list[list[int]]:
        """Counts per feature (in feature order) of ``rows`` (n x F) in these bins,
        each list ending with the feature's missing (NaN) count."""
        x = np.asarray(rows, dtype=np.float64)
        out: list[list[int]] = [[] for _ in self.names]
        missing_slot = MAX_BINS + 2
        if self.numeric.size:
            num = x[:, self.numeric]
            nan = np.isnan(num)
            has_nan = bool(nan.any())
            if has_nan:
                num = np.where(nan, self.lo, num)  # any in-range value: its slot is replaced below
            last = self.n_bins - 1
            guess = np.clip(np.floor((num - self.lo) / self.width), 0, last).astype(np.int64)
            # Correct the division's rounding at bin edges, as np.histogram does: a value on an
            # edge belongs to the bin it starts (the last bin also holds its right edge).
            columns = np.arange(self.numeric.size)
            guess -= num < self._edges[columns, guess]
            guess += (num >= self._edges[columns, guess + 1]) & (guess < last)
            slot = np.where(num < self.lo, 0, np.where(num > self.hi, self.n_bins + 1, guess + 1))
            if has_nan:
                slot = np.where(nan, missing_slot, slot)
            stride = MAX_BINS + 3
            flat = (slot + stride * np.arange(self.numeric.size)).ravel()
            table = np.bincount(flat, minlength=stride * self.numeric.size).reshape(self.numeric.size, stride)
            for j, f in enumerate(self.numeric.tolist()):
                out[f] = [*table[j, : self.n_bins[j] + 2].tolist(), int(table[j, missing_slot])]
        # One searchsorted per categorical column (few columns, each vectorised over rows).
        for cats, f in zip(self.categories, self.categorical.tolist(), strict=True):
            column = x[:, f]
            if cats.size:
                idx = np.minimum(np.searchsorted(cats, column), cats.size - 1)
                bucket = np.where(cats[idx] == column, idx, cats.size)
            else:
                bucket = np.zeros(column.size, dtype=np.int64)
            bucket = np.where(np.isnan(column), cats.size + 1, bucket)  # last: missing
            out[f] = np.bincount(bucket, minlength=cats.size + 2).tolist()
        return out

    def histograms(self, window_counts: list[list[int]]) -> list[FeatureHistogram]:
        """The features' histograms from :meth:`counts` lists (missing values reported apart)."""
        result = [
            FeatureHistogram(name=self.names[f], kind="numeric", edges=self.edges[j],
                             reference=self.reference_counts[f][:-1], window=window_counts[f][:-1],
                             reference_missing=self.reference_counts[f][-1], window_missing=window_counts[f][-1])
            for j, f in enumerate(self.numeric.tolist())
        ]
        result += [
            FeatureHistogram(name=self.names[f], kind="categorical", categories=[f"{c:g}" for c in cats.tolist()],
                             reference=self.reference_counts[f][:-1], window=window_counts[f][:-1],
                             reference_missing=self.reference_counts[f][-1], window_missing=window_counts[f][-1])
            for cats, f in zip(self.categories, self.categorical.tolist(), strict=True)
        ]
        order = {name: i for i, name in enumerate(self.names)}
        return sorted(result, key=lambda h: order[h.name])


def _window_part(reference: dict[str, object], counts: list[int]) -> dict[str, object]:
    """A stored window's counts of one feature as histogram fields: its bins, and its
    missing count when the list has one more entry than the reference's bins (windows
    stored before missing values were counted have none)."""
    bins = len(reference["reference"])  # type: ignore[arg-type]
    if len(counts) == bins + 1:
        return {"window": counts[:-1], "window_missing": counts[-1]}
    return {"window": counts}


class HistogramStore:
    """Window histograms in Redis: one hash field per window of a version's series, the
    reference's once per version."""

    def __init__(self, client: aioredis.Redis, keys: Keys) -> None:
        self.client = client
        self.keys = keys

    async def store(self, window: int, version: str, bins: FeatureBins, window_counts: list[list[int]]) -> None:
        reference = [h.model_dump(exclude={"window", "window_missing", "test"})
                     for h in bins.histograms(window_counts)]
        series = self.keys.for_version(version)
        async with self.client.pipeline(transaction=False) as pipe:
            pipe.hsetnx(self.keys.reference_histograms, version, orjson.dumps(reference))
            pipe.hset(series.drift_histograms, str(window),
                      orjson.dumps({"version": version, "counts": window_counts}))
            await pipe.execute()

    async def read(self, window: int, version: str | None = None) -> WindowHistograms | None:
        """The window's histograms with each feature's test from the window's report; ``version``
        defaults to the model's current one."""
        series = await series_keys(self.client, self.keys, version)
        if series is None:
            return None
        async with self.client.pipeline(transaction=False) as pipe:
            pipe.hget(series.drift_histograms, str(window))
            pipe.hget(series.drift_reports, str(window))
            raw, report = await pipe.execute()
        if raw is None:
            return None
        stored = orjson.loads(raw)
        reference = await self.client.hget(self.keys.reference_histograms, stored["version"])
        if reference is None:
            return None
        tests = {f["name"]: f for f in orjson.loads(report)["features"]} if report is not None else {}
        features = [
            FeatureHistogram.model_validate({**ref, **_window_part(ref, counts), "test": tests.get(ref["name"])})
            for ref, counts in zip(orjson.loads(reference), stored["counts"], strict=True)
        ]
        return WindowHistograms(window=window, model_version=stored["version"], features=features)
