"""The multivariate cross-moment test: calibration, power where KS is blind, arguments.

Windows are evaluated in stacks (``CorrelationReference.statistics``): one
batched product for a thousand windows, against a reference prepared once,
as the monitor prepares it once per model version.
"""

from __future__ import annotations

import numpy as np
import pytest

from monitor.drift import DriftConfig, DriftDetector
from monitor.drift.correlation import MIN_ALPHA, CorrelationReference, draws_for, pearson3_sf

ALPHA = 0.05
N_REF, WINDOW, F, BLOCK = 10_000, 1_000, 16, 4


def _windows(rng: np.random.Generator, k: int, rho: float, m: int = WINDOW) -> np.ndarray:
    """``k`` windows of N(0, 1) features; the first BLOCK share a factor (correlation ``rho``)."""
    w = rng.normal(size=(k, m, F))
    if rho:
        shared = rng.normal(size=(k, m, 1))
        w[:, :, :BLOCK] = np.sqrt(rho) * shared + np.sqrt(1.0 - rho) * w[:, :, :BLOCK]
    return w


def _rejections(test: CorrelationReference, windows: np.ndarray) -> np.ndarray:
    m = windows.shape[1]
    return np.array([test.p_value(t, m) <= ALPHA for t in test.statistics(windows)])


def test_null_false_alarm_rate_is_at_most_alpha_over_1000_windows() -> None:
    rng = np.random.default_rng(20261201)
    test = CorrelationReference(rng.normal(size=(N_REF, F)), alpha=ALPHA)
    rejected = np.concatenate([_rejections(test, _windows(rng, 250, 0.0)) for _ in range(4)])
    assert rejected.size == 1000
    assert rejected.mean() <= ALPHA


def test_finds_a_correlation_only_change_that_ks_cannot_see() -> None:
    rng = np.random.default_rng(7)
    reference = rng.normal(size=(N_REF, F))
    test = CorrelationReference(reference, alpha=ALPHA)
    drifted = _windows(rng, 200, 0.8)
    assert _rejections(test, drifted).mean() >= 0.9
    # The same windows through the per-feature KS family: marginals are unchanged.
    ks = DriftDetector(reference, [f"x{i}" for i in range(F)], DriftConfig(multivariate=False))
    ks_rate = np.mean([ks.test(w).dataset_drift for w in drifted[:40]])
    assert ks_rate <= 2 * ALPHA


def test_statistic_and_effect_size_equal_the_pairwise_definition() -> None:
    rng = np.random.default_rng(3)
    ref = np.round(rng.standard_t(3, size=(400, 4)) * [1.0, 2.0, 0.5, 3.0], 1)  # heavy tails, ties
    win = np.round(rng.standard_t(3, size=(90, 4)) * [1.0, 2.0, 0.5, 3.0], 1)
    test = CorrelationReference(ref)
    lo, hi = np.quantile(ref, 0.005, axis=0), np.quantile(ref, 0.995, axis=0)
    zr, zw = np.clip(ref, lo, hi), np.clip(win, lo, hi)
    zw = (zw - zr.mean(0)) / zr.std(0)
    zr = (zr - zr.mean(0)) / zr.std(0)
    squares = [
        ((zw[:, i] * zw[:, j]).mean() - (zr[:, i] * zr[:, j]).mean()) ** 2
        for i in range(4)
        for j in range(i + 1, 4)
    ]
    result = test.test(win)
    assert result.statistic == pytest.approx(sum(squares), rel=1e-9)
    assert result.effect_size == pytest.approx(np.sqrt(np.mean(squares)), rel=1e-9)
    assert test.statistics(win[None])[0] == pytest.approx(sum(squares), rel=1e-9)
    # Scale free: features on a 1e300 scale give the same test (no square overflows).
    scaled = CorrelationReference(ref * 1e300)
    assert scaled.test(win * 1e300).statistic == pytest.approx(result.statistic, rel=1e-9)


