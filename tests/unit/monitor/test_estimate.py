"""DoC label-free accuracy: exact on its reference, tracking accuracy under shift."""

import numpy as np
import pytest

from monitor.estimate import ConfidenceCalibration, histogram_from_hash
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
    calibration = ConfidenceCalibration.fit(conf, correct)
    assert calibration.estimate(_histogram(conf)) == pytest.approx(correct.mean(), abs=1e-9)


@pytest.mark.parametrize(("low", "high"), [(0.5, 1.0), (0.4, 0.9), (0.3, 0.8)])
def test_estimate_tracks_accuracy_when_confidence_shifts(low: float, high: float) -> None:
    rng = np.random.default_rng(1)
    calibration = ConfidenceCalibration.fit(*_calibrated_model(rng, 20_000, 0.5, 1.0))
    conf, correct = _calibrated_model(rng, 20_000, low, high)
    assert calibration.estimate(_histogram(conf)) == pytest.approx(correct.mean(), abs=0.05)


def test_empty_window_has_no_estimate() -> None:
    calibration = ConfidenceCalibration.fit([0.9, 0.8], [True, False])
    assert calibration.estimate(np.zeros(CONFIDENCE_BUCKETS)) is None


@pytest.mark.parametrize(("conf", "correct"), [([], []), ([0.5, 0.6], [True]), ([[0.5]], [[True]])])
def test_bad_calibration_input_is_a_value_error(conf: list, correct: list) -> None:
    with pytest.raises(ValueError):
        ConfidenceCalibration.fit(conf, correct)


def test_histogram_from_redis_hash() -> None:
    assert histogram_from_hash({b"99": b"3", b"0": b"1"})[[0, 99]].tolist() == [1, 3]
