"""Chi-squared homogeneity test against scipy.stats.chi2_contingency."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import chi2_contingency

from monitor.drift.chi2 import CategoricalReference, chi2_homogeneity


@settings(max_examples=80, deadline=None)
@given(st.data())
def test_equals_chi2_contingency_without_yates(data: st.DataObject) -> None:
    k = data.draw(st.integers(2, 8))
    r = data.draw(st.lists(st.integers(0, 200), min_size=k, max_size=k))
    w = data.draw(st.lists(st.integers(0, 200), min_size=k, max_size=k))
    if sum(r) == 0 or sum(w) == 0:
        return
    stat, p, dof = chi2_homogeneity(r, w)
    cols = [i for i in range(k) if r[i] + w[i] > 0]
    if len(cols) < 2:
        assert (stat, p, dof) == (0.0, 1.0, 0)
        return
    res = chi2_contingency([[r[i] for i in cols], [w[i] for i in cols]], correction=False)
    assert stat == pytest.approx(res.statistic, rel=1e-9, abs=1e-9)
    assert p == pytest.approx(res.pvalue, rel=1e-9, abs=1e-12)
    assert dof == res.dof


def test_unseen_categories_go_to_one_bucket() -> None:
    ref = CategoricalReference([1.0, 1.0, 2.0, 3.0])
    assert ref.counts.tolist() == [2, 1, 1, 0]
    assert ref.window_counts([3.0, 7.0, 8.0, 1.0]).tolist() == [1, 0, 1, 2]
    stat, p, _ = chi2_homogeneity(ref.counts, ref.window_counts([7.0] * 50))
    assert p < 1e-6 and np.isfinite(stat)


def test_bad_counts() -> None:
    with pytest.raises(ValueError):
        chi2_homogeneity([1, 2], [1, 2, 3])
    with pytest.raises(ValueError):
        chi2_homogeneity([0, 0], [1, 2])
    with pytest.raises(ValueError):
        chi2_homogeneity([-1, 2], [1, 2])
    with pytest.raises(ValueError):
        CategoricalReference([])


def test_two_rows_of_an_unseen_rare_value_are_not_drift_once_pooled() -> None:
    """Digits' edge pixels: 0 in almost every row, a few rare values. Two window rows
    with a value the 1,078-row reference never had (expected count 0.4) made the
    unpooled test reject; with sparse categories pooled there is nothing to test."""
    ref, win = [1070, 8, 0], [296, 2, 2]
    _, p_unpooled, _ = chi2_homogeneity(ref, win)
    _, p_pooled, dof = chi2_homogeneity(ref, win, 5.0)
    assert p_unpooled < 0.05
    assert p_pooled == 1.0
    assert dof == 0  # the rare values together are still too sparse to stand alone


def test_pooling_keeps_a_real_shift_significant() -> None:
    _, p, _ = chi2_homogeneity([1070, 8, 0], [240, 20, 40], 5.0)
    assert p < 1e-10


def test_pooling_changes_nothing_when_every_expected_count_is_large() -> None:
    ref, win = [500, 300, 200], [100, 90, 110]
    assert chi2_homogeneity(ref, win, 5.0) == chi2_homogeneity(ref, win)
