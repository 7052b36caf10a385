"""Histogram bins fixed from the reference: counts checked against numpy's own histograms."""

from __future__ import annotations

import numpy as np

from monitor.histograms import MAX_BINS, MAX_CATEGORIES, FeatureBins


def test_numeric_counts_equal_numpy_histogram_within_the_reference_range_plus_outside_bins() -> None:
    rng = np.random.default_rng(3)
    reference = rng.normal(size=(2000, 3))
    window = rng.normal(loc=[0.0, 0.5, 3.0], size=(700, 3))
    bins = FeatureBins(reference, ["a", "b", "c"])
    counts = bins.counts(window)
    for f in range(3):
        edges = np.array(bins.edges[f])
        assert len(edges) == MAX_BINS + 1
        np.testing.assert_allclose(edges[[0, -1]], [reference[:, f].min(), reference[:, f].max()])
        inside, _ = np.histogram(window[:, f], bins=edges)
        column = window[:, f]
        assert counts[f] == [int((column < edges[0]).sum()), *inside.tolist(), int((column > edges[-1]).sum())]
        reference_inside, _ = np.histogram(reference[:, f], bins=edges)
        assert bins.reference_counts[f] == [0, *reference_inside.tolist(), 0]


def test_small_integer_features_get_one_bin_per_value() -> None:
    rng = np.random.default_rng(4)
    reference = rng.integers(0, 17, size=(500, 2)).astype(np.float64)  # pixel intensities 0..16
    reference[:, 1] = np.minimum(reference[:, 1], 5)
    window = rng.integers(0, 20, size=(300, 2)).astype(np.float64)
    bins = FeatureBins(reference, ["p0", "p1"])
    assert bins.edges[0] == [v - 0.5 for v in range(18)]
    assert bins.edges[1] == [v - 0.5 for v in range(7)]
    counts = bins.counts(window)
    values = np.bincount(window[:, 0].astype(int), minlength=20)
    assert counts[0] == [0, *values[:17].tolist(), int(values[17:].sum())]


def test_a_constant_feature_has_one_bin() -> None:
    bins = FeatureBins(np.full((50, 1), 2.5), ["k"])
    assert bins.counts(np.array([[2.5], [2.5], [1.0], [9.0]])) == [[1, 2, 1]]


def test_categorical_counts_keep_the_most_frequent_reference_values_and_an_other_bucket() -> None:
    rng = np.random.default_rng(5)
    reference = rng.integers(0, 40, size=(4000, 1)).astype(np.float64)
    window = rng.integers(0, 60, size=(1000, 1)).astype(np.float64)
    bins = FeatureBins(reference, ["c"], categorical=[True])
    values, frequency = np.unique(reference, return_counts=True)
    top = np.sort(values[np.argsort(-frequency, kind="stable")[:MAX_CATEGORIES]])
    (hist,) = bins.histograms(bins.counts(window))
    assert hist.kind == "categorical" and hist.categories == [f"{v:g}" for v in top]
    expected = [int((window[:, 0] == v).sum()) for v in top]
    assert hist.window == [*expected, len(window) - sum(expected)]
    assert sum(hist.reference) == len(reference)


def test_stored_size_is_bounded_whatever_the_number_of_rows() -> None:
    rng = np.random.default_rng(6)
    reference = rng.lognormal(size=(5000, 30))
    categorical = np.arange(30) % 10 == 0
    reference[:, categorical] = rng.integers(0, 100, size=(5000, 3))
    bins = FeatureBins(reference, [f"f{i}" for i in range(30)], categorical=categorical)
    window = rng.lognormal(size=(20_000, 30))
    counts = bins.counts(window)
    assert max(len(c) for c in counts) <= max(MAX_BINS, MAX_CATEGORIES) + 2
    assert all(sum(c) == len(window) for c in counts)
