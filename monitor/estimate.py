"""Label-free accuracy: Average Thresholded Confidence (ATC), calibrated on the reference.

Labels arrive late or never; the model's confidence arrives with every
prediction. ATC (Garg et al., ICLR 2022) picks the confidence threshold at
which the share of reference predictions above it equals the accuracy the
model really had on that held-out reference; the share of a window's
predictions above the same threshold then estimates the window's accuracy.
It tracks accuracy under mild shift, and its gap to realised accuracy (once
labels come) is itself a signal.

Confidence is kept per window as a histogram of percent buckets (see
``monitor.state.confidence_buckets``), so the threshold is a bucket plus the
fraction of that bucket above it: exact on the reference by construction.

Examples
--------
>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> conf = rng.uniform(0.5, 1.0, 1000)
>>> correct = rng.uniform(size=1000) < conf          # a calibrated model
>>> cal = ConfidenceCalibration.fit(conf, correct)
>>> round(cal.reference_accuracy, 3)
0.764
>>> window = np.bincount(np.minimum((conf * 100).astype(int), 99), minlength=100)
>>> round(cal.estimate(window), 3)                  # the reference itself: exact
0.764
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from monitor.state import CONFIDENCE_BUCKETS


@dataclass(frozen=True, slots=True)
class ConfidenceCalibration:
    threshold_bucket: int
    fraction_of_bucket: float
    reference_accuracy: float

    @classmethod
    def fit(cls, confidence: npt.ArrayLike, correct: npt.ArrayLike) -> ConfidenceCalibration:
        conf = np.asarray(confidence, dtype=np.float64)
        hits = np.asarray(correct, dtype=bool)
        if conf.ndim != 1 or conf.shape != hits.shape or conf.size == 0:
            raise ValueError("confidence and correct must be 1-d arrays of one non-zero length")
        buckets = np.minimum((conf * CONFIDENCE_BUCKETS).astype(np.int64), CONFIDENCE_BUCKETS - 1)
        share = np.bincount(buckets, minlength=CONFIDENCE_BUCKETS) / conf.size
        accuracy = float(hits.mean())
        # at_or_above[b]: share in buckets >= b (falls with b); above[b]: strictly above.
        at_or_above = np.cumsum(share[::-1])[::-1]
        above = np.append(at_or_above[1:], 0.0)
        # The last bucket still holding the accuracy: above < accuracy <= at_or_above.
        bucket = int(np.flatnonzero(at_or_above >= accuracy - 1e-12).max())
        fraction = (accuracy - above[bucket]) / share[bucket] if share[bucket] > 0 else 0.0
        return cls(bucket, float(np.clip(fraction, 0.0, 1.0)), accuracy)

    def estimate(self, histogram: npt.ArrayLike) -> float | None:
        """Estimated accuracy of a window from its confidence histogram; None if empty."""
        counts = np.asarray(histogram, dtype=np.float64)
        total = counts.sum()
        if total <= 0:
            return None
        above = counts[self.threshold_bucket + 1 :].sum() + self.fraction_of_bucket * counts[self.threshold_bucket]
        return float(above / total)


def histogram_from_hash(raw: dict[bytes, bytes]) -> npt.NDArray[np.int64]:
    counts = np.zeros(CONFIDENCE_BUCKETS, dtype=np.int64)
    if raw:
        index = np.array([int(k) for k in raw], dtype=np.int64)
        np.add.at(counts, index, np.array([int(v) for v in raw.values()], dtype=np.int64))
    return counts
