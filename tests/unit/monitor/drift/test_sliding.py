"""The incremental sliding-window KS equals a full recompute and scipy."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import ks_2samp

from monitor.drift.corrections import reject
from monitor.drift.ks import SortedReference, ks_critical_h
from monitor.drift.sliding import SlidingKS


@settings(max_examples=60, deadline=None)
@given(
    st.integers(1, 30),  # reference rows
    st.integers(1, 20),  # window rows
    st.lists(st.integers(1, 20), min_size=1, max_size=6),  # step sizes
    st.booleans(),  # tied values
    st.integers(0, 2**31 - 1),
)
def test_steps_equal_full_recompute_and_scipy(
    n: int, m: int, steps: list[int], tied: bool, seed: int
) -> None:
    rng = np.random.default_rng(seed)
    total = m + sum(min(k, m) for k in steps)

    def draw(rows: int) -> np.ndarray:
        x = rng.normal(size=(rows, 2))
        return np.round(x) if tied else x

    ref = draw(n)
    stream = draw(total)
    sref = SortedReference(ref)
    sk = SlidingKS(sref, stream[:m])
    pos = m
    for k in steps:
        k = min(k, m)
        sk.step(stream[pos : pos + k])
        pos += k
        window = stream[pos - m : pos]
        np.testing.assert_array_equal(sk.window, window)
        full = sref.statistic_h(np.sort(window.T, axis=1))
        np.testing.assert_array_equal(sk.statistic_h(), full)
        d = sk.statistic()
        for f in range(2):
            assert d[f] == pytest.approx(ks_2samp(ref[:, f], window[:, f]).statistic, abs=1e-12)


def test_pvalues_and_decisions() -> None:
    rng = np.random.default_rng(9)
    ref = rng.normal(size=(5000, 3))
    stream = rng.normal(size=(3000, 3))
    stream[2000:, 2] += 0.5  # the last 1000 rows drift on feature 2
    sk = SlidingKS(ref, stream[:1000])
    assert not sk.drifted().any()
    sk.step(stream[1000:2000])
    sk.step(stream[2000:3000])
    assert sk.drifted().tolist() == [False, False, True]
    bh = sk.drifted(correction="fdr_bh")
    assert bh[2] and bh.tolist() == reject(sk.pvalues(), 0.05, "fdr_bh").tolist()
    p = sk.pvalues()
    for f in range(3):
        assert p[f] == pytest.approx(ks_2samp(ref[:, f], stream[2000:, f]).pvalue, rel=1e-9)
    assert (sk.statistic_h() >= ks_critical_h(5000, 1000, 0.05 / 3)).tolist() == [
        False,
        False,
        True,
    ]


def test_bad_arguments() -> None:
    ref = np.zeros((10, 2))
    with pytest.raises(ValueError):
        SlidingKS(ref, np.zeros((0, 2)))
    sk = SlidingKS(ref, np.zeros((5, 2)))
    with pytest.raises(ValueError):
        sk.step(np.zeros((6, 2)))
    with pytest.raises(ValueError):
        sk.step(np.zeros((2, 3)))
    with pytest.raises(ValueError):
        sk.step(np.full((2, 2), np.inf))
    with pytest.raises(ValueError):
        sk.drifted(alpha=2.0)
    with pytest.raises(ValueError):
        sk.drifted(correction="holm")  # type: ignore[arg-type]
    sk.step(np.zeros((0, 2)))  # an empty step changes nothing
    assert sk.statistic().tolist() == [0.0, 0.0]
