"""Effect floors from reference chunks: natural variation inside the reference is not drift,
a change beyond it still is, and a shuffled reference decides as without floors (seeded)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import wasserstein_distance

from monitor.drift import DriftConfig, DriftDetector
from monitor.drift.detector import FLOOR_SIZES_KEPT
from monitor.drift.ks import ks_critical_h
from monitor.drift.reference_chunks import FLOOR_SDS, MIN_CHUNKS, chunk_floors, rescaled

WINDOW = 1_000


def _names(f: int) -> list[str]:
    return [f"f{i}" for i in range(f)]


def _seasonal(rng: np.random.Generator, weeks: int, f: int) -> tuple[np.ndarray, np.ndarray]:
    """Weekly chunks whose mean in feature 0 swings with the 'weather' (+-0.25 sd);
    the other features are steady. Returns the rows and each week's offset."""
    offsets = 0.25 * np.sin(np.arange(weeks) * 2.1)
    rows = rng.normal(size=(weeks * WINDOW, f))
    rows[:, 0] += np.repeat(offsets, WINDOW)
    return rows, offsets


def test_seasonal_weeks_are_not_drift_but_a_change_beyond_them_is() -> None:
    rng = np.random.default_rng(3)
    ref, _ = _seasonal(rng, 24, 6)
    floored = DriftDetector(ref, _names(6), DriftConfig(multivariate=False))
    plain = DriftDetector(ref, _names(6), DriftConfig(multivariate=False, effect_floor="none"))
    weeks, _ = _seasonal(rng, 24, 6)  # 24 held-out weeks of the same weather
    plain_seasonal = floored_seasonal = floored_alarms = 0
    for w in range(24):
        window = weeks[w * WINDOW : (w + 1) * WINDOW]
        plain_seasonal += "f0" in plain.test(window).drifted_features
        report = floored.test(window)
        floored_seasonal += "f0" in report.drifted_features
        floored_alarms += report.dataset_drift
        assert report.floor_chunks == 24
    assert plain_seasonal >= 8  # the test at alpha sees every stormy week
    assert floored_seasonal == 0
    assert floored_alarms <= 2  # the steady features' own false alarms (at most alpha's share)
    changed = rng.normal(size=(WINDOW, 6))
    changed[:, 3] += 0.3  # a feature that never moved in the reference moves
    changed[:, 0] += 0.8  # and the seasonal one leaves its band
    report = floored.test(changed)
    assert report.drifted_features == ["f0", "f3"]
    f0 = report.features[0]
    assert f0.effect_floor is not None and f0.effect_size is not None and f0.effect_size > f0.effect_floor


def test_floors_are_the_band_of_each_chunks_effect_against_the_rest() -> None:
    """The shortcut (distance to the whole reference / (1 - r)) equals the distance to the rest."""
    rng = np.random.default_rng(4)
    ref, _ = _seasonal(rng, 10, 2)
    det = DriftDetector(ref, _names(2), DriftConfig(multivariate=False))
    floors = det.floors(WINDOW)
    assert floors is not None and floors.n_chunks == 10
    direct = []
    for c in range(10):
        chunk = ref[c * WINDOW : (c + 1) * WINDOW, 0]
        rest = np.delete(ref[:, 0], np.s_[c * WINDOW : (c + 1) * WINDOW])
        direct.append(wasserstein_distance(chunk, rest) / ref[:, 0].std())
    expected = np.mean(direct) + FLOOR_SDS * np.std(direct, ddof=1)
    assert floors.features[0] == pytest.approx(expected, rel=1e-6)


def test_categorical_floors_use_the_rest_of_the_counts() -> None:
    rng = np.random.default_rng(5)
    n = 12 * WINDOW
    # The category mix changes week by week in the reference.
    p_b = np.repeat(0.2 + 0.1 * (np.arange(12) % 3), WINDOW)
    ref = np.where(rng.random(n) < p_b, 1.0, 0.0)[:, None]
    det = DriftDetector(ref, ["c"], DriftConfig(multivariate=False), categorical=np.array([True]))
    like_a_week = np.where(rng.random(WINDOW) < 0.4, 1.0, 0.0)[:, None]
    assert not det.test(like_a_week).dataset_drift
    assert DriftDetector(ref, ["c"], DriftConfig(multivariate=False, effect_floor="none"),
                         categorical=np.array([True])).test(like_a_week).dataset_drift
    beyond = np.where(rng.random(WINDOW) < 0.7, 1.0, 0.0)[:, None]
    assert det.test(beyond).drifted_features == ["c"]


