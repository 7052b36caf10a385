"""Accuracy from agreement with a kNN surrogate: known answers on simulated windows (seeded)."""

import dataclasses

import numpy as np
import pytest

from monitor.agreement import NEIGHBOURS, Surrogate, applies, from_reference, window_estimate
from shared.model_metadata import Reference

K = 3
MEANS = np.array([[0.0, 0.0], [3.0, 0.0], [0.0, 3.0]])


def _sample(rng: np.random.Generator, n: int, spread: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """Gaussian classes in two features, equally common."""
    y = rng.integers(0, K, n)
    return rng.normal(MEANS[y], spread), y


def _served(rng: np.random.Generator, y: np.ndarray, error: float) -> np.ndarray:
    """A served model wrong on a share ``error`` of rows, whatever their features say."""
    wrong = rng.uniform(size=y.size) < error
    return np.where(wrong, (y + rng.integers(1, K, y.size)) % K, y)


def test_an_unshifted_window_is_estimated_at_the_reference_accuracy() -> None:
    rng = np.random.default_rng(0)
    x_ref, y_ref = _sample(rng, 2000)
    surrogate = Surrogate.fit(x_ref, y_ref, _served(rng, y_ref, 0.1), K)
    errors = []
    for _ in range(30):
        x, y = _sample(rng, 1000)
        served = _served(rng, y, 0.1)
        errors.append(surrogate.estimate(x, served).value - (served == y).mean())
    assert np.mean(errors) == pytest.approx(0.0, abs=0.01)


@pytest.mark.parametrize("spread", [0.5, 1.0])
def test_a_drop_the_features_do_not_show_is_seen_scaled_by_the_surrogates_accuracy(spread: float) -> None:
    """The served model loses 20 points in windows whose features did not move (its confidence
    would not say so). Agreement falls by the drop times ``a - (1 - a) / (K - 1)``, ``a`` the
    surrogate's accuracy (its errors agree with the served model's by chance): all of it when
    the classes barely overlap, less when they do."""
    rng = np.random.default_rng(1)
    x_ref, y_ref = _sample(rng, 2000, spread)
    surrogate = Surrogate.fit(x_ref, y_ref, _served(rng, y_ref, 0.05), K)
    for _ in range(10):
        x, y = _sample(rng, 1000, spread)
        served = _served(rng, y, 0.25)
        a = (surrogate.predict(x) == y).mean()
        drop = surrogate.reference_accuracy - (served == y).mean()
        expected = surrogate.reference_accuracy - drop * (a - (1 - a) / (K - 1))
        assert surrogate.estimate(x, served).value == pytest.approx(expected, abs=0.02)
        if spread < 1:
            assert surrogate.estimate(x, served).value == pytest.approx((served == y).mean(), abs=0.02)


def test_the_reference_agreement_leaves_each_row_out() -> None:
    """Classes that overlap completely: the surrogate can only guess, and a vote that counted each
    row itself would agree with the (right) served model far above chance on the reference."""
    rng = np.random.default_rng(2)
    x = rng.normal(size=(3000, 2))
    y = rng.integers(0, K, 3000)
    surrogate = Surrogate.fit(x, y, y, K)
    assert surrogate.reference_agreement == pytest.approx(1 / K, abs=0.03)


def test_the_interval_covers_the_realised_accuracy_95_percent_of_the_time() -> None:
    """A fresh reference and window per trial: the interval's coverage lies within the binomial
    99.9% band around 95% over 400 trials."""
    rng = np.random.default_rng(3)
    covered = 0
    trials = 400
    for _ in range(trials):
        x_ref, y_ref = _sample(rng, 500)
        surrogate = Surrogate.fit(x_ref, y_ref, _served(rng, y_ref, 0.15), K)
        x, y = _sample(rng, 500)
        served = _served(rng, y, 0.15)
        est = surrogate.estimate(x, served)
        covered += est.low <= (served == y).mean() <= est.high
    band = 3.29 * np.sqrt(0.95 * 0.05 / trials)
    assert 0.95 - band <= covered / trials <= 0.95 + band


def test_missing_values_vote_at_the_reference_mean() -> None:
    rng = np.random.default_rng(4)
    x_ref, y_ref = _sample(rng, 500)
    surrogate = Surrogate.fit(x_ref, y_ref, y_ref, K)
    x, _ = _sample(rng, 100)
    x[:, 0] = np.nan
    assert surrogate.predict(x).shape == (100,)
    assert 0.0 <= surrogate.estimate(x, np.zeros(100, dtype=np.int64)).value <= 1.0


def test_from_reference_needs_labels_their_features_and_served_classes_not_probabilities() -> None:
    rng = np.random.default_rng(5)
    x, y = _sample(rng, 400)
    served = np.where(rng.uniform(size=400) < 0.1, (y + 1) % K, y)  # the model is right on ~90%
    proba = np.eye(K, dtype=np.float32)[served]
    full = Reference(features=x.astype(np.float32), predicted_classes=served, probabilities=proba, labels=y,
                     labelled_features=x.astype(np.float32))
    surrogate = from_reference(full, K)
    assert surrogate is not None and surrogate.reference_accuracy == float((served == y).mean()) and applies(full, K)
    no_labels = Reference(features=x.astype(np.float32), predicted_classes=served, probabilities=proba,
                          labels=np.zeros(0, np.int64))
    assert from_reference(no_labels, K) is None and not applies(no_labels, K)
    # A model that logs no probabilities: its served classes are all agreement needs.
    no_probabilities = dataclasses.replace(full, probabilities=np.zeros((400, 0), np.float32))
    without = from_reference(no_probabilities, K)
    assert without is not None and applies(no_probabilities, K)
    assert without.reference_agreement == surrogate.reference_agreement
    assert without.estimate(x, served) == surrogate.estimate(x, served)
    # A regressor (no classes; its predictions are values): no surrogate, no accuracy estimate.
    regressor = Reference(features=x.astype(np.float32), predicted_classes=np.zeros(0, np.int64),
                          probabilities=np.zeros((400, 0), np.float32), labels=y,
                          predicted_values=rng.normal(size=400).astype(np.float32),
                          labelled_features=x.astype(np.float32))
    assert from_reference(regressor, 0) is None and not applies(regressor, 0)
    assert from_reference(regressor, K) is None  # no served class on the labelled rows either


def test_bad_input_is_refused() -> None:
    rng = np.random.default_rng(6)
    x, y = _sample(rng, 100)
    with pytest.raises(ValueError):
        Surrogate.fit(x[:NEIGHBOURS], y[:NEIGHBOURS], y[:NEIGHBOURS], K)
    with pytest.raises(ValueError):
        Surrogate.fit(x, y, y, n_classes=2)  # labels up to 2
    surrogate = Surrogate.fit(x, y, y, K)
    with pytest.raises(ValueError):
        surrogate.predict(np.zeros((10, 3)))
    with pytest.raises(ValueError):
        surrogate.agreement(x, y[:-1])


def test_the_monitors_estimate_samples_a_large_window_and_needs_known_classes() -> None:
    rng = np.random.default_rng(1)
    y_ref = rng.integers(0, 2, 400)
    surrogate = Surrogate.fit(rng.normal(3.0 * y_ref[:, None], 1.0, (400, 2)), y_ref, y_ref, 2)
    y = rng.integers(0, 2, 300)
    x = rng.normal(3.0 * y[:, None], 1.0, (300, 2))
    whole = window_estimate(surrogate, x, y, seed=5)
    assert whole == surrogate.estimate(x, y)
    sampled = window_estimate(surrogate, x, y, seed=5, max_rows=100)
    rows = np.sort(np.random.default_rng(5).choice(300, 100, replace=False))
    assert sampled == surrogate.estimate(x[rows], y[rows])
    assert sampled is not None and whole is not None and sampled.high - sampled.low > whole.high - whole.low
    assert window_estimate(surrogate, x, np.where(y == 1, 2, y), seed=5) is None  # class 2 unknown
    assert window_estimate(None, x, y, seed=5) is None
