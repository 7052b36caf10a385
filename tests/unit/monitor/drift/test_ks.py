"""The vectorised KS test against scipy.stats.ks_2samp, ties and tiny samples included."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import ks_2samp

from monitor.drift.ks import (
    SortedReference,
    ks_2samp_many,
    ks_critical_h,
    ks_lattice,
    ks_pvalue_h,
    ks_pvalues,
    resolve_method,
)

FAST = settings(max_examples=60, deadline=None)


def _column(draw: st.DrawFn, size: int, tied: bool) -> np.ndarray:
    if tied:
        vals = st.integers(min_value=-3, max_value=3).map(float)
    else:
        vals = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False, width=64)
    return np.array(draw(st.lists(vals, min_size=size, max_size=size)), dtype=np.float64)


@st.composite
def samples(draw: st.DrawFn, max_n: int = 40) -> tuple[np.ndarray, np.ndarray]:
    n = draw(st.integers(min_value=1, max_value=max_n))
    m = draw(st.integers(min_value=1, max_value=max_n))
    f = draw(st.integers(min_value=1, max_value=3))
    tied = draw(st.booleans())
    ref = np.stack([_column(draw, n, tied) for _ in range(f)], axis=1)
    win = np.stack([_column(draw, m, tied) for _ in range(f)], axis=1)
    return ref, win


@FAST
@given(samples())
def test_statistic_and_pvalue_equal_scipy(data: tuple[np.ndarray, np.ndarray]) -> None:
    ref, win = data
    d, p = ks_2samp_many(ref, win)
    for f in range(ref.shape[1]):
        expected = ks_2samp(ref[:, f], win[:, f])
        assert d[f] == pytest.approx(expected.statistic, abs=1e-12)
        assert p[f] == pytest.approx(expected.pvalue, rel=1e-9, abs=1e-12)


@pytest.mark.filterwarnings("ignore:ks_2samp. Exact calculation unsuccessful")
@FAST
@given(samples(max_n=25), st.sampled_from(["exact", "asymp"]))
def test_explicit_methods_equal_scipy(data: tuple[np.ndarray, np.ndarray], method: str) -> None:
    ref, win = data
    d, p = ks_2samp_many(ref, win, method=method)  # type: ignore[arg-type]
    for f in range(ref.shape[1]):
        expected = ks_2samp(ref[:, f], win[:, f], method=method)
        assert d[f] == pytest.approx(expected.statistic, abs=1e-12)
        if np.isnan(expected.pvalue):  # scipy: n = m = 1 asymptotic; we say 1.0
            assert p[f] == 1.0
        else:
            assert p[f] == pytest.approx(expected.pvalue, rel=1e-9, abs=1e-12)


@pytest.mark.parametrize(
    ("n", "m", "tied"),
    [(10000, 1000, False), (12000, 3000, True), (2000, 11000, False), (500, 500, True)],
)
def test_large_samples_match_scipy_on_both_paths(n: int, m: int, tied: bool) -> None:
    rng = np.random.default_rng(n + m)
    ref = rng.normal(size=(n, 3))
    win = rng.normal(size=(m, 3)) + np.array([0.0, 0.05, 0.2])
    if tied:
        ref, win = np.round(ref * 3), np.round(win * 3)
    d, p = ks_2samp_many(ref, win)
    for f in range(3):
        expected = ks_2samp(ref[:, f], win[:, f])
        assert d[f] == pytest.approx(expected.statistic, abs=1e-12)
        assert p[f] == pytest.approx(expected.pvalue, rel=1e-9, abs=1e-300)


def test_method_choice_follows_scipy_auto() -> None:
    assert resolve_method(10000, 10000) == "exact"
    assert resolve_method(10001, 50) == "asymp"
    assert resolve_method(10, 10, "asymp") == "asymp"
    assert ks_pvalue_h(10000, 10000, 300)[1] == "exact"
    assert ks_pvalue_h(20000, 100, 3000)[1] == "asymp"


@settings(max_examples=40, deadline=None)
@given(
    st.integers(min_value=1, max_value=60),
    st.integers(min_value=1, max_value=60),
    st.sampled_from([0.05, 0.01, 0.05 / 64, 0.5]),
    st.sampled_from(["auto", "asymp"]),
)
def test_critical_h_is_the_decision_boundary(n: int, m: int, level: float, method: str) -> None:
    lcm, _, _ = ks_lattice(n, m)
    h = ks_critical_h(n, m, level, method)  # type: ignore[arg-type]
    if h <= lcm:
        assert ks_pvalue_h(n, m, h, method)[0] < level  # type: ignore[arg-type]
    if h - 1 >= 0:
        assert ks_pvalue_h(n, m, h - 1, method)[0] >= level  # type: ignore[arg-type]


@pytest.mark.parametrize(("n", "m"), [(10000, 10000), (100000, 1000), (10000, 1000)])
def test_critical_h_large(n: int, m: int) -> None:
    level = 0.05 / 64
    h = ks_critical_h(n, m, level)
    assert ks_pvalue_h(n, m, h)[0] < level <= ks_pvalue_h(n, m, h - 1)[0]


@pytest.mark.parametrize("m", [901, 1_013, 1_087])
def test_critical_h_of_a_time_window_size_takes_a_few_exact_pvalues(m: int) -> None:
    """Time windows: every size is new, and most have a large lcm (10k x 1,013 rows: 10.13M),
    where the first guess lands ~490 lattice steps off. The guess corrected by the exact
    p-value there finds the boundary in at most 10 exact p-values (18 without)."""
    level = 0.05 / 64
    ks_pvalue_h.cache_clear()
    ks_critical_h.cache_clear()
    h = ks_critical_h(10_000, m, level)
    assert ks_pvalue_h.cache_info().misses <= 10
    assert ks_pvalue_h(10_000, m, h)[0] < level <= ks_pvalue_h(10_000, m, h - 1)[0]


def test_exact_pvalues_on_threads_equal_one_thread() -> None:
    """Distinct statistics computed on several threads come back in order, with the same bits."""
    hs = np.array([5_400, 5_000, 4_100, 5_000, 3_900, 4_700, 6_000])  # 10k x 1k near the 1e-3 level
    expected = [ks_pvalue_h(10_000, 1_000, int(v))[0] for v in hs]
    ks_pvalue_h.cache_clear()
    for threads in (2, 3, None):
        p, how = ks_pvalues(10_000, 1_000, hs, threads=threads)
        assert p.tolist() == expected and set(how) == {"exact"}
        ks_pvalue_h.cache_clear()


def test_pvalues_vectorised_equal_scalar() -> None:
    hs = np.array([0, 5, 5, 17, 40, 100])
    p, how = ks_pvalues(100, 100, hs)
    assert p.tolist() == [ks_pvalue_h(100, 100, int(h))[0] for h in hs]
    assert set(how) == {"exact"}
    p_big, how_big = ks_pvalues(20000, 15000, np.array([100, 2000, 100]))
    assert p_big[0] == p_big[2] and set(how_big) == {"asymp"}


def test_sorted_reference_statistic_matches_scipy_on_ties_across_samples() -> None:
    ref = np.array([[0.0], [0.0], [1.0], [1.0], [2.0]])
    win = np.array([[1.0], [1.0], [1.0], [2.0]])
    d = SortedReference(ref).statistic(win)
    assert d[0] == pytest.approx(ks_2samp(ref[:, 0], win[:, 0]).statistic, abs=1e-15)


def test_lattice() -> None:
    assert ks_lattice(4, 6) == (12, 3, 2)
    assert math.lcm(10000, 9999) == ks_lattice(10000, 9999)[0]


@pytest.mark.parametrize(
    "bad",
    [np.zeros((0, 2)), np.array([[-np.inf, 1.0]]), np.array([[np.inf, 1.0]]), np.zeros(3)],
)
def test_bad_reference_refused(bad: np.ndarray) -> None:
    with pytest.raises(ValueError):
        SortedReference(bad)


def test_bad_window_and_args_refused() -> None:
    ref = SortedReference(np.zeros((5, 2)))
    with pytest.raises(ValueError):
        ref.sort_window(np.zeros((3, 3)))
    with pytest.raises(ValueError):
        ref.sort_window(np.zeros((0, 2)))
    with pytest.raises(ValueError):
        resolve_method(3, 3, "fast")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        ks_pvalue_h(3, 3, 99)
    with pytest.raises(ValueError):
        ks_critical_h(3, 3, 0.0)
    with pytest.raises(ValueError):
        ks_lattice(0, 3)
