"""Effect sizes against scipy's definitions."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.spatial.distance import jensenshannon
from scipy.stats import wasserstein_distance

from monitor.drift import DriftDetector
from monitor.drift.effect_size import (
    column_mean_std,
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


def test_mean_and_std_equal_numpy_and_stay_finite_on_huge_scales() -> None:
    rng = np.random.default_rng(1)
    x = rng.normal(3.0, 2.0, size=(500, 4))
    mean, std = column_mean_std(x)
    assert np.allclose(mean, x.mean(0), rtol=1e-13) and np.allclose(std, x.std(0), rtol=1e-13)
    mean_t, std_t = column_mean_std(x.T, axis=1)
    assert np.allclose(mean_t, mean, rtol=1e-13) and np.allclose(std_t, std, rtol=1e-13)
    for scale in (1e160, 1e200, 1e300):  # x.std() is inf from ~1e154: the squares overflow
        mean_s, std_s = column_mean_std(x * scale)
        assert np.allclose(mean_s / scale, mean, rtol=1e-12) and np.allclose(std_s / scale, std, rtol=1e-12)
    assert column_mean_std(np.zeros((3, 2)))[1].tolist() == [0.0, 0.0]


@pytest.mark.parametrize("scale", [1e160, 1e200, 1e300])
def test_effect_size_is_scale_free_beyond_1e154(scale: float) -> None:
    # The normalised W1 does not depend on the unit: 1e300-scale features read as unit-scale ones.
    rng = np.random.default_rng(2)
    ref, win = rng.normal(size=(2000, 3)), rng.normal(size=(300, 3))
    win[:, 2] += 0.5
    assert normalised_wasserstein(ref[:, 2] * scale, win[:, 2] * scale) == pytest.approx(
        normalised_wasserstein(ref[:, 2], win[:, 2]), rel=1e-9
    )
    unit = DriftDetector(ref, ["a", "b", "c"])
    huge = DriftDetector(ref * scale, ["a", "b", "c"])
    want = [f.effect_size for f in unit.test(win).features]
    got = [f.effect_size for f in huge.test(win * scale).features]
    assert got == pytest.approx(want, rel=1e-9)
    assert want[2] > 0.4
    sliding = huge.test_sliding(huge.sliding(win * scale), win * scale).features[2].effect_size
    assert sliding == pytest.approx(want[2], rel=1e-9)


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