def test_multivariate_statistic_gets_a_floor_from_the_chunks() -> None:
    """Weeks whose two features move together and weeks they do not: a window like one of
    them is within the reference's own variation."""
    rng = np.random.default_rng(6)
    weeks = []
    for w in range(16):
        rho = 0.6 if w % 2 else 0.0
        cov = np.array([[1.0, rho, 0.0], [rho, 1.0, 0.0], [0.0, 0.0, 1.0]])
        weeks.append(rng.multivariate_normal(np.zeros(3), cov, size=WINDOW))
    ref = np.concatenate(weeks)
    cov = np.array([[1.0, 0.6, 0.0], [0.6, 1.0, 0.0], [0.0, 0.0, 1.0]])
    window = rng.multivariate_normal(np.zeros(3), cov, size=WINDOW)
    floored = DriftDetector(ref, _names(3)).test(window).multivariate_drift
    plain = DriftDetector(ref, _names(3), DriftConfig(effect_floor="none")).test(window).multivariate_drift
    assert plain is not None and plain.drifted and plain.statistic_floor is None
    assert floored is not None and not floored.drifted
    assert floored.statistic_floor is not None and floored.statistic <= floored.statistic_floor


def test_a_shuffled_reference_decides_as_without_floors() -> None:
    """On an exchangeable reference the floors sit at one window's sampling noise: the tests'
    own decisions stand (null windows and shifted ones alike)."""
    rng = np.random.default_rng(7)
    f = 16
    ref = rng.normal(size=(10 * WINDOW, f))
    floored = DriftDetector(ref, _names(f), DriftConfig(multivariate=False))
    plain = DriftDetector(ref, _names(f), DriftConfig(multivariate=False, effect_floor="none"))
    same = 0
    trials = 60
    for t in range(trials):
        window = rng.normal(size=(WINDOW, f))
        window[:, : t % 4] += 0.15 * (t % 3)
        a, b = floored.test(window), plain.test(window)
        same += a.drifted_features == b.drifted_features
    assert same >= trials - 2


def test_too_few_chunks_give_no_floor_and_bad_sizes_are_refused() -> None:
    rng = np.random.default_rng(8)
    ref = rng.normal(size=((MIN_CHUNKS - 1) * WINDOW, 2))
    det = DriftDetector(ref, _names(2))
    assert det._num_ref is not None and det._correlation is not None

    def not_computed(*args: object) -> None:
        raise AssertionError("chunk effects computed for a size without floors")

    det._num_ref.chunk_w1 = not_computed  # type: ignore[method-assign]
    det._correlation.chunk_statistics = not_computed  # type: ignore[method-assign]
    assert det.floors(WINDOW) is None
    assert det.test(rng.normal(size=(WINDOW, 2))).floor_chunks is None
    with pytest.raises(ValueError):
        chunk_floors(ref, 0, lambda i, c, r: np.zeros(2))


def test_grid_floors_agree_with_the_exact_sizes_within_their_own_noise() -> None:
    """Time windows: floors from the nearest grid size, rescaled, are the floors of the window's
    own size up to the floors' own sampling noise (their spread over i.i.d. features)."""
    rng = np.random.default_rng(10)
    f = 32
    ref = rng.normal(size=(20 * WINDOW, f))
    exact = DriftDetector(ref, _names(f))
    grid = DriftDetector(ref, _names(f), DriftConfig(floor_sizes="grid"))
    for m in (900, 1_000, 1_100):
        e, g = exact.floors(m), grid.floors(m)
        assert e is not None and g is not None and e.multivariate is not None and g.multivariate is not None
        assert g.chunk_size != m and g.n_chunks == 20 * WINDOW // g.chunk_size
        rel = g.features / e.features - 1.0
        noise = float(e.features.std() / e.features.mean())
        assert abs(float(rel.mean())) < noise / 2
        assert float(np.median(np.abs(rel))) < noise
        assert abs(g.multivariate / e.multivariate - 1.0) < 0.15


