"""Label-free accuracy from agreement with a surrogate: a k-nearest-neighbour vote on the reference.

Confidence-based estimates (:mod:`monitor.estimate`) miss a shift that leaves
the served model confident and wrong. A second classifier that errs
differently sees some of it: GDE (Jiang et al., ICLR 2022) estimates a
model's error by how often it disagrees with another model. Here the other
model is a surrogate any registered classifier has: a k-nearest-neighbour
vote among the labelled reference rows (their features standardised by them;
missing values at their mean), numpy only, fitted in no time. The surrogate
is weaker than the served model, so raw agreement is not accuracy; the
reference calibrates the offset, as DoC does for confidence:

    estimate = accuracy_ref + (agreement_window - agreement_ref)

with ``agreement_ref`` the leave-one-out agreement on the reference (each
row voted by its neighbours, not itself), so that both agreements are on
rows the surrogate did not see.

The neighbours are every labelled row the monitor has, up to
:data:`MAX_REFERENCE_ROWS`: the held-out rows the served model's accuracy is
known on, then, for a model ``driftwatch train`` made, its training rows
with their classes (``Reference.feature_labels``). Those vote but are not
scored: the served model saw them, so its answers there say nothing of its
accuracy. More neighbours make a stronger surrogate, and a stronger one
follows a drop more closely (below). On digits, whose held-out sample is
360 rows, adding its 1,078 training rows took the error on windows losing
5-30 points from 0.038 to 0.021 (``benchmarks/RESULTS.md``).

The surrogate's own errors agree with the served model's by chance only, so
a drop of ``d`` points moves agreement by about ``d * (a - (1 - a) / (K - 1))``
for a surrogate of accuracy ``a`` over ``K`` classes: the weaker the
surrogate, the more of a drop it misses.

Why it helps and where it cannot: a shift that moves rows away from the
reference (noise, rotation) usually changes the two models' answers in
different ways, so disagreement rises while the served model stays
confident; a shift both models read alike (a subpopulation the features
describe, an extrapolated feature) moves neither. ``benchmarks/estimate.py``
measures it against DoC and the peers (RESULTS.md, "Label-free accuracy
estimate": its error on windows losing 5-30 points, against DoC's and
NannyML CBPE's; 17-28 ms a window of 1,000 on up to 2,000 neighbours).

The monitor's estimate where it applies: each stored window row carries its
predicted class (``monitor.window_state.window_rows``), the drift report
pairs them (:func:`window_estimate`) and stores the estimate, and
``/performance`` shows it with ``estimate_method: "agreement"`` (capped by the
class-mix bound where that is lower: ``"agreement-capped"``); elsewhere
(no labelled reference features, sliding windows, rows filed before they
carried their class) DoC capped by the class-mix bound. It reads no
probabilities: a classifier that logs none gets it too (and no DoC).

Examples
--------
Two Gaussian classes; the served model is right on the reference but sends
a quarter of class 1 to class 0 in a window whose features did not move:

>>> rng = np.random.default_rng(0)
>>> def sample(n):
...     y = rng.integers(0, 2, n)
...     return rng.normal(3.0 * y[:, None], 1.0, (n, 2)), y
>>> x_ref, y_ref = sample(2000)
>>> surrogate = Surrogate.fit(x_ref, y_ref, y_ref, n_classes=2)
>>> x, y = sample(1000)
>>> served = np.where((y == 1) & (rng.uniform(size=1000) < 0.25), 0, y)
>>> est = surrogate.estimate(x, served)
>>> round(float((served == y).mean()), 2), round(est.value, 2), round(est.low, 2), round(est.high, 2)
(0.88, 0.88, 0.87, 0.89)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from monitor.class_mix import MAX_REFERENCE_ROWS
from monitor.estimate import AccuracyEstimate
from monitor.feature_scale import FeatureScale
from shared.model_metadata import Reference

NEIGHBOURS = 5
"""Votes per row: few enough to follow the reference's local class, enough to smooth label noise."""

_Z95 = 1.959963984540054  # scipy.stats.norm.ppf(0.975)
_BLOCK = 512  # window rows per distance block: (512 x 2,000) float64 is 8 MB

MAX_WINDOW_ROWS = 10_000
"""Rows of a window the monitor's estimate reads at most (a seeded sample past it): the cost grows
with window x reference rows (17-28 ms for 1,000 x 359-2,000), and a time window can hold many more."""


