"""Missing values (NaN) in the drift tests: present values tested as scipy would, the
missing rate tested by Fisher's exact test, one correction over both, and windows
without NaN untouched."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import chi2_contingency, fisher_exact, ks_2samp

from monitor.drift import DriftConfig, DriftDetector
from monitor.drift.ks import SortedReference, ks_2samp_many
from monitor.drift.missing import fisher_exact_two_sided, missing_rate_tests
from monitor.drift.report import NO_MISSING
from monitor.drift.sliding import SlidingKS

NAMES = ["steady", "more_nulls", "all_null", "shifted", "ref_nulls"]


def _data(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Known answers: 'more_nulls' goes from 2% to 30% missing (values unchanged),
    'all_null' is null in every window row, 'shifted' moves by 0.5 sd with no null,
    'ref_nulls' has 10% missing in the reference and as many in the window."""
    rng = np.random.default_rng(seed)
    ref = rng.normal(size=(4000, 5))
    ref[rng.random(4000) < 0.02, 1] = np.nan
    ref[rng.random(4000) < 0.10, 4] = np.nan
    win = rng.normal(size=(800, 5))
    win[rng.random(800) < 0.30, 1] = np.nan
    win[:, 2] = np.nan
    win[:, 3] += 0.5
    win[rng.random(800) < 0.10, 4] = np.nan
    return ref, win


EXACT = DriftConfig(p_values="all")  # every p-value as scipy computes it


def test_each_feature_is_tested_on_its_present_values_as_scipy_omits_nan() -> None:
    ref, win = _data()
    report = DriftDetector(ref, NAMES, EXACT).test(win)
    for f in (0, 1, 3, 4):
        expected = ks_2samp(ref[:, f], win[:, f], nan_policy="omit")
        feature = report.features[f]
        assert feature.statistic == pytest.approx(expected.statistic, abs=1e-12)
        assert feature.p_value == pytest.approx(expected.pvalue, rel=1e-9, abs=1e-300)
        assert not feature.insufficient_data
    all_null = report.features[2]
    assert all_null.insufficient_data and all_null.statistic is None and all_null.p_value is None
    assert not all_null.significant


def test_missing_counts_shares_and_the_rate_test_against_scipy_fisher() -> None:
    ref, win = _data()
    report = DriftDetector(ref, NAMES, EXACT).test(win)
    n_tests = 5 + 3  # every feature's distribution, and the rate of the three with a null somewhere
    assert report.n_tests == n_tests and report.per_test_level == pytest.approx(0.05 / n_tests)
    for f, feature in enumerate(report.features):
        missing = feature.missing
        assert missing is not None
        r, w = int(np.isnan(ref[:, f]).sum()), int(np.isnan(win[:, f]).sum())
        assert (missing.reference, missing.window) == (r, w)
        assert missing.reference_share == r / 4000 and missing.window_share == w / 800
        if r + w == 0:
            assert missing.test is None and missing.p_value is None
            continue
        expected = fisher_exact([[r, 4000 - r], [w, 800 - w]]).pvalue
        assert missing.test == "fisher_exact"
        assert missing.p_value == pytest.approx(expected, rel=1e-9, abs=1e-300)
        assert missing.p_value_adjusted == pytest.approx(min(1.0, expected * n_tests), rel=1e-9, abs=1e-300)
        assert missing.effect_size == pytest.approx(abs(w / 800 - r / 4000))
    # Known answers: the two features whose null rate changed, and the shifted one.
    assert report.drifted_features == ["more_nulls", "all_null", "shifted"]
    more_nulls = report.features[1]
    assert more_nulls.drifted and not more_nulls.significant  # its values did not move, its nulls did
    assert more_nulls.missing is not None and more_nulls.missing.drifted
    assert report.features[3].significant and report.features[3].missing == NO_MISSING
    ref_nulls = report.features[4]
    assert not ref_nulls.drifted and ref_nulls.missing is not None and not ref_nulls.missing.significant
    assert report.n_drifted == 3 and report.drifted_share == 3 / 5


def test_benjamini_hochberg_ranks_both_kinds_of_test_together() -> None:
    ref, win = _data()
    report = DriftDetector(ref, NAMES, DriftConfig(correction="fdr_bh")).test(win)  # BH: every p-value exact
    family = [f.p_value if f.p_value is not None else 1.0 for f in report.features]
    family += [f.missing.p_value for f in report.features if f.missing and f.missing.p_value is not None]
    p = np.array(family)
    order = np.argsort(p)
    ranked = np.minimum.accumulate((p[order] * p.size / np.arange(1, p.size + 1))[::-1])[::-1]
    adjusted = np.empty_like(p)
    adjusted[order] = np.minimum(ranked, 1.0)
    reported = [f.p_value_adjusted for f in report.features if f.p_value is not None]
    np.testing.assert_allclose(reported, [adjusted[i] for i in (0, 1, 3, 4)], rtol=1e-12)
    assert report.drifted_features == ["more_nulls", "all_null", "shifted"]