def test_rescaled_floors_follow_the_sampling_scale() -> None:
    """Floors of chunks half the window's size, rescaled by sqrt(1/m + 1/(n - m)) (the statistic
    by its square), are the window size's own floors: unscaled they would be ~1.4x (~2x) too high."""
    rng = np.random.default_rng(11)
    f, n = 32, 20 * WINDOW
    det = DriftDetector(rng.normal(size=(n, f)), _names(f))
    half, whole = det.floors(WINDOW // 2), det.floors(WINDOW)
    assert half is not None and whole is not None and half.multivariate and whole.multivariate
    scaled = rescaled(half, n, WINDOW)
    assert float(np.mean(scaled.features / whole.features)) == pytest.approx(1.0, abs=0.06)
    assert float(np.mean(half.features / whole.features)) > 1.3
    assert scaled.multivariate is not None
    assert scaled.multivariate / whole.multivariate == pytest.approx(1.0, abs=0.15)
    assert half.multivariate / whole.multivariate > 1.6
    assert rescaled(whole, n, WINDOW) is whole


def test_time_windows_of_nearby_sizes_share_their_floors() -> None:
    """Windows of 1,000 and 1,010 rows: one computation on the grid, two at exact sizes; the
    seasonal weeks of a time-ordered reference are still not drift at every size."""
    rng = np.random.default_rng(12)
    ref, _ = _seasonal(rng, 24, 6)
    exact = DriftDetector(ref, _names(6), DriftConfig(multivariate=False))
    grid = DriftDetector(ref, _names(6), DriftConfig(multivariate=False, floor_sizes="grid"))
    weeks, _ = _seasonal(rng, 24, 6)
    for det in (exact, grid):
        det.test(weeks[:1_000])
        det.test(weeks[1_000:2_010])
    assert exact.floor_computations == 2
    assert grid.floor_computations == 1
    plain = DriftDetector(ref, _names(6), DriftConfig(multivariate=False, effect_floor="none"))
    sizes = rng.integers(900, 1_101, size=24)
    alarms = np.array([["f0" in det.test(weeks[w * WINDOW : w * WINDOW + int(s)]).drifted_features
                        for w, s in enumerate(sizes)] for det in (exact, grid, plain)])
    assert alarms[2].sum() >= 8 and alarms[0].sum() <= 1 and alarms[1].sum() <= 2
    assert (alarms[0] != alarms[1]).sum() <= 2
    assert grid.floor_computations <= 4  # 900-1,100 rows: grid sizes 939, 1024 and 1117 at most


def test_floors_are_kept_for_the_sizes_used_last() -> None:
    """The cache is bounded, and the size every window uses is never the one dropped."""
    rng = np.random.default_rng(13)
    det = DriftDetector(rng.normal(size=(20 * WINDOW, 3)), _names(3), DriftConfig(multivariate=False))
    det.floors(WINDOW)
    for size in range(100, 100 + 3 * FLOOR_SIZES_KEPT):
        det.floors(size)
        det.floors(WINDOW)
    assert len(det._floors) <= FLOOR_SIZES_KEPT
    assert det.floor_computations == 1 + 3 * FLOOR_SIZES_KEPT


def test_prepare_computes_the_configured_window_size() -> None:
    """The monitor's count windows have one size: prepare() computes its floors, critical value
    and multivariate threshold, and the first window of that size computes no floors."""
    rng = np.random.default_rng(14)
    ref = rng.normal(size=(10 * WINDOW, 4))
    det = DriftDetector(ref, _names(4), DriftConfig(window_size=WINDOW))
    assert det.floor_computations == 0
    det.prepare()
    assert det.floor_computations == 1 and WINDOW in det._floors
    assert det._correlation is not None and WINDOW in det._correlation._threshold
    hits = ks_critical_h.cache_info().hits
    det.test(rng.normal(size=(WINDOW, 4)))
    assert det.floor_computations == 1
    assert ks_critical_h.cache_info().hits > hits
    plain = DriftDetector(ref, _names(4))
    plain.prepare()
    assert plain.floor_computations == 0
