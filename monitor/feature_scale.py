"""The labelled reference's per-feature location and scale, shared by the estimates that compare rows.

The class-mix bound's domain classifier (:mod:`monitor.class_mix`) and the
agreement estimate's nearest-neighbour vote (:mod:`monitor.agreement`) both
compare rows across features, so every feature must count alike (a pixel
and an age on one scale), and a missing value must land somewhere neutral.
Each feature is standardised by the reference's mean and standard deviation
(missing values ignored; a constant feature keeps scale 1), and a missing or
infinite value becomes 0, the reference mean. One definition, so both
estimates read a window the same way.

>>> scale = FeatureScale.fit(np.array([[1.0, 5.0], [3.0, 5.0], [np.nan, 5.0]]))
>>> scale.apply(np.array([[2.0, 5.0], [np.nan, 7.0], [4.0, np.inf]])).tolist()
[[0.0, 0.0], [0.0, 2.0], [2.0, 0.0]]
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt


@dataclass(frozen=True, slots=True)
class FeatureScale:
    """Per-feature mean and standard deviation of the reference rows."""

    mean: npt.NDArray[np.float64]
    scale: npt.NDArray[np.float64]

    @classmethod
    def fit(cls, reference: npt.NDArray[np.float64]) -> FeatureScale:
        finite = np.where(np.isfinite(reference), reference, np.nan)
        mean = np.nan_to_num(np.nanmean(finite, axis=0))
        scale = np.nan_to_num(np.nanstd(finite, axis=0))
        scale[scale == 0] = 1.0
        return cls(mean, scale)

    def apply(self, rows: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        """``rows`` standardised, missing and infinite values at 0."""
        z = (rows - self.mean) / self.scale
        return np.asarray(np.where(np.isfinite(z), z, 0.0))
