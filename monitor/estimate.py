"""Label-free accuracy: Difference of Confidences (DoC), calibrated on the reference, with an interval.

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

Why DoC and not a finer calibration: ``benchmarks/estimate.py`` measured it
against ATC, NannyML's CBPE and a per-bucket (isotonic) calibration on
windows whose accuracy really falls; DoC and CBPE were best and equal, the
per-bucket calibration worse (it cannot extrapolate below the reference's
confidences); temperature scaling and importance weighting of the
reference's correctness did not beat it either. No confidence-based estimate
sees a shift that leaves the model confident and wrong (noise, occlusion,
rotation): see RESULTS.md. :mod:`monitor.class_mix` bounds accuracy from the
predictions' class mix; the performance report caps DoC by that bound
(:meth:`AccuracyEstimate.capped`). Agreement with a kNN surrogate on the
labelled reference (:mod:`monitor.agreement`) has about a third of DoC's error
on windows losing 5-30 points (0.028 against 0.077): the performance report
shows it instead where a window's drift report has it, and DoC elsewhere.

The interval treats each prediction's correctness as a Bernoulli draw with
probability ``confidence + offset`` (what DoC assumes) plus the sampling
error of the reference accuracy: it covers the realised accuracy when the
reference calibration still holds, not the bias of such a shift.

Confidence is kept per window as a histogram of percent buckets (see
``monitor.window_state.confidence_buckets``); bucket midpoints bound the error of
the mean at half a percent. A model without probabilities (K = 0) has no
confidence: no histogram is kept and no estimator fitted, and the
performance report says :data:`NO_PROBABILITIES`.

Examples
--------
>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> conf = rng.uniform(0.5, 1.0, 10_000)
>>> correct = rng.uniform(size=10_000) < conf          # a calibrated model
>>> estimator = AccuracyEstimator.fit(conf, correct)
>>> shifted = rng.uniform(0.4, 0.9, 10_000)            # less confident traffic
>>> window = np.bincount(np.minimum((shifted * 100).astype(int), 99), minlength=100)
>>> est = estimator.estimate(window)
>>> round(est.value, 2), round(float((rng.uniform(size=10_000) < shifted).mean()), 2)
(0.65, 0.65)
>>> round(est.low, 3), round(est.high, 3)
(0.635, 0.66)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from monitor.window_state import CONFIDENCE_BUCKETS

NO_PROBABILITIES = "unavailable: no probabilities"
"""What the performance report says of a model that logs no probabilities (K = 0): the
estimate reads the top-class confidence, which such a model does not have."""

_MIDPOINTS = (np.arange(CONFIDENCE_BUCKETS) + 0.5) / CONFIDENCE_BUCKETS
_Z95 = 1.959963984540054  # scipy.stats.norm.ppf(0.975)


@dataclass(frozen=True, slots=True)
class AccuracyEstimate:
    """A window's label-free accuracy estimate and its 95% interval."""

    value: float
    low: float
    high: float

    def capped(self, bound: float | None) -> AccuracyEstimate:
        """At most ``bound`` (:mod:`monitor.class_mix`): where the predictions' class mix says the
        model is wrong more often than its confidence does. The capped value is then an upper
        bound too; the interval keeps the width below it that the outcomes' noise gives."""
        if bound is None or bound >= self.value:
            return self
        return AccuracyEstimate(bound, max(bound - (self.value - self.low), 0.0), bound)


@dataclass(frozen=True, slots=True)
class AccuracyEstimator:
    """DoC fitted on the reference's top-class confidences and correctness."""

    reference_accuracy: float
    reference_confidence: float
    reference_size: int

    @classmethod
    def fit(cls, confidence: npt.ArrayLike, correct: npt.ArrayLike) -> AccuracyEstimator:
        """From the top-class probabilities and correctness of a held-out sample."""
        conf = np.asarray(confidence, dtype=np.float64)
        hits = np.asarray(correct, dtype=bool)
        if conf.ndim != 1 or conf.shape != hits.shape or conf.size == 0:
            raise ValueError("confidence and correct must be 1-d arrays of one non-zero length")
        if not ((conf >= 0) & (conf <= 1)).all():
            raise ValueError("confidence must lie in [0, 1]")
        # Measured through the same buckets as windows, so bucketing cancels out.
        buckets = np.minimum((conf * CONFIDENCE_BUCKETS).astype(np.int64), CONFIDENCE_BUCKETS - 1)
        counts = np.bincount(buckets, minlength=CONFIDENCE_BUCKETS)
        return cls(float(hits.mean()), float(counts @ _MIDPOINTS / conf.size), int(conf.size))

    def estimate(self, histogram: npt.ArrayLike) -> AccuracyEstimate | None:
        """Estimated accuracy of a window from its confidence histogram; None if empty."""
        counts = np.asarray(histogram, dtype=np.float64)
        total = counts.sum()
        if total <= 0:
            return None
        offset = self.reference_accuracy - self.reference_confidence
        value = float(np.clip(counts @ _MIDPOINTS / total + offset, 0.0, 1.0))
        p = np.clip(_MIDPOINTS + offset, 0.0, 1.0)
        outcomes = float(counts @ (p * (1 - p))) / total**2
        acc = self.reference_accuracy
        reference = acc * (1 - acc) / self.reference_size
        half = _Z95 * float(np.sqrt(outcomes + reference))
        return AccuracyEstimate(value, max(value - half, 0.0), min(value + half, 1.0))


def histogram_from_hash(raw: dict[bytes, bytes]) -> npt.NDArray[np.int64]:
    counts = np.zeros(CONFIDENCE_BUCKETS, dtype=np.int64)
    if raw:
        index = np.array([int(k) for k in raw], dtype=np.int64)
        np.add.at(counts, index, np.array([int(v) for v in raw.values()], dtype=np.int64))
    return counts