@dataclass(frozen=True, slots=True)
class Surrogate:
    """A kNN vote over labelled reference rows, with the served model's agreement with it there."""

    scale: FeatureScale
    standardised: npt.NDArray[np.float64]  # (n + extra, F) neighbour rows, the scored n first; missing at 0
    squared_norms: npt.NDArray[np.float64]
    labels: npt.NDArray[np.int64]  # of every neighbour row
    n_classes: int
    reference_rows: int  # the scored rows (the first ones): what the reference's figures are means over
    reference_accuracy: float
    reference_agreement: float
    gap_variance: float  # per row, of correct - agrees on the reference

    @classmethod
    def fit(
        cls,
        features: npt.ArrayLike,
        labels: npt.ArrayLike,
        predicted: npt.ArrayLike,
        n_classes: int,
        extra_features: npt.ArrayLike | None = None,
        extra_labels: npt.ArrayLike | None = None,
    ) -> Surrogate:
        """From labelled reference rows (features, true classes and the served model's predictions),
        and optionally more labelled rows that only vote (``extra_*``: rows whose served answers say
        nothing of its accuracy, such as its training rows)."""
        x = np.asarray(features, dtype=np.float64)
        y = np.asarray(labels, dtype=np.int64)
        served = np.asarray(predicted, dtype=np.int64)
        if x.ndim != 2 or y.shape != (x.shape[0],) or served.shape != y.shape or x.shape[0] <= NEIGHBOURS:
            raise ValueError(f"features must be (n, F), labels and predicted (n,), with n > {NEIGHBOURS}")
        if (extra_features is None) != (extra_labels is None):
            raise ValueError("extra_features and extra_labels go together")
        if extra_features is not None and extra_labels is not None:
            extra_x = np.asarray(extra_features, dtype=np.float64)
            extra_y = np.asarray(extra_labels, dtype=np.int64)
            if extra_x.ndim != 2 or extra_x.shape[1] != x.shape[1] or extra_y.shape != (extra_x.shape[0],):
                raise ValueError(f"extra_features must be (e, {x.shape[1]}) and extra_labels (e,)")
            x, y = np.concatenate([x, extra_x]), np.concatenate([y, extra_y])
        if n_classes < 2 or y.min() < 0 or y.max() >= n_classes:
            raise ValueError(f"labels must lie in [0, {n_classes}) with n_classes >= 2")
        n = served.size
        scale = FeatureScale.fit(x)
        z = scale.apply(x)
        norms = np.einsum("ij,ij->i", z, z)
        # Leave one out: each scored row voted by the other neighbours, itself excluded.
        votes = _vote(z[:n], z, norms, y, n_classes, exclude_self=True)
        gap = (served == y[:n]).astype(np.float64) - (votes == served)
        return cls(scale, z, norms, y, n_classes, n, float((served == y[:n]).mean()),
                   float((votes == served).mean()), float(gap.var()))

    def predict(self, window: npt.ArrayLike) -> npt.NDArray[np.int64]:
        """The surrogate's class for each window row."""
        x = np.asarray(window, dtype=np.float64)
        if x.ndim != 2 or x.shape[1] != self.standardised.shape[1]:
            raise ValueError(f"window must be (m, {self.standardised.shape[1]})")
        z = self.scale.apply(x)
        return _vote(z, self.standardised, self.squared_norms, self.labels, self.n_classes, exclude_self=False)

    def agreement(self, window: npt.ArrayLike, predicted: npt.ArrayLike) -> float:
        """Share of window rows where the served model's class is the surrogate's."""
        served = np.asarray(predicted, dtype=np.int64)
        votes = self.predict(window)
        if served.shape != votes.shape or served.size == 0:
            raise ValueError("predicted must have one class per window row, and the window rows > 0")
        return float((votes == served).mean())

    def estimate(self, window: npt.ArrayLike, predicted: npt.ArrayLike) -> AccuracyEstimate:
        """The window's accuracy, the reference's moved by the change in agreement, and a 95%
        interval. The estimate's error is the window's mean of ``correct - agrees`` less the
        reference's: without a shift two sample means of one variable, whose variance the
        reference gives, over ``1/m + 1/n``. It covers sampling, not the bias of a shift both
        models read alike."""
        agree = self.agreement(window, predicted)
        m, n = np.asarray(predicted).size, self.reference_rows
        value = float(np.clip(self.reference_accuracy + agree - self.reference_agreement, 0.0, 1.0))
        half = _Z95 * float(np.sqrt(self.gap_variance * (1 / m + 1 / n)))
        return AccuracyEstimate(value, max(value - half, 0.0), min(value + half, 1.0))


