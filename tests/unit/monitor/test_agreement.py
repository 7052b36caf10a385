"""Accuracy from agreement with a kNN surrogate: known answers on simulated windows (seeded)."""

import dataclasses

import numpy as np
import pytest

from monitor.agreement import NEIGHBOURS, Surrogate, applies, from_reference, window_estimate
from monitor.class_mix import MAX_REFERENCE_ROWS
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


@pytest.mark.parametrize("scored", [3000, 1000])
def test_the_reference_agreement_leaves_each_row_out(scored: int) -> None:
    """Classes that overlap completely: the surrogate can only guess, and a vote that counted each
    row itself would agree with the (right) served model far above chance on the reference; so
    too where the scored rows are the first of more neighbours (training rows after them)."""
    rng = np.random.default_rng(2)
    x = rng.normal(size=(3000, 2))
    y = rng.integers(0, K, 3000)
    surrogate = Surrogate.fit(x[:scored], y[:scored], y[:scored], K, x[scored:], y[scored:])
    assert surrogate.reference_agreement == pytest.approx(1 / K, abs=0.03)


def _with_noise_features(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """The Gaussian classes beside 6 features that say nothing: a vote over few rows errs more."""
    x, y = _sample(rng, n)
    return np.hstack([x, rng.normal(size=(n, 6))]), y


def test_training_rows_vote_but_only_the_held_out_rows_are_scored() -> None:
    rng = np.random.default_rng(7)
    x_ref, y_ref = _with_noise_features(rng, 200)
    x_train, y_train = _with_noise_features(rng, 1800)
    served_ref = _served(rng, y_ref, 0.1)
    surrogate = Surrogate.fit(x_ref, y_ref, served_ref, K, x_train, y_train)
    assert surrogate.reference_rows == 200 and surrogate.labels.size == 2000
    assert surrogate.reference_accuracy == float((served_ref == y_ref).mean())
    # Votes over all 2,000 rows, as a surrogate fitted on them all would cast them.
    every_row = Surrogate.fit(np.vstack([x_ref, x_train]), np.concatenate([y_ref, y_train]),
                              np.concatenate([y_ref, y_train]), K)
    x, _ = _with_noise_features(rng, 500)
    np.testing.assert_array_equal(surrogate.predict(x), every_row.predict(x))
    # The interval is over the 200 scored rows (1/500 + 1/200), not the 2,000 neighbours.
    served = rng.integers(0, K, 500)
    est = surrogate.estimate(x, served)
    half = 1.959963984540054 * np.sqrt(surrogate.gap_variance * (1 / 500 + 1 / 200))
    assert (est.value - est.low, est.high - est.value) == (pytest.approx(half), pytest.approx(half))
    with pytest.raises(ValueError):
        Surrogate.fit(x_ref, y_ref, served_ref, K, x_train, None)
    with pytest.raises(ValueError):
        Surrogate.fit(x_ref, y_ref, served_ref, K, x_train[:, :3], y_train)


def test_more_neighbours_follow_a_drop_the_features_do_not_show_more_closely() -> None:
    """A small held-out sample (200 rows) makes a weak vote, which misses more of a drop (the
    share ``1 - a + (1 - a) / (K - 1)`` of it, ``a`` its accuracy); the training rows' votes make
    it stronger. A fresh reference per trial: the mean error falls by more than 15%."""
    rng = np.random.default_rng(0)
    small_errors, large_errors = [], []
    for _ in range(40):
        x_ref, y_ref = _with_noise_features(rng, 200)
        x_train, y_train = _with_noise_features(rng, 1800)
        served_ref = _served(rng, y_ref, 0.05)
        small = Surrogate.fit(x_ref, y_ref, served_ref, K)
        large = Surrogate.fit(x_ref, y_ref, served_ref, K, x_train, y_train)
        x, y = _with_noise_features(rng, 1000)
        served = _served(rng, y, 0.25)
        realised = (served == y).mean()
        small_errors.append(abs(small.estimate(x, served).value - realised))
        large_errors.append(abs(large.estimate(x, served).value - realised))
    assert np.mean(large_errors) < 0.85 * np.mean(small_errors)


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


def test_from_reference_tops_the_neighbours_up_with_the_training_rows_classes() -> None:
    rng = np.random.default_rng(8)
    x, y = _sample(rng, 300)
    x_train, y_train = _sample(rng, 2500)
    held_out = Reference(features=x_train.astype(np.float32), predicted_classes=y, probabilities=np.eye(K)[y],
                         labels=y, labelled_features=x.astype(np.float32))
    alone = from_reference(held_out, K)  # no training classes (a registered sample, older references)
    assert alone is not None and alone.labels.size == 300
    y_bad = y_train.copy()
    y_bad[:100] = K  # a class the model does not have: not a neighbour
    topped = from_reference(dataclasses.replace(held_out, feature_labels=y_bad), K)
    assert topped is not None and topped.reference_rows == 300 and topped.labels.size == MAX_REFERENCE_ROWS
    assert topped.labels.max() < K
    assert (topped.reference_accuracy, topped.labels[:300].tolist()) == (alone.reference_accuracy, y.tolist())
    # Classes that do not fit the training rows are not used.
    wrong_length = from_reference(dataclasses.replace(held_out, feature_labels=y_train[:10]), K)
    assert wrong_length is not None and wrong_length.labels.size == 300
    # Held-out rows enough: no room for training rows.
    x_many, y_many = _sample(rng, MAX_REFERENCE_ROWS + 10)
    full = Reference(features=x_train.astype(np.float32), predicted_classes=y_many,
                     probabilities=np.eye(K)[y_many], labels=y_many, labelled_features=x_many.astype(np.float32),
                     feature_labels=y_train)
    many = from_reference(full, K)
    assert many is not None and many.labels.size == many.reference_rows == MAX_REFERENCE_ROWS


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
