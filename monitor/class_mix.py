"""An upper bound on a window's accuracy: its predicted class mix against the mix its features imply.

Confidence-based estimates (:mod:`monitor.estimate`) miss a shift that leaves
the model confident and wrong: noisy or rotated digits lose 40 points of
accuracy while the top-class confidence loses 9. Such a shift usually moves
the predictions' class mix: the model sends many rows to a few classes.
Every wrong prediction moves at most one row's mass from its true class to
another, so

    error rate >= TV(predicted mix, true mix) = 0.5 * sum_k |q_k - pi_k|

and ``1 - TV`` bounds the accuracy. The true mix ``pi`` is unknown without
labels. Taking the reference's would cap every label-shifted window (the
class mix moved, the model did not get worse): ``benchmarks/estimate.py``
measured 0.19 error on digits with classes 0-4 three times as common.
Instead ``pi`` is the reference's labels reweighted toward the window
(importance weighting): a domain classifier, L2-penalised logistic
regression of window against reference rows on features standardised by
the reference, gives the density ratio ``p(x | window) / p(x | reference)``
at each labelled reference row (clipped at :data:`MAX_WEIGHT`). Under label
shift the features carry the new mix and the bound bites little. When the
features leave the reference (noise, rotation) the domain classifier
separates them and the weights pile onto a few reference rows: the
reweighted mix is then only as precise as those rows, which the sampling
allowance below accounts for.

Both mixes are samples: the expected TV between two samples of one mix,
``0.5 * sum_k sqrt(2 pi_k (1 - pi_k) (1/m + 1/n) / pi)`` for a window of
``m`` rows and a reweighted reference of effective size
``n = (sum w)^2 / sum w^2`` (Kish; the reference's row count when the
weights are even; the normal approximation of each class's absolute
difference), is subtracted, so that a window without a shift is not capped
by sampling noise, nor a window that leaves the reference's support by the
class mix of the handful of reference rows its weights pile onto.

It is a bound, not an estimate. With the reference's row count as ``n``,
``min(DoC, bound)`` in ``benchmarks/estimate.py`` raised DoC's error on
windows losing 5-30 points from 0.077 to 0.100 (noise sd 0.4: 0.278 against
0.064): where it bit, the weights had piled onto 3-22 reference rows and
the "expected mix" was theirs, right by chance at times (heavier shifts:
0.108 against 0.198). With the effective size it is no worse than DoC on
any of those windows (0.074 overall) and changes nothing on unshifted and
label-shifted ones; it seldom bites. The monitor computes it when it reads a window's rows
for the drift report (``accuracy_bound`` in the report, from the reference's
labelled rows: :attr:`shared.model_metadata.Reference.labelled_features`),
and the performance report caps DoC by it for that ingest window.
Categorical features enter the linear classifier as their integer codes, and
missing values as the reference mean (a linear classifier sees shifts in
means and spreads, which is where these shifts show).

Examples
--------
Two classes, a model that sends a third of class 1 to class 0 on a window
whose features did not move: accuracy falls to 0.84 and the bound sees it.
On a window whose mix moved from 50% to 80% class 1 and whose predictions
are all right, the bound bites by 6 points: the ratio of two mixtures
saturates, which a logistic (log-linear) ratio cannot, so the reweighted
reference reaches 73% of class 1, not 80%. Milder label shifts (the
benchmark's) stay within the sampling allowance.

>>> rng = np.random.default_rng(0)
>>> def sample(n, share):
...     y = (rng.uniform(size=n) < share).astype(int)
...     return rng.normal(2.0 * y[:, None], 1.0, (n, 3)), y
>>> x_ref, y_ref = sample(4000, 0.5)
>>> bound = ClassMixBound.fit(x_ref, y_ref, n_classes=2)
>>> x, y = sample(1000, 0.5)
>>> wrong = (y == 1) & (rng.uniform(size=1000) < 1 / 3)
>>> predicted = np.where(wrong, 0, y)
>>> round(float((predicted == y).mean()), 2), round(bound.bound(x, np.bincount(predicted, minlength=2)), 2)
(0.84, 0.85)
>>> x, y = sample(1000, 0.8)
>>> round(bound.bound(x, np.bincount(y, minlength=2)), 2)
0.94
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from monitor.feature_scale import FeatureScale
from shared.model_metadata import Reference

MAX_WEIGHT = 20.0
"""Importance weights are clipped here: a few reference rows must not stand for a whole window."""

RIDGE = 1.0
"""L2 penalty of the domain classifier (features standardised, intercept not penalised)."""

MAX_REFERENCE_ROWS = 2_000
"""A monitor's bound keeps at most this many labelled reference rows (a seeded sample): each
window's domain classifier is fitted on them plus the window (about 25 ms at 64 features,
Newton converging in ~6 steps), and a window of ~1,000 rows limits the ratio's precision anyway."""