def _vote(
    z: npt.NDArray[np.float64],
    ref: npt.NDArray[np.float64],
    ref_norms: npt.NDArray[np.float64],
    labels: npt.NDArray[np.int64],
    n_classes: int,
    exclude_self: bool,
) -> npt.NDArray[np.int64]:
    """Majority class among each row's nearest reference rows (ties: the nearer neighbours' sum of
    ranks decides, through a small rank weight). ``exclude_self``: ``z`` are the first rows of
    ``ref``, each voted without itself."""
    out = np.empty(z.shape[0], dtype=np.int64)
    rank_weight = 1.0 + 1e-3 * (NEIGHBOURS - np.arange(NEIGHBOURS))
    for start in range(0, z.shape[0], _BLOCK):
        block = z[start : start + _BLOCK]
        dist = ref_norms[None, :] - 2.0 * block @ ref.T  # + |row|^2, the same for every neighbour
        if exclude_self:
            dist[np.arange(block.shape[0]), np.arange(start, start + block.shape[0])] = np.inf
        near = np.argpartition(dist, NEIGHBOURS - 1, axis=1)[:, :NEIGHBOURS]
        order = np.take_along_axis(dist, near, axis=1).argsort(axis=1)
        near = np.take_along_axis(near, order, axis=1)
        cells = (np.arange(block.shape[0])[:, None] * n_classes + labels[near]).ravel()
        scores = np.bincount(cells, weights=np.tile(rank_weight, block.shape[0]), minlength=block.shape[0] * n_classes)
        out[start : start + block.shape[0]] = scores.reshape(block.shape[0], n_classes).argmax(axis=1)
    return out


def _labelled(reference: Reference, n_classes: int) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]] | None:
    """The served model's class on each labelled reference row, and the rows a surrogate can use
    (a true class in ``[0, n_classes)``); None where it cannot be fitted: a regressor (no classes),
    no labels, no labelled rows' features, or no served class on them."""
    x, y = reference.labelled_features, reference.labels
    if n_classes < 2 or y.ndim != 1 or x.ndim != 2 or x.shape[0] != y.shape[0]:
        return None
    served = reference.predicted_classes  # what the model logs, with or without probabilities
    if served.shape != y.shape:
        probabilities = reference.probabilities  # a reference whose prediction is its argmax alone
        if probabilities.ndim != 2 or probabilities.shape != (y.shape[0], n_classes):
            return None
        served = probabilities.argmax(axis=1)
    rows = np.flatnonzero((y >= 0) & (y < n_classes))
    return (served, rows) if rows.size > NEIGHBOURS else None


def applies(reference: Reference, n_classes: int) -> bool:
    """Whether :func:`from_reference` gives a surrogate, without fitting it (what the performance
    report's ``estimate_unavailable`` says for a model without probabilities)."""
    return _labelled(reference, n_classes) is not None


def from_reference(reference: Reference, n_classes: int) -> Surrogate | None:
    """The surrogate of a registered classifier's reference: its labelled rows' features, true
    classes and the served model's classes (``predicted_classes``: a model that logs no
    probabilities has them too), at most :data:`monitor.class_mix.MAX_REFERENCE_ROWS` rows (the
    same seeded sample as the class-mix bound's), topped up to that many neighbours with the
    training rows' classes where the reference has them (``feature_labels``). None for a
    regressor, or without labels or the labelled rows' features."""
    labelled = _labelled(reference, n_classes)
    if labelled is None:
        return None
    served, rows = labelled
    if rows.size > MAX_REFERENCE_ROWS:
        rows = np.sort(np.random.default_rng(0).choice(rows, MAX_REFERENCE_ROWS, replace=False))
    x = reference.labelled_features[rows]
    extra_x, extra_y = _training_rows(reference, n_classes, x.shape[1], MAX_REFERENCE_ROWS - rows.size)
    return Surrogate.fit(x, reference.labels[rows], served[rows], n_classes, extra_x, extra_y)


def _training_rows(
    reference: Reference, n_classes: int, n_features: int, room: int
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.int64]] | tuple[None, None]:
    """At most ``room`` of the training rows whose classes the reference has (a seeded sample),
    and those classes; None where it has none or there is no room."""
    x, y = reference.features, reference.feature_labels
    if room <= 0 or y.ndim != 1 or y.size == 0 or x.ndim != 2 or x.shape != (y.size, n_features):
        return None, None
    rows = np.flatnonzero((y >= 0) & (y < n_classes))
    if rows.size > room:
        rows = np.sort(np.random.default_rng(1).choice(rows, room, replace=False))
    return (x[rows], y[rows]) if rows.size else (None, None)


def window_estimate(
    surrogate: Surrogate | None, features: npt.NDArray[np.floating], classes: npt.NDArray[np.int64], seed: int,
    max_rows: int = MAX_WINDOW_ROWS,
) -> AccuracyEstimate | None:
    """A window's estimate as the drift report makes it: None without a surrogate, rows, or with a
    class the model does not know; on a sample of at most ``max_rows`` rows drawn with ``seed`` (the
    window's index: a retry or another replica draws the same), whose size the interval then uses."""
    if surrogate is None or classes.size != len(features) or classes.size == 0:
        return None
    if classes.min() < 0 or classes.max() >= surrogate.n_classes:
        return None
    if classes.size > max_rows:
        rows = np.sort(np.random.default_rng(seed).choice(classes.size, max_rows, replace=False))
        features, classes = features[rows], classes[rows]
    return surrogate.estimate(features, classes)
