"""Bonferroni and Benjamini-Hochberg against direct definitions."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from monitor.drift.corrections import adjust_pvalues, bh_reject, bonferroni_level, reject

pvals = st.lists(st.floats(min_value=0.0, max_value=1.0), min_size=1, max_size=30)


def _bh_by_definition(p: np.ndarray, alpha: float) -> np.ndarray:
    n = p.size
    order = np.argsort(p, kind="stable")
    k = 0
    for i in range(n):
        if p[order[i]] < alpha * (i + 1) / n:
            k = i + 1
    out = np.zeros(n, dtype=bool)
    out[order[:k]] = True
    return out


@settings(max_examples=80, deadline=None)
@given(pvals, st.sampled_from([0.01, 0.05, 0.2]))
def test_bh_matches_definition_and_adjusted_values(p: list[float], alpha: float) -> None:
    arr = np.array(p)
    # Off the exact boundary p_(k) == k * alpha / F, where rounding decides either way.
    thresholds = alpha * np.arange(1, arr.size + 1) / arr.size
    assume(np.abs(np.sort(arr)[:, None] - thresholds[None, :]).min() > 1e-12)
    rej = bh_reject(arr, alpha)
    assert rej.tolist() == _bh_by_definition(arr, alpha).tolist()
    assert (adjust_pvalues(arr, "fdr_bh") < alpha).tolist() == rej.tolist()


@settings(max_examples=80, deadline=None)
@given(pvals, st.sampled_from([0.01, 0.05]))
def test_bonferroni_and_none(p: list[float], alpha: float) -> None:
    arr = np.array(p)
    assert reject(arr, alpha, "bonferroni").tolist() == (arr < alpha / arr.size).tolist()
    assert reject(arr, alpha, "none").tolist() == (arr < alpha).tolist()
    adj = adjust_pvalues(arr, "bonferroni")
    assert np.all(adj >= arr) and np.all(adj <= 1.0)


def test_known_example() -> None:
    p = [0.01, 0.04, 0.03, 0.005]
    assert adjust_pvalues(p, "fdr_bh").tolist() == pytest.approx([0.02, 0.04, 0.04, 0.02])
    assert bh_reject(p, 0.05).tolist() == [True, True, True, True]
    assert reject(p, 0.05, "bonferroni").tolist() == [True, False, False, True]
    assert bonferroni_level(0.05, 5) == pytest.approx(0.01)


def test_bad_arguments() -> None:
    with pytest.raises(ValueError):
        adjust_pvalues([0.1], "holm")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        reject([0.1, np.nan], 0.05, "none")
    with pytest.raises(ValueError):
        reject([1.5], 0.05, "none")
    with pytest.raises(ValueError):
        bh_reject([0.1], 1.0)
    with pytest.raises(ValueError):
        bonferroni_level(0.05, 0)
