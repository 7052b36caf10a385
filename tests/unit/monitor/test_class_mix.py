"""The class-mix bound on accuracy: known answers on simulated windows (seeded)."""

import dataclasses

import numpy as np
import pytest

from monitor.class_mix import MAX_WEIGHT, ClassMixBound, from_reference
from shared.model_metadata import Reference

K = 3
MEANS = np.array([[0.0, 0.0], [2.5, 0.0], [0.0, 2.5]])


def _sample(rng: np.random.Generator, n: int, mix: list[float]) -> tuple[np.ndarray, np.ndarray]:
    """Gaussian classes (unit spread) in two features: what each class looks like never changes."""
    y = rng.choice(K, size=n, p=mix)
    return rng.normal(MEANS[y], 1.0), y


def _counts(predicted: np.ndarray) -> np.ndarray:
    return np.bincount(predicted, minlength=K)


@pytest.fixture(scope="module")
def fitted() -> ClassMixBound:
    x, y = _sample(np.random.default_rng(0), 6000, [1 / 3] * 3)
    return ClassMixBound.fit(x, y, K)


def test_weights_are_the_density_ratio_of_a_covariate_shift() -> None:
    """Reference N(0, 1), window N(0.5, 1): the ratio is exp(0.5 x - 0.125), which the
    domain classifier's logistic form holds exactly."""
    rng = np.random.default_rng(1)
    ref = rng.normal(0.0, 1.0, (20_000, 1))
    bound = ClassMixBound.fit(ref, np.zeros(20_000, dtype=np.int64) + (ref[:, 0] > 0), n_classes=2)
    weights = bound.weights(rng.normal(0.5, 1.0, (20_000, 1)))
    inside = np.abs(ref[:, 0]) < 2
    truth = np.exp(0.5 * ref[inside, 0] - 0.125)
    assert weights[inside] == pytest.approx(truth, rel=0.08)
    assert weights.max() <= MAX_WEIGHT


def test_bound_meets_accuracy_when_errors_pile_into_one_class(fitted: ClassMixBound) -> None:
    """Features unchanged, 30% of classes 1 and 2 sent to class 0: every error moves mass, so
    the bound is the accuracy (within the sampling allowance)."""
    rng = np.random.default_rng(2)
    gaps = []
    for _ in range(50):
        x, y = _sample(rng, 1000, [1 / 3] * 3)
        predicted = np.where((y > 0) & (rng.uniform(size=y.size) < 0.3), 0, y)
        gaps.append(fitted.bound(x, _counts(predicted)) - (predicted == y).mean())
    assert np.mean(gaps) == pytest.approx(0.0, abs=0.02)
    assert min(gaps) > -0.03  # an upper bound: at most sampling noise below the accuracy


def test_bound_does_not_cap_an_unshifted_window(fitted: ClassMixBound) -> None:
    """Errors spread evenly over the classes (the mix does not move): no cap beyond noise."""
    rng = np.random.default_rng(3)
    bounds = []
    for _ in range(200):
        x, y = _sample(rng, 1000, [1 / 3] * 3)
        wrong = rng.uniform(size=y.size) < 0.1
        predicted = np.where(wrong, (y + rng.integers(1, K, y.size)) % K, y)
        bounds.append(fitted.bound(x, _counts(predicted)))
    assert np.mean(np.array(bounds) < 0.95) <= 0.05  # accuracy is 0.90: the bound stays above it
    assert min(bounds) > 0.9


def test_label_shift_is_taken_for_errors_only_in_part(fitted: ClassMixBound) -> None:
    """The class mix moves from thirds to 60/20/20, the model stays right. The reference's own mix
    would cap accuracy near 0.73; the reweighted reference follows most of the move, not all:
    a mixture's density ratio saturates, a logistic one does not (the limit RESULTS.md reports)."""
    rng = np.random.default_rng(4)
    bounds, naive = [], []
    for _ in range(20):
        x, y = _sample(rng, 1000, [0.6, 0.2, 0.2])
        bounds.append(fitted.bound(x, _counts(y)))
        naive.append(1 - 0.5 * np.abs(_counts(y) / y.size - 1 / 3).sum())
    assert np.mean(naive) < 0.75
    assert 0.85 <= np.mean(bounds) <= 0.92