def test_near_level_p_values_decide_as_exact_ones() -> None:
    """The default reports Kolmogorov's limit far from the level and scipy's value near it."""
    ref, win = _data()
    exact = DriftDetector(ref, NAMES, EXACT).test(win)
    near = DriftDetector(ref, NAMES).test(win)
    assert near.drifted_features == exact.drifted_features and near.n_tests == exact.n_tests
    level = 0.05 / exact.n_tests
    for a, b in zip(near.features, exact.features, strict=True):
        if b.p_value is None:
            assert a.p_value is None
            continue
        assert a.p_value is not None
        if a.p_value_method == "kolmogorov":
            assert not level / 10 <= b.p_value <= level * 10
            assert a.p_value == pytest.approx(b.p_value, rel=0.1)
        else:
            assert a.p_value == b.p_value
    drifted_only = DriftDetector(ref, NAMES, DriftConfig(p_values="drifted")).test(win)
    assert drifted_only.drifted_features == exact.drifted_features
    assert [f.p_value is not None for f in drifted_only.features] == [False, False, False, True, False]


def test_a_window_without_nan_gives_the_report_it_gave_before() -> None:
    """No NaN anywhere: the fast path, its family of F tests and its p-value policy."""
    rng = np.random.default_rng(3)
    ref = rng.normal(size=(3000, 4))
    win = rng.normal(size=(500, 4))
    win[:, 1] += 0.4
    cfg = DriftConfig(p_values="drifted")
    report = DriftDetector(ref, ["a", "b", "c", "d"], cfg).test(win)
    assert report.n_tests == 4 and report.per_test_level == pytest.approx(0.05 / 4)
    assert report.drifted_features == ["b"]
    assert report.features[0].p_value is None  # not drifted: its p-value was not needed
    assert all(f.missing is NO_MISSING for f in report.features)


def test_a_feature_with_too_few_present_values_is_insufficient_not_no_drift() -> None:
    rng = np.random.default_rng(4)
    ref = rng.normal(size=(1000, 2))
    win = rng.normal(size=(100, 2))
    win[:80, 0] = np.nan  # 20 present values, fewer than min_window_size = 30
    report = DriftDetector(ref, ["x", "y"]).test(win)
    x = report.features[0]
    assert x.insufficient_data and x.statistic is None and not x.significant
    assert x.missing is not None and x.missing.window == 80 and x.missing.drifted  # 80% null against none


def test_categorical_features_count_present_values_only() -> None:
    rng = np.random.default_rng(5)
    ref = rng.integers(0, 4, size=(3000, 1)).astype(float)
    ref[rng.random(3000) < 0.05, 0] = np.nan
    win = rng.choice([0.0, 1.0, 2.0, 3.0], p=[0.1, 0.2, 0.3, 0.4], size=(600, 1))
    win[rng.random(600) < 0.05, 0] = np.nan
    report = DriftDetector(ref, ["c"], categorical=np.array([True])).test(win)
    table = np.array([[np.sum(col == v) for v in range(4)] for col in (ref[:, 0], win[:, 0])])
    expected = chi2_contingency(table, correction=False)  # every count is large: nothing pooled
    assert report.features[0].statistic == pytest.approx(expected.statistic, rel=1e-12)
    assert report.features[0].p_value == pytest.approx(expected.pvalue, rel=1e-9)
    assert report.features[0].significant  # the category shares moved
    assert report.features[0].missing is not None and not report.features[0].missing.drifted


def test_the_multivariate_test_uses_complete_rows() -> None:
    rng = np.random.default_rng(6)
    ref = rng.normal(size=(3000, 3))
    win = rng.normal(size=(600, 3))
    shared = rng.normal(size=(600, 1))
    win[:, :2] = np.sqrt(0.8) * shared + np.sqrt(0.2) * win[:, :2]  # a and b now move together
    win[rng.random(600) < 0.1, 2] = np.nan
    det = DriftDetector(ref, ["a", "b", "c"])
    report = det.test(win)
    complete = win[~np.isnan(win).any(axis=1)]
    alone = det.test(complete)
    assert report.multivariate_drift is not None and report.multivariate_drift.drifted
    assert report.multivariate_drift == alone.multivariate_drift


def test_sliding_windows_with_nan_are_tested_whole() -> None:
    rng = np.random.default_rng(7)
    ref = rng.normal(size=(2000, 2))
    stream = rng.normal(size=(500, 2))
    stream[250:260, 1] = np.nan
    det = DriftDetector(ref, ["a", "b"])
    sliding = det.sliding(stream[:200])
    assert sliding is not None
    for end in (300, 400):  # NaN rows enter the ring and stay in it
        sliding.step(det.numeric_columns(stream[end - 100 : end]))
        window = stream[end - 200 : end]
        assert det.test_sliding(sliding, window) == det.test(window)
        with pytest.raises(ValueError, match="missing"):
            sliding.statistic_h()
    sliding.step(det.numeric_columns(stream[400:500]))  # ... and leave it: exact again
    window = stream[300:500]
    incremental, whole = det.test_sliding(sliding, window), det.test(window)
    assert [(f.statistic, f.p_value) for f in incremental.features] == [
        (f.statistic, f.p_value) for f in whole.features
    ]  # (effect sizes only where significant: see test_sliding)
    expected = ks_2samp(ref[:, 1], window[:, 1]).statistic
    assert sliding.statistic()[1] == pytest.approx(expected, abs=1e-12)