def test_one_window_path_equals_the_batched_one_for_any_thread_count() -> None:
    """The compiled standardisation gives numpy's bits; the one-window statistic (symmetric
    product, upper triangle) equals the batched one, whatever the thread count; a window the
    caller checked gives the same result unscanned."""
    from monitor.drift import _kernels

    rng = np.random.default_rng(8)
    ref = rng.standard_t(3, size=(3_000, 7))
    ref[:, 3] = 1.0  # constant: left out, so the columns are not 0..F-1
    win = rng.standard_t(3, size=(700, 7))
    win[:, :2] += 0.5 * rng.normal(size=(700, 1))
    batched = CorrelationReference(ref).statistics(win[None])[0]
    for threads in (1, 2, None):
        test = CorrelationReference(ref, threads=threads)
        zt = _kernels.standardise_t(win, test.columns, test._lo, test._hi, test.mean, test.std, threads)
        assert zt.T.tobytes() == np.ascontiguousarray(test._standardise(win)).tobytes()
        stat, rms = test.window_statistic(win)
        assert stat == pytest.approx(batched, rel=1e-12)
        assert test.test(win) == test.test(win, checked=True)
        assert test.test(win).statistic == stat and test.test(win).effect_size == rms
        # A chunk of the reference, read from its standardised rows, as if it were a window.
        assert test.chunk_statistic(500, 1_200) == pytest.approx(test.window_statistic(ref[500:1_200])[0], rel=1e-12)
        # Standardised from the window's columns as rows, block by block (as the detector's KS
        # blocks transpose them): the same bits, and the constant column is skipped.
        rows, fill = test.window_rows(700)
        transposed = np.ascontiguousarray(win.T)
        for f0, f1 in ((0, 2), (2, 5), (5, 7)):
            fill(transposed, f0, f1)
        assert rows.tobytes() == zt.tobytes()
        assert test.standardised_statistic(rows) == (stat, rms)


def test_product_without_the_gil_has_scipys_bits() -> None:
    """The window's product through ctypes (GIL released) is scipy's ``blas.dsyrk``, bit for bit."""
    from scipy.linalg import blas

    from monitor.drift.correlation import _dsyrk_nogil, _moments_t

    assert _dsyrk_nogil() is not None
    rng = np.random.default_rng(2)
    for f, m in ((2, 30), (7, 700), (64, 1_000), (130, 2_001)):
        zt = rng.standard_t(3, size=(f, m))
        expected = blas.dsyrk(1.0 / m, zt.T, trans=1)
        assert np.triu(_moments_t(zt)).tobytes() == np.triu(expected).tobytes()


def test_reference_chunks_statistics_have_scipys_bits_on_any_thread_count() -> None:
    """The chunks' products for the effect floors (ctypes, GIL released, shared between threads)
    are scipy's ``blas.dsyrk`` on the standardised rows, bit for bit, chunk by chunk."""
    from scipy.linalg import blas

    from monitor.drift.correlation import _moments_rows

    rng = np.random.default_rng(3)
    for f, rows in ((2, 30), (64, 1_000), (130, 701)):
        z = rng.standard_t(3, size=(rows, f))
        expected = blas.dsyrk(1.0 / rows, z.T)
        assert np.triu(_moments_rows(z)).tobytes() == np.triu(expected).tobytes()
    ref = rng.standard_t(3, size=(9_000, 70))
    for threads in (1, 2):
        test = CorrelationReference(ref, threads=threads)
        expected_stats = [
            float(np.sum((blas.dsyrk(1.0 / 1_000, test._z[c * 1_000 : (c + 1) * 1_000].T).take(test._pair_index)
                          - test._ref_pairs) ** 2))
            for c in range(9)
        ]
        assert test.chunk_statistics(1_000, 9).tolist() == expected_stats
        assert test.chunk_statistic(2_000, 3_000) == expected_stats[2]


def test_pearson3_sf_is_scipys_bits() -> None:
    """Every skewness regime (normal switch, both signs), both sides of the support's end."""
    from scipy.stats import pearson3

    rng = np.random.default_rng(21)
    for _ in range(3_000):
        sk = float(rng.choice([rng.normal() * 2, rng.normal() * 1e-5, 0.0, -abs(rng.normal())]))
        loc, scale = float(rng.normal()), float(abs(rng.normal()) + 1e-3)
        x = loc + scale * float(rng.normal()) * float(rng.choice([1, 5, 20]))
        assert pearson3_sf(x, sk, loc, scale) == float(pearson3.sf(x, sk, loc=loc, scale=scale))
    for sk in (0.5, -0.5):  # at the support's end (zeta = loc - 2 scale / skew)
        edge = 1.0 - 2.0 * 2.0 / sk
        assert pearson3_sf(edge, sk, 1.0, 2.0) == float(pearson3.sf(edge, sk, loc=1.0, scale=2.0))


def test_effect_size_is_the_rms_correlation_change() -> None:
    # BLOCK features go from rho 0 to 0.8: 6 of 120 pairs change by 0.8.
    rng = np.random.default_rng(5)
    test = CorrelationReference(rng.normal(size=(N_REF, F)))
    result = test.test(_windows(rng, 1, 0.8, m=20_000)[0])
    expected = 0.8 * np.sqrt(6 / 120)
    assert result.effect_size == pytest.approx(expected, abs=0.01)
    assert result.drifted and result.p_value < 1e-6


