"""Label-free accuracy: Difference of Confidences (DoC), calibrated on the reference.

Labels arrive late or never; the model's confidence arrives with every
prediction. DoC (Guillory et al., ICCV 2021) estimates a window's accuracy
as the reference accuracy plus the change in mean top-class confidence:

    estimate = accuracy_ref + (mean_confidence_window - mean_confidence_ref)

The reference offset (confidence minus accuracy on held-out data) absorbs a
network's usual overconfidence; what is left follows the shift. It is exact
for a calibrated model whatever the shift in confidence, where thresholded
confidence (ATC) is not: with confidences uniform on [0.5, 1] in the
reference and [0.4, 0.9] in a window, ATC said 0.56 against a true 0.65, DoC
0.65. Its gap to realised accuracy, once labels come, is itself a signal.

Confidence is kept per window as a histogram of percent buckets (see
``monitor.window_state.confidence_buckets``); bucket midpoints bound the error of
the mean at half a percent.

Examples
--------
>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> conf = rng.uniform(0.5, 1.0, 10_000)
>>> correct = rng.uniform(size=10_000) < conf          # a calibrated model
>>> cal = ConfidenceCalibration.fit(conf, correct)
>>> shifted = rng.uniform(0.4, 0.9, 10_000)            # less confident traffic
>>> window = np.bincount(np.minimum((shifted * 100).astype(int), 99), minlength=100)
>>> round(cal.estimate(window), 2), round(float((rng.uniform(size=10_000) < shifted).mean()), 2)
(0.65, 0.65)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from monitor.window_state import CONFIDENCE_BUCKETS

_MIDPOINTS = (np.arange(CONFIDENCE_BUCKETS) + 0.5) / CONFIDENCE_BUCKETS


def mean_confidence(histogram: npt.ArrayLike) -> float | None:
    counts = np.asarray(histogram, dtype=np.float64)
    total = counts.sum()
    return float(counts @ _MIDPOINTS / total) if total > 0 else None


@dataclass(frozen=True, slots=True)
class ConfidenceCalibration:
    reference_accuracy: float
    reference_confidence: float

    @classmethod
    def fit(cls, confidence: npt.ArrayLike, correct: npt.ArrayLike) -> ConfidenceCalibration:
        """From the top-class probabilities and correctness of a held-out sample."""
        conf = np.asarray(confidence, dtype=np.float64)
        hits = np.asarray(correct, dtype=bool)
        if conf.ndim != 1 or conf.shape != hits.shape or conf.size == 0:
            raise ValueError("confidence and correct must be 1-d arrays of one non-zero length")
        if not ((conf >= 0) & (conf <= 1)).all():
            raise ValueError("confidence must lie in [0, 1]")
        # Measured through the same buckets as windows, so bucketing cancels out.
        buckets = np.minimum((conf * CONFIDENCE_BUCKETS).astype(np.int64), CONFIDENCE_BUCKETS - 1)
        reference_confidence = mean_confidence(np.bincount(buckets, minlength=CONFIDENCE_BUCKETS))
        assert reference_confidence is not None
        return cls(float(hits.mean()), reference_confidence)

    def estimate(self, histogram: npt.ArrayLike) -> float | None:
        """Estimated accuracy of a window from its confidence histogram; None if empty."""
        window_confidence = mean_confidence(histogram)
        if window_confidence is None:
            return None
        return float(np.clip(self.reference_accuracy + window_confidence - self.reference_confidence, 0.0, 1.0))


def histogram_from_hash(raw: dict[bytes, bytes]) -> npt.NDArray[np.int64]:
    counts = np.zeros(CONFIDENCE_BUCKETS, dtype=np.int64)
    if raw:
        index = np.array([int(k) for k in raw], dtype=np.int64)
        np.add.at(counts, index, np.array([int(v) for v in raw.values()], dtype=np.int64))
    return counts