def test_a_reference_with_nan_has_no_incremental_state() -> None:
    rng = np.random.default_rng(8)
    ref = rng.normal(size=(500, 2))
    ref[::7, 0] = np.nan
    det = DriftDetector(ref, ["a", "b"])
    win = rng.normal(size=(200, 2))
    assert det.sliding(win) is None
    assert det.test_sliding(None, win) == det.test(win)
    with pytest.raises(ValueError, match="missing"):
        SlidingKS(SortedReference(ref), win)


@pytest.mark.parametrize("numba", [True, False])
def test_ks_on_present_values_equals_scipy_omit_for_both_kernels(
    numba: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    from monitor.drift import _kernels

    monkeypatch.setattr(_kernels, "HAVE_NUMBA", numba and _kernels.HAVE_NUMBA)
    rng = np.random.default_rng(9)
    for n, m in [(300, 120), (6000, 100), (2000, 2000)]:
        x = np.round(rng.normal(size=(n, 3)), 1)  # ties
        y = np.round(rng.normal(0.1, 1, size=(m, 3)), 1)
        x[rng.random(x.shape) < 0.1] = np.nan
        y[rng.random(y.shape) < [0.0, 0.3, 0.9]] = np.nan
        d, p = ks_2samp_many(x, y)
        for f in range(3):
            expected = ks_2samp(x[:, f], y[:, f], nan_policy="omit")
            assert d[f] == pytest.approx(expected.statistic, abs=1e-12)
            assert p[f] == pytest.approx(expected.pvalue, rel=1e-9, abs=1e-300)


def test_fisher_exact_matches_scipy_on_many_tables() -> None:
    rng = np.random.default_rng(10)
    size = 400
    n, m = rng.integers(1, 20000, size), rng.integers(1, 3000, size)
    rate = rng.choice([0.0, 0.001, 0.01, 0.1, 0.5, 0.9, 1.0], size)
    a = rng.binomial(n, rate)
    c = rng.binomial(m, np.where(rng.random(size) < 0.5, rate, rng.random(size)))
    c[:50], m[:50], n[:50] = n[:50] - a[:50], n[:50], n[:50]  # mirror-image tables: both tails tie
    p = fisher_exact_two_sided(a, n - a, c, m - c)
    expected = [fisher_exact([[a[i], n[i] - a[i]], [c[i], m[i] - c[i]]]).pvalue for i in range(size)]
    np.testing.assert_allclose(p, expected, rtol=1e-9, atol=1e-300)


def test_rate_tests_apply_only_to_informative_tables() -> None:
    t = missing_rate_tests([0, 5, 1000, 0], 1000, [0, 0, 100, 100], 100)
    assert t.applies.tolist() == [False, True, False, True]  # none missing; ...; all missing; ...
    assert np.isnan(t.p_value[[0, 2]]).all()
    assert t.p_value[3] == pytest.approx(fisher_exact([[0, 1000], [100, 0]]).pvalue)


def test_null_windows_raise_drift_no_more_often_than_alpha() -> None:
    """Calibration: missing at random at the reference's rate, nothing shifted."""
    rng = np.random.default_rng(11)
    ref = rng.normal(size=(3000, 8))
    ref[rng.random(ref.shape) < 0.05] = np.nan
    det = DriftDetector(ref, [f"f{i}" for i in range(8)], DriftConfig(multivariate=False))
    alarms = 0
    trials = 200
    for _ in range(trials):
        win = rng.normal(size=(300, 8))
        win[rng.random(win.shape) < 0.05] = np.nan
        alarms += det.test(win).dataset_drift
    assert alarms / trials <= 0.05 + 2 * np.sqrt(0.05 * 0.95 / trials)


def test_infinite_values_are_still_refused() -> None:
    det = DriftDetector(np.zeros((50, 1)), ["a"])
    with pytest.raises(ValueError, match="infinite"):
        det.test(np.full((40, 1), np.inf))


def test_a_window_with_nulls_gets_the_effect_floors_of_its_size() -> None:
    """A seasonal reference: feature 0 swings by week. A week with a few nulls in another
    feature is decided against the same floors as without them."""
    rng = np.random.default_rng(12)
    offsets = 0.25 * np.sin(np.arange(24) * 2.1)
    ref = rng.normal(size=(24_000, 3))
    ref[:, 0] += np.repeat(offsets, 1000)
    det = DriftDetector(ref, ["season", "b", "c"], DriftConfig(multivariate=False))
    week = rng.normal(size=(1000, 3))
    week[:, 0] += offsets[1]  # a stormy week, within the reference's own band
    holed = week.copy()
    holed[:5, 2] = np.nan
    plain, with_nulls = det.test(week), det.test(holed)
    floors = det.floors(1000)
    assert floors is not None and with_nulls.floor_chunks == plain.floor_chunks == 24
    assert "season" not in with_nulls.drifted_features and "season" not in plain.drifted_features
    assert with_nulls.features[0].effect_floor == pytest.approx(float(floors.features[0]))
