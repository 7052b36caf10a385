"""Effect sizes against scipy's definitions."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.spatial.distance import jensenshannon
from scipy.stats import wasserstein_distance

from monitor.drift.effect_size import (
    jensen_shannon,
    normalised_wasserstein,
    psi,
    wasserstein_prefix,
    wasserstein_sorted,
)

values = st.one_of(
    st.lists(st.integers(-4, 4).map(float), min_size=1, max_size=50),
    st.lists(st.floats(-1e3, 1e3, allow_nan=False), min_size=1, max_size=50),
)


@settings(max_examples=100, deadline=None)
@given(values, values)
def test_wasserstein_equals_scipy(r: list[float], w: list[float]) -> None:
    rs, ws = np.sort(r), np.sort(w)
    mu = float(rs.mean())
    ours = wasserstein_sorted(rs, wasserstein_prefix(rs - mu), ws, shift=mu)
    assert ours == pytest.approx(wasserstein_distance(r, w), rel=1e-9, abs=1e-9)


def test_normalised_wasserstein_scale_and_constant_guard() -> None:
    rng = np.random.default_rng(0)
    ref = rng.normal(3.0, 2.0, size=4000)
    assert normalised_wasserstein(ref, ref + 0.3 * ref.std()) == pytest.approx(0.3, rel=1e-9)
    # A constant reference is divided by 1: the raw W1, finite.
    assert normalised_wasserstein(np.zeros(10), np.full(5, 2.0)) == pytest.approx(2.0)
    with pytest.raises(ValueError):
        normalised_wasserstein([], [1.0])
    with pytest.raises(ValueError):
        normalised_wasserstein([np.nan], [1.0])


counts = st.lists(st.integers(0, 50), min_size=2, max_size=8).filter(lambda c: sum(c) > 0)


@settings(max_examples=80, deadline=None)
@given(st.data())
def test_jensen_shannon_equals_scipy(data: st.DataObject) -> None:
    p = data.draw(counts)
    q = data.draw(st.lists(st.integers(0, 50), min_size=len(p), max_size=len(p)))
    if sum(q) == 0:
        q[0] = 1
    ours = jensen_shannon(p, q)
    assert ours == pytest.approx(float(jensenshannon(p, q, base=2)), abs=1e-7)
    assert 0.0 <= ours <= 1.0


def test_psi_finite_with_missing_category() -> None:
    assert np.isfinite(psi([10, 0], [5, 5]))
    assert psi([1, 1], [1, 1]) == 0.0
    with pytest.raises(ValueError):
        psi([1, 1], [1, 1], eps=0)
    with pytest.raises(ValueError):
        jensen_shannon([1, 1], [1, 1, 1])
    with pytest.raises(ValueError):
        jensen_shannon([0, 0], [1, 1])