_NEWTON_STEPS = 30


@dataclass(frozen=True, slots=True)
class ClassMixBound:
    """Fitted on the labelled reference rows: their features and true classes."""

    scale: FeatureScale
    standardised: npt.NDArray[np.float64]  # (n, F) reference rows, missing values at 0
    labels: npt.NDArray[np.int64]
    n_classes: int

    @classmethod
    def fit(cls, features: npt.ArrayLike, labels: npt.ArrayLike, n_classes: int) -> ClassMixBound:
        x = np.asarray(features, dtype=np.float64)
        y = np.asarray(labels, dtype=np.int64)
        if x.ndim != 2 or y.shape != (x.shape[0],) or x.shape[0] == 0:
            raise ValueError("features must be (n, F) and labels (n,), with n > 0")
        if n_classes < 2 or y.min() < 0 or y.max() >= n_classes:
            raise ValueError(f"labels must lie in [0, {n_classes}) with n_classes >= 2")
        scale = FeatureScale.fit(x)
        return cls(scale, scale.apply(x), y, n_classes)

    def bound(self, window: npt.ArrayLike, predicted_counts: npt.ArrayLike) -> float:
        """Upper bound on the accuracy of a window of rows ``window`` whose predictions fall in the
        classes as ``predicted_counts`` (length ``n_classes``) says."""
        x = np.asarray(window, dtype=np.float64)
        counts = np.asarray(predicted_counts, dtype=np.float64)
        if x.ndim != 2 or x.shape[1] != self.standardised.shape[1] or x.shape[0] == 0:
            raise ValueError(f"window must be (m, {self.standardised.shape[1]}) with m > 0")
        if counts.shape != (self.n_classes,) or counts.sum() <= 0:
            raise ValueError(f"predicted_counts must have {self.n_classes} entries summing above 0")
        weights = self.weights(x)
        expected = np.bincount(self.labels, weights=weights, minlength=self.n_classes) / weights.sum()
        gap = 0.5 * float(np.abs(counts / counts.sum() - expected).sum())
        # The reweighted mix is as precise as a sample of the weights' effective size (Kish).
        m, n = float(counts.sum()), float(weights.sum() ** 2 / (weights**2).sum())
        noise = 0.5 * float(np.sqrt(2 * expected * (1 - expected) * (1 / m + 1 / n) / np.pi).sum())
        return 1.0 - max(gap - noise, 0.0)

    def weights(self, window: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        """Density ratio window/reference at each reference row, scaled to mean 1 over the window's
        share, clipped at :data:`MAX_WEIGHT`."""
        ref = self.standardised
        win = self.scale.apply(window)
        x = np.hstack([np.vstack([ref, win]), np.ones((ref.shape[0] + win.shape[0], 1))])
        target = np.r_[np.zeros(ref.shape[0]), np.ones(win.shape[0])]
        penalty = np.eye(x.shape[1]) * RIDGE
        penalty[-1, -1] = 0.0
        coef = np.zeros(x.shape[1])
        for _ in range(_NEWTON_STEPS):
            p = 1.0 / (1.0 + np.exp(-np.clip(x @ coef, -50.0, 50.0)))
            hessian = (x * (p * (1 - p))[:, None]).T @ x + penalty
            step = np.linalg.solve(hessian, x.T @ (p - target) + penalty @ coef)
            coef -= step
            if np.abs(step).max() < 1e-6:
                break
        logit = np.clip(x[: ref.shape[0]] @ coef, -50.0, 50.0)
        return np.asarray(np.minimum(np.exp(logit) * ref.shape[0] / win.shape[0], MAX_WEIGHT))


def from_reference(reference: Reference, n_classes: int) -> ClassMixBound | None:
    """The bound of a registered classifier's reference: its rows with a true label and their
    features. None without probabilities (no classifier), labels, or the labelled rows' features."""
    x, y = reference.labelled_features, reference.labels
    if n_classes < 2 or reference.probabilities.ndim != 2 or reference.probabilities.shape[1] == 0:
        return None
    if y.ndim != 1 or x.ndim != 2 or x.shape[0] != y.shape[0]:
        return None
    rows = np.flatnonzero((y >= 0) & (y < n_classes))
    if rows.size < 2:
        return None
    if rows.size > MAX_REFERENCE_ROWS:
        rows = np.sort(np.random.default_rng(0).choice(rows, MAX_REFERENCE_ROWS, replace=False))
    return ClassMixBound.fit(x[rows], y[rows], n_classes)