def test_missing_values_enter_at_the_reference_mean(fitted: ClassMixBound) -> None:
    rng = np.random.default_rng(5)
    x, y = _sample(rng, 1000, [1 / 3] * 3)
    x[::7, 1] = np.nan
    assert 0.95 <= fitted.bound(x, _counts(y)) <= 1.0


@pytest.mark.parametrize(
    ("window", "counts", "message"),
    [
        (np.zeros((10, 3)), np.ones(K), "window must be"),
        (np.zeros((0, 2)), np.ones(K), "window must be"),
        (np.zeros((10, 2)), np.ones(K + 1), "predicted_counts"),
        (np.zeros((10, 2)), np.zeros(K), "predicted_counts"),
    ],
)
def test_bad_window_is_refused(fitted: ClassMixBound, window: np.ndarray, counts: np.ndarray, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        fitted.bound(window, counts)


def test_bad_reference_is_refused() -> None:
    with pytest.raises(ValueError, match="labels must lie"):
        ClassMixBound.fit(np.zeros((3, 2)), [0, 1, 3], n_classes=3)
    with pytest.raises(ValueError, match="features must be"):
        ClassMixBound.fit(np.zeros((3, 2)), [0, 1], n_classes=3)


def _reference(labelled_features: np.ndarray, labels: np.ndarray, k: int = K) -> Reference:
    n = labels.size
    return Reference(features=np.zeros((7, 2), np.float32), predicted_classes=np.zeros(n, np.int64),
                     probabilities=np.full((n, k), 1 / k, np.float32), labels=labels,
                     labelled_features=labelled_features.astype(np.float32))


def test_from_reference_uses_the_labelled_rows_features() -> None:
    rng = np.random.default_rng(6)
    x, y = _sample(rng, 300, [1 / 3] * 3)
    y_gaps = y.copy()
    y_gaps[::4] = -1  # rows without a true label are left out
    bound = from_reference(_reference(x, y_gaps), K)
    assert bound is not None and bound.labels.size == int((y_gaps >= 0).sum())
    expected = ClassMixBound.fit(x[y_gaps >= 0].astype(np.float32), y[y_gaps >= 0], K)
    np.testing.assert_allclose(bound.standardised, expected.standardised)


def test_from_reference_keeps_a_seeded_sample_of_a_large_reference(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("monitor.class_mix.MAX_REFERENCE_ROWS", 100)
    x, y = _sample(np.random.default_rng(7), 1000, [1 / 3] * 3)
    first, again = from_reference(_reference(x, y), K), from_reference(_reference(x, y), K)
    assert first is not None and again is not None and first.labels.size == 100
    np.testing.assert_array_equal(first.labels, again.labels)


def test_no_bound_without_labelled_rows_features_or_probabilities() -> None:
    x, y = _sample(np.random.default_rng(8), 50, [1 / 3] * 3)
    assert from_reference(_reference(np.zeros((0, 0)), y), K) is None  # written before labelled_features
    assert from_reference(_reference(x, np.zeros(0, np.int64)), K) is None  # no label column
    assert from_reference(_reference(x, y), 0) is None  # a regressor
    no_probabilities = dataclasses.replace(_reference(x, y), probabilities=np.zeros((50, 0), np.float32))
    assert from_reference(no_probabilities, K) is None


def test_a_window_outside_the_references_support_is_not_capped_by_a_handful_of_rows() -> None:
    """Three nuisance features shift by 3 sd, the model stays right (accuracy 1). The domain
    classifier separates window from reference, so the weights pile onto the few reference rows
    with the largest nuisance values: their class mix is chance. The sampling allowance is that of
    the weights' effective sample size (10-16 rows here), not of the reference's 2,000, so the
    bound stays near 1 beyond that noise (with the reference's row count it fell to 0.73)."""
    rng = np.random.default_rng(9)
    x_ref, y_ref = _sample(rng, 2000, [1 / 3] * 3)
    bound = ClassMixBound.fit(np.hstack([x_ref, rng.normal(size=(2000, 3))]), y_ref, K)
    bounds = []
    for _ in range(10):
        x, y = _sample(rng, 1000, [1 / 3] * 3)
        bounds.append(bound.bound(np.hstack([x, rng.normal(3.0, 1.0, (1000, 3))]), _counts(y)))
    assert np.mean(bounds) >= 0.93
    assert min(bounds) >= 0.85
