"""The detector: interface, decisions, calibration and power (seeded, fast)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy.stats import chi2_contingency, ks_2samp

from monitor.drift import DriftConfig, DriftDetector, DriftReport, FeatureDrift, PredictionDrift
from monitor.window_state import split_window_rows, window_rows


def _names(f: int) -> list[str]:
    return [f"f{i}" for i in range(f)]


def test_report_shape_and_json() -> None:
    rng = np.random.default_rng(1)
    ref = rng.normal(size=(1500, 4))
    det = DriftDetector(
        ref, _names(4), DriftConfig(p_values="all"), reference_classes=rng.integers(0, 3, 1500), n_classes=3
    )
    win = rng.normal(size=(400, 4))
    win[:, 1] += 1.0
    report = det.test(win, rng.integers(0, 3, 400))
    assert isinstance(report, DriftReport)
    assert report.status == "drift" and report.dataset_drift
    assert report.drifted_features == ["f1"]
    assert report.n_drifted == 1 and report.drifted_share == 0.25
    assert report.reference_size == 1500 and report.window_size == 400
    assert report.correction == "bonferroni" and report.per_test_level == pytest.approx(0.0125)
    f1 = report.features[1]
    assert isinstance(f1, FeatureDrift) and f1.test == "ks" and f1.drifted
    assert f1.effect_size_kind == "wasserstein_norm" and f1.effect_size == pytest.approx(1.0, 0.2)
    expected = ks_2samp(ref[:, 1], win[:, 1])
    assert f1.statistic == pytest.approx(expected.statistic, abs=1e-12)
    assert f1.p_value == pytest.approx(expected.pvalue, rel=1e-9, abs=1e-300)
    assert f1.p_value_adjusted == pytest.approx(min(1.0, 4 * expected.pvalue), abs=1e-300)
    assert isinstance(report.prediction_drift, PredictionDrift)
    assert not report.prediction_drift.drifted
    dumped = report.model_dump(mode="json")
    assert json.loads(json.dumps(dumped))["features"][1]["name"] == "f1"
    assert DriftReport.model_validate(dumped) == report


def test_insufficient_data_is_not_no_drift() -> None:
    det = DriftDetector(np.zeros((100, 2)), ["a", "b"], DriftConfig(min_window_size=50))
    report = det.test(np.ones((49, 2)))
    assert report.status == "insufficient_data"
    assert not report.dataset_drift and report.features == [] and report.window_size == 49
    assert report.prediction_drift is None
    assert det.test(np.zeros((0, 2))).status == "insufficient_data"


def test_bad_config_values() -> None:
    for kwargs in (
        {"alpha": 0.0},
        {"alpha": 1.0},
        {"alpha": float("nan")},
        {"correction": "holm"},
        {"min_window_size": 0},
        {"min_effect_size": -0.1},
        {"unknown": 1},
    ):
        with pytest.raises(ValueError):
            DriftConfig(**kwargs)  # type: ignore[arg-type]


def test_bad_arguments() -> None:
    ref = np.random.default_rng(0).normal(size=(50, 2))
    with pytest.raises(ValueError):
        DriftDetector(np.zeros((0, 2)), ["a", "b"])
    with pytest.raises(ValueError):
        DriftDetector(ref, ["a"])
    with pytest.raises(ValueError):
        DriftDetector(ref, ["a", "a"])
    with pytest.raises(ValueError):
        DriftDetector(np.where(ref > 1, np.inf, ref), ["a", "b"])  # NaN is a missing value; inf is refused
    with pytest.raises(ValueError):
        DriftDetector(ref, ["a", "b"], categorical=np.array([1, 0]))
    with pytest.raises(ValueError):
        DriftDetector(ref, ["a", "b"], reference_classes=np.zeros(50, dtype=int))
    with pytest.raises(ValueError):
        DriftDetector(ref, ["a", "b"], reference_classes=np.full(50, 3), n_classes=3)
    det = DriftDetector(ref, ["a", "b"], reference_classes=np.zeros(50, dtype=int), n_classes=2)
    with pytest.raises(ValueError):
        det.test(np.zeros((40, 3)))
    with pytest.raises(ValueError):
        det.test(np.full((40, 2), np.inf))
    with pytest.raises(ValueError):
        det.test(np.zeros((40, 2)), np.zeros(39, dtype=int))
    with pytest.raises(ValueError):
        det.test(np.zeros((40, 2)), np.full(40, 0.5))


def test_p_values_drifted_only_gives_same_decisions() -> None:
    rng = np.random.default_rng(5)
    ref = rng.normal(size=(3000, 10))
    win = rng.normal(size=(600, 10))
    win[:, [2, 5]] += 0.4
    full = DriftDetector(ref, _names(10), DriftConfig(p_values="all")).test(win)
    lazy = DriftDetector(ref, _names(10), DriftConfig(p_values="drifted")).test(win)
    assert [f.drifted for f in full.features] == [f.drifted for f in lazy.features]
    for a, b in zip(full.features, lazy.features, strict=True):
        assert a.statistic == b.statistic and a.effect_size == b.effect_size
        assert (b.p_value is None) == (not b.drifted)
        if b.p_value is not None:
            assert a.p_value == b.p_value
    # The critical-D decision equals comparing the p-value with alpha / F.
    assert [f.drifted for f in full.features] == [
        f.p_value is not None and f.p_value < 0.05 / 10 for f in full.features
    ]


def test_near_level_p_values_are_scipys_where_they_can_matter_and_never_change_a_decision() -> None:
    """The default reports every p-value: scipy's for a near miss (within NEAR_LEVEL above the
    per-test level, or wherever the limit would disagree with the exact decision), Kolmogorov's
    limit elsewhere (drifted features included: their decision is exact already)."""
    from monitor.drift.detector import NEAR_LEVEL

    rng = np.random.default_rng(8)
    f = 40
    ref = rng.normal(size=(5000, f))
    kinds = set()
    for shift in (0.0, 0.08, 0.12, 0.2, 0.5):
        win = rng.normal(size=(700, f))
        win[:, :10] += shift
        exact = DriftDetector(ref, _names(f), DriftConfig(p_values="all")).test(win)
        near = DriftDetector(ref, _names(f)).test(win)
        level = near.per_test_level
        assert level == pytest.approx(0.05 / f)
        assert [x.drifted for x in near.features] == [x.drifted for x in exact.features]
        for j, (a, b) in enumerate(zip(exact.features, near.features, strict=True)):
            assert b.p_value is not None and a.p_value is not None
            kinds.add(b.p_value_method)
            if not a.drifted and a.p_value <= level * NEAR_LEVEL:  # a near miss
                assert b.p_value_method == "exact" and b.p_value == a.p_value
                assert b.p_value == pytest.approx(ks_2samp(ref[:, j], win[:, j]).pvalue, rel=1e-9)
            elif b.p_value_method == "kolmogorov":
                # Far from the level the limit is close enough to tell "far": same side, same decade band.
                assert (b.p_value < level) == (a.p_value < level)
                assert b.p_value == pytest.approx(a.p_value, rel=0.1) or a.p_value < level / NEAR_LEVEL
    assert kinds == {"exact", "kolmogorov"}


def test_fdr_bh_and_none() -> None:
    rng = np.random.default_rng(11)
    ref = rng.normal(size=(2000, 8))
    win = rng.normal(size=(500, 8))
    win[:, 0] += 0.5
    win[:, 1] += 0.12
    bh = DriftDetector(ref, _names(8), DriftConfig(correction="fdr_bh")).test(win)
    p = np.array([f.p_value for f in bh.features])
    order = np.sort(p)
    k = max((i + 1 for i in range(8) if order[i] < 0.05 * (i + 1) / 8), default=0)
    assert bh.n_drifted == k and "f0" in bh.drifted_features
    none = DriftDetector(ref, _names(8), DriftConfig(correction="none")).test(win)
    assert none.drifted_features == [f"f{i}" for i in range(8) if p[i] < 0.05]


def test_min_effect_size_gates_significance() -> None:
    rng = np.random.default_rng(2)
    ref = rng.normal(size=(20000, 2))
    win = rng.normal(size=(20000, 2))
    win[:, 0] += 0.05  # significant at this size, but small
    win[:, 1] += 0.5
    plain = DriftDetector(ref, ["small", "big"]).test(win)
    assert plain.drifted_features == ["small", "big"]
    gated = DriftDetector(ref, ["small", "big"], DriftConfig(min_effect_size=0.2)).test(win)
    assert gated.drifted_features == ["big"]
    assert gated.features[0].significant and not gated.features[0].drifted


def test_categorical_features_use_chi2() -> None:
    rng = np.random.default_rng(3)
    ref = np.column_stack([rng.normal(size=3000), rng.integers(0, 4, 3000)])
    win = np.column_stack([rng.normal(size=800), rng.choice(4, 800, p=[0.4, 0.3, 0.2, 0.1])])
    det = DriftDetector(ref, ["x", "cat"], categorical=np.array([False, True]))
    report = det.test(win)
    cat = report.features[1]
    assert cat.test == "chi2" and cat.effect_size_kind == "jensen_shannon"
    table = [np.bincount(ref[:, 1].astype(int)), np.bincount(win[:, 1].astype(int))]
    assert cat.p_value == pytest.approx(chi2_contingency(table, correction=False).pvalue)
    assert report.drifted_features == ["cat"]


def test_prediction_drift_with_unseen_class() -> None:
    rng = np.random.default_rng(4)
    ref = rng.normal(size=(1000, 2))
    ref_cls = rng.integers(0, 3, 1000)  # class 3 never predicted on the reference
    det = DriftDetector(ref, ["a", "b"], reference_classes=ref_cls, n_classes=4)
    win_cls = np.where(rng.random(300) < 0.2, 3, rng.integers(0, 3, 300))
    report = det.test(rng.normal(size=(300, 2)), win_cls)
    pred = report.prediction_drift
    assert pred is not None and pred.drifted and pred.p_value is not None
    assert pred.window_class_counts is not None and pred.window_class_counts[3] > 0
    assert report.status == "drift" and not report.dataset_drift
    same = det.test(rng.normal(size=(300, 2)), rng.integers(0, 3, 300))
    assert same.prediction_drift is not None and not same.prediction_drift.drifted


def test_false_alarm_rate_is_calibrated() -> None:
    """500 windows without drift: dataset-level false alarms <= alpha + 3 binomial std."""
    rng = np.random.default_rng(20240601)
    f, n_windows, alpha = 20, 500, 0.05
    ref = rng.normal(size=(2000, f))
    for correction in ("bonferroni", "fdr_bh"):
        cfg = DriftConfig(alpha=alpha, correction=correction, p_values="drifted")
        det = DriftDetector(ref, _names(f), cfg)
        alarms = sum(det.test(rng.normal(size=(200, f))).dataset_drift for _ in range(n_windows))
        bound = alpha + 3 * np.sqrt(alpha * (1 - alpha) / n_windows)
        assert alarms / n_windows <= bound, (correction, alarms)


def test_power_and_exact_features_for_a_small_shift() -> None:
    """0.3 std shift on 10% of 20 features, windows of 1000: power >= 0.95, right features."""
    rng = np.random.default_rng(77)
    f, shifted = 20, [3, 11]
    ref = rng.normal(size=(5000, f))
    det = DriftDetector(ref, _names(f), DriftConfig(p_values="drifted"))
    hits, exact = 0, 0
    for _ in range(100):
        win = rng.normal(size=(1000, f))
        win[:, shifted] += 0.3
        report = det.test(win)
        hits += report.dataset_drift
        exact += report.drifted_features == ["f3", "f11"]
    assert hits / 100 >= 0.95
    assert exact / 100 >= 0.9


@pytest.mark.parametrize("categorical", [False, True])
@pytest.mark.parametrize("min_effect", [None, 0.05])
def test_sliding_path_equals_full_test(categorical: bool, min_effect: float | None) -> None:
    rng = np.random.default_rng(11)
    ref = rng.normal(size=(3000, 4))
    stream = rng.normal(size=(1600, 4))
    stream[700:, 1] += 0.4  # drift enters as the window slides
    cat = np.array([False, False, False, categorical])
    if categorical:
        ref[:, 3] = rng.integers(0, 3, len(ref))
        stream[:, 3] = rng.integers(0, 3, len(stream))
    det = DriftDetector(
        ref, ["a", "b", "c", "d"], DriftConfig(min_effect_size=min_effect), categorical=cat
    )
    m, k = 1000, 200
    sk = det.sliding(stream[:m])
    for pos in range(0, 601, k):
        win = stream[pos : pos + m]
        if pos:
            assert sk is not None
            sk.step(det.numeric_columns(stream[pos + m - k : pos + m]))
        full, inc = det.test(win), det.test_sliding(sk, win)
        assert inc.status == full.status and inc.drifted_features == full.drifted_features
        for a, b in zip(full.features, inc.features, strict=True):
            assert (a.statistic, a.p_value, a.p_value_adjusted, a.significant, a.drifted) == (
                b.statistic, b.p_value, b.p_value_adjusted, b.significant, b.drifted
            )
            if b.significant or b.test == "chi2":
                assert b.effect_size == pytest.approx(a.effect_size, rel=1e-9, abs=1e-12)
            else:
                assert b.effect_size is None
    assert det.test_sliding(sk, stream[:10]).status == "insufficient_data"


def _stored_rows(x: np.ndarray) -> np.ndarray:
    """``x`` as the monitor hands a window to the detector: its stored rows (float32 features,
    then the predicted class) split again, float32 feature columns of the read-only bytes."""
    packed = window_rows([r.tobytes() for r in x.astype(np.float32)], np.zeros(len(x), dtype=np.int64))
    width = len(packed) // len(x)
    view, _ = split_window_rows([packed[i : i + width] for i in range(0, len(packed), width)], x.shape[1])
    assert view.dtype == np.float32 and not view.flags.writeable and not view.flags.c_contiguous
    return view


@pytest.mark.parametrize(
    ("shape", "config"),
    [
        ((3000, 800, 6), DriftConfig()),
        ((3000, 800, 6), DriftConfig(p_values="all", effect_floor="none")),
        ((8000, 2000, 37), DriftConfig(threads=2)),  # past SMALL_WORK: blocks on two threads
        ((3000, 60, 5), DriftConfig(correction="fdr_bh")),  # reference > 30 x window: numpy engine
    ],
)
@pytest.mark.parametrize("categorical", [False, True])
@pytest.mark.parametrize("holes", [False, True])
def test_float32_window_reports_as_the_same_values_upcast(
    shape: tuple[int, int, int], config: DriftConfig, categorical: bool, holes: bool
) -> None:
    """The monitor's float32 windows are tested as float32 (no upcast copy); every number of the
    report is the one the same values give as float64, with ties, a categorical column, the
    cross-moment test and missing values (which take the float64 path)."""
    n, m, f = shape
    rng = np.random.default_rng(n + m + f)
    ref = rng.normal(size=(n, f)).astype(np.float32)  # as the monitor's reference is stored
    win = rng.normal(size=(m, f)).astype(np.float32)
    win[:, 1] += 0.3
    win[:, 2] = np.round(win[:, 2], 1)  # ties, shared with the reference
    ref[:, 2] = np.round(ref[:, 2], 1)
    cat = np.zeros(f, dtype=bool)
    if categorical:
        cat[3] = True
        ref[:, 3] = rng.integers(0, 4, n)
        win[:, 3] = rng.integers(0, 4, m)
    if holes:
        win[::7, 0] = np.nan
    det = DriftDetector(ref, _names(f), config, categorical=cat)
    upcast = det.test(win.astype(np.float64)).model_dump()
    assert upcast["multivariate_drift"] is not None or holes
    assert det.test(win).model_dump() == upcast
    assert det.test(_stored_rows(win)).model_dump() == upcast