def test_threshold_agrees_with_p_value_and_is_seeded() -> None:
    rng = np.random.default_rng(11)
    ref = rng.normal(size=(3000, 6))
    a, b = CorrelationReference(ref), CorrelationReference(ref)
    b.prepare()  # what the monitor does when it builds a detector: same draws as lazily
    thr = a.threshold(500)
    assert thr == b.threshold(500)
    assert a.p_value(thr, 500) <= ALPHA < a.p_value(thr * (1 - 1e-6), 500)
    # A statistic beyond every simulated draw still gets a graded p-value.
    top = float(a.null_statistics(500)[-1])
    assert 0.0 < a.p_value(10 * top, 500) < a.p_value(2 * top, 500) <= 1 / (a.n_draws + 1)


def test_constant_columns_are_left_out_without_error() -> None:
    rng = np.random.default_rng(2)
    ref = rng.normal(size=(2000, 4))
    ref[:, 1] = 3.0
    test = CorrelationReference(ref)
    assert test.n_features == 3 and test.columns.tolist() == [0, 2, 3]
    win = rng.normal(size=(300, 4))  # column 1 no longer constant: KS's finding, not this test's
    assert np.isfinite(test.test(win).statistic)
    only_one = np.column_stack([rng.normal(size=2000), np.full(2000, 1.0)])
    assert not CorrelationReference(only_one).applicable
    det = DriftDetector(only_one, ["a", "b"])
    assert det.test(rng.normal(size=(100, 2))).multivariate_drift is None


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"alpha": 0.0}, "alpha"),
        ({"alpha": 1.5}, "alpha"),
        ({"n_draws": 0}, "n_draws"),
        ({"n_draws": 10}, "n_draws"),
        ({"n_draws": 2.5}, "n_draws"),
    ],
)
def test_bad_arguments_raise_value_error(kwargs: dict[str, float], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        CorrelationReference(np.random.default_rng(0).normal(size=(100, 3)), **kwargs)


def test_bad_inputs_raise_value_error() -> None:
    rng = np.random.default_rng(0)
    test = CorrelationReference(rng.normal(size=(100, 3)))
    with pytest.raises(ValueError, match="reference"):
        CorrelationReference(rng.normal(size=(1, 3)))
    with pytest.raises(ValueError, match="expected 3"):
        test.test(rng.normal(size=(50, 4)))
    bad = rng.normal(size=(50, 3))
    bad[0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        test.test(bad)
    with pytest.raises(ValueError, match="shape"):
        test.statistics(rng.normal(size=(50, 3)))


def test_detector_reports_it_beside_the_univariate_verdict() -> None:
    rng = np.random.default_rng(9)
    names = [f"x{i}" for i in range(F)] + ["colour"]
    ref = np.column_stack([rng.normal(size=(N_REF, F)), rng.integers(0, 3, N_REF)])
    det = DriftDetector(ref, names, categorical=np.array([False] * F + [True]))
    win = np.column_stack([_windows(rng, 1, 0.8)[0], rng.integers(0, 3, WINDOW)])
    report = det.test(win)
    mv = report.multivariate_drift
    assert mv is not None and mv.drifted and mv.n_features == F  # the categorical column is left out
    assert report.status == "drift" and not report.dataset_drift
    assert report.model_dump(mode="json")["multivariate_drift"]["test"] == "cross_moment"
    sliding = det.test_sliding(det.sliding(win), win)
    assert sliding.multivariate_drift == mv
    off = DriftDetector(ref, names, DriftConfig(multivariate=False), categorical=det.categorical)
    assert off.test(win).multivariate_drift is None


def test_a_detector_at_a_level_below_the_default_draws_resolution_simulates_enough_draws() -> None:
    # DRIFTWATCH_ALPHA=1e-4 made every report an error: 1,000 draws cannot reach p <= 1e-4.
    rng = np.random.default_rng(13)
    det = DriftDetector(rng.normal(size=(N_REF, F)), [f"x{i}" for i in range(F)], DriftConfig(alpha=1e-4))
    det.prepare()
    unchanged = det.test(_windows(rng, 1, 0.0)[0]).multivariate_drift
    moved = det.test(_windows(rng, 1, 0.8)[0]).multivariate_drift
    assert unchanged is not None and moved is not None
    assert not unchanged.drifted and moved.drifted and moved.p_value < 1e-4
    assert CorrelationReference(rng.normal(size=(100, 3)), alpha=1e-4, n_draws=draws_for(1e-4)).n_draws == 10_000


def test_levels_below_min_alpha_are_refused_in_config_and_settings() -> None:
    from pydantic import ValidationError

    from monitor.monitor_settings import MonitorSettings

    with pytest.raises(ValueError, match="alpha"):
        DriftConfig(alpha=MIN_ALPHA / 10)
    assert DriftConfig(alpha=MIN_ALPHA).alpha == MIN_ALPHA
    with pytest.raises(ValidationError, match="DRIFTWATCH_ALPHA"):
        MonitorSettings(DRIFTWATCH_ALPHA=MIN_ALPHA / 10)
    assert MonitorSettings(DRIFTWATCH_ALPHA=MIN_ALPHA).alpha == MIN_ALPHA
