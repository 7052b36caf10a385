"""Label-free accuracy (DoC): exact on its reference, tracking accuracy under shift, an honest interval."""

import numpy as np
import pytest
from scipy.stats import binom

from monitor.estimate import AccuracyEstimate, AccuracyEstimator, histogram_from_hash
from monitor.window_state import CONFIDENCE_BUCKETS, confidence_buckets


def _calibrated_model(rng: np.random.Generator, n: int, low: float, high: float) -> tuple[np.ndarray, np.ndarray]:
    """Confidences whose correctness probability equals the confidence."""
    conf = rng.uniform(low, high, n)
    return conf, rng.uniform(size=n) < conf


def _histogram(conf: np.ndarray) -> np.ndarray:
    # Ten classes: the rest share what the top class leaves, so conf is the top probability.
    probs = np.column_stack([conf] + [(1 - conf) / 9] * 9)
    return np.bincount(confidence_buckets(probs.astype(np.float32)), minlength=CONFIDENCE_BUCKETS)


def test_estimate_on_the_reference_equals_its_accuracy() -> None:
    conf, correct = _calibrated_model(np.random.default_rng(0), 5000, 0.5, 1.0)
    estimator = AccuracyEstimator.fit(conf, correct)
    estimate = estimator.estimate(_histogram(conf))
    assert estimate is not None
    assert estimate.value == pytest.approx(correct.mean(), abs=1e-9)
    assert estimator.reference_accuracy == pytest.approx(correct.mean())


@pytest.mark.parametrize(("low", "high"), [(0.4, 0.9), (0.6, 1.0), (0.3, 0.7)])
def test_estimate_tracks_accuracy_when_confidence_shifts(low: float, high: float) -> None:
    rng = np.random.default_rng(1)
    estimator = AccuracyEstimator.fit(*_calibrated_model(rng, 20_000, 0.3, 1.0))
    conf, correct = _calibrated_model(rng, 10_000, low, high)
    estimate = estimator.estimate(_histogram(conf))
    assert estimate is not None
    assert estimate.value == pytest.approx(correct.mean(), abs=0.02)


def test_reference_offset_absorbs_an_overconfident_model() -> None:
    """A model whose accuracy is 0.8 x its confidence: the estimate keeps the reference's
    offset, where the raw confidence would overstate accuracy by a fifth."""
    rng = np.random.default_rng(2)
    conf = rng.uniform(0.5, 1.0, 50_000)
    estimator = AccuracyEstimator.fit(conf, rng.uniform(size=conf.size) < 0.8 * conf)
    estimate = estimator.estimate(_histogram(rng.uniform(0.6, 0.8, 1000)))
    assert estimate is not None
    assert estimate.value == pytest.approx(0.8 * 0.7, abs=0.02)


def test_interval_covers_realised_accuracy_at_its_level() -> None:
    """Seeded: 600 windows of 1,000 from a calibrated model with shifted confidence; the 95%
    interval holds the realised accuracy in 95% of them (binomial 99.9% band)."""
    rng = np.random.default_rng(3)
    estimator = AccuracyEstimator.fit(*_calibrated_model(rng, 5_000, 0.3, 1.0))
    hits = 0
    windows = 600
    for _ in range(windows):
        conf, correct = _calibrated_model(rng, 1000, 0.4, 0.9)
        estimate = estimator.estimate(_histogram(conf))
        assert estimate is not None
        hits += estimate.low <= correct.mean() <= estimate.high
    low, high = binom.interval(0.999, windows, 0.95)
    assert low <= hits <= high


def test_interval_width_is_the_binomial_one() -> None:
    """Every confidence 0.805 (one bucket) and accuracy 0.8 on a reference of 10,000: each
    prediction is right with probability 0.8, so the half-width is scipy's normal quantile
    times sqrt(0.8 x 0.2 / 1000 + 0.8 x 0.2 / 10000)."""
    from scipy.stats import norm

    n_ref = 10_000
    correct = np.arange(n_ref) % 5 != 0  # exactly 0.8
    estimator = AccuracyEstimator.fit(np.full(n_ref, 0.805), correct)
    estimate = estimator.estimate(_histogram(np.full(1000, 0.805)))
    assert estimate is not None
    assert estimate.value == pytest.approx(0.8, abs=1e-12)
    half = norm.ppf(0.975) * np.sqrt(0.16 / 1000 + 0.16 / n_ref)
    assert (estimate.low, estimate.high) == pytest.approx((0.8 - half, 0.8 + half), abs=1e-12)


def test_empty_window_has_no_estimate_and_bad_input_is_refused() -> None:
    estimator = AccuracyEstimator.fit([0.9, 0.8], [True, False])
    assert estimator.estimate(np.zeros(CONFIDENCE_BUCKETS)) is None
    with pytest.raises(ValueError, match="confidence"):
        AccuracyEstimator.fit([1.5], [True])
    with pytest.raises(ValueError, match="one non-zero length"):
        AccuracyEstimator.fit([0.5, 0.6], [True])


def test_histogram_from_hash() -> None:
    assert histogram_from_hash({b"99": b"3", b"0": b"1"})[[0, 99]].tolist() == [1, 3]


def test_a_bound_below_the_estimate_caps_it_and_ends_its_interval() -> None:
    estimate = AccuracyEstimate(0.90, 0.86, 0.93)
    assert estimate.capped(None) is estimate and estimate.capped(0.95) is estimate
    capped = estimate.capped(0.70)
    assert (capped.value, capped.high) == (0.70, 0.70)
    assert capped.low == pytest.approx(0.66)  # the outcomes' half-width below, as before
    assert estimate.capped(0.02).low == 0.0
