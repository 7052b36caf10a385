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
        below, above = int((column < edges[0]).sum()), int((column > edges[-1]).sum())
        assert counts[f] == [below, *inside.tolist(), above, 0]  # last: missing values
        reference_inside, _ = np.histogram(reference[:, f], bins=edges)
        assert bins.reference_counts[f] == [0, *reference_inside.tolist(), 0, 0]


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
    assert counts[0] == [0, *values[:17].tolist(), int(values[17:].sum()), 0]


def test_a_constant_feature_has_one_bin() -> None:
    bins = FeatureBins(np.full((50, 1), 2.5), ["k"])
    assert bins.counts(np.array([[2.5], [2.5], [1.0], [9.0]])) == [[1, 2, 1, 0]]


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
    assert max(len(c) for c in counts) <= max(MAX_BINS, MAX_CATEGORIES) + 3
    assert all(sum(c) == len(window) for c in counts)


def test_missing_values_fall_in_no_bin_and_are_counted_apart() -> None:
    rng = np.random.default_rng(7)
    reference = rng.normal(size=(1000, 2))
    reference[:, 1] = rng.integers(0, 5, 1000)
    reference[:100, 0] = np.nan
    reference[:10, 1] = np.nan
    window = rng.normal(size=(300, 2))
    window[:, 1] = rng.integers(0, 5, 300)
    window[::3, 0] = np.nan
    window[:, 1][window[:, 1] == 4] = np.nan
    bins = FeatureBins(reference, ["x", "c"], categorical=[False, True])
    present = reference[100:, 0]
    np.testing.assert_allclose(bins.edges[0][:: MAX_BINS], [present.min(), present.max()])
    x, c = bins.histograms(bins.counts(window))
    inside, _ = np.histogram(window[~np.isnan(window[:, 0]), 0], bins=np.array(bins.edges[0]))
    assert x.window[1:-1] == inside.tolist() and x.window_missing == 100 and sum(x.window) == 200
    assert x.reference_missing == 100 and sum(x.reference) == 900
    assert c.categories == ["0", "1", "2", "3", "4"] and c.window[4] == 0
    assert c.window_missing == int(np.isnan(window[:, 1]).sum()) and c.reference_missing == 10


def test_a_reference_column_with_no_present_value_keeps_one_bin() -> None:
    bins = FeatureBins(np.array([[np.nan, np.nan], [np.nan, np.nan]]), ["x", "c"], categorical=[False, True])
    assert bins.counts(np.array([[np.nan, 1.0], [0.0, np.nan]])) == [[0, 1, 0, 1], [1, 1]]
