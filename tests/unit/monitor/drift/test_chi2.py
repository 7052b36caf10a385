"""Chi-squared homogeneity test against scipy.stats.chi2_contingency."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import chi2_contingency

from monitor.drift.chi2 import MIN_EXPECTED, CategoricalReference, chi2_homogeneity, chi2_homogeneity_many


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


def _digit_pixel_marginals() -> np.ndarray:
    """Per pixel, the share of each value 0..16 in scikit-learn's bundled digits (64 x 17)."""
    from sklearn.datasets import load_digits

    pixels = load_digits().data.astype(np.int64)
    return np.stack([np.bincount(pixels[:, f], minlength=17) / len(pixels) for f in range(64)])


def _window_counts(ref: list[CategoricalReference], windows: np.ndarray) -> np.ndarray:
    """Counts (N, F, K) of windows (N, m, F) per reference category, as the detector counts them."""
    n_win, _, n_feat = windows.shape
    width = max(r.counts.size for r in ref)
    out = np.zeros((n_win, n_feat, width), dtype=np.int64)
    offset = (np.arange(n_win) * width)[:, None]
    for f, cref in enumerate(ref):
        cats = cref.categories
        idx = np.minimum(np.searchsorted(cats, windows[:, :, f]), cats.size - 1)
        bucket = np.where(cats[idx] == windows[:, :, f], idx, cats.size)
        out[:, f] = np.bincount((offset + bucket).ravel(), minlength=n_win * width).reshape(n_win, width)
    return out


def test_bonferroni_false_alarms_at_most_alpha_with_small_windows_of_categories() -> None:
    # Every feature categorical (digit pixels, integers 0..16), windows of 100, Bonferroni
    # at 0.05 over 64 features: the null holds exactly (every sample drawn from the
    # pixels' own marginals). Pooling at Cochran's 5 alarmed in ~0.06-0.07 of windows.
    rng = np.random.default_rng(13)
    probs = _digit_pixel_marginals()
    cumulative = np.cumsum(probs, axis=1)

    def sample(shape: tuple[int, ...]) -> np.ndarray:
        u = rng.random((*shape, 64))
        for f in range(64):
            u[..., f] = np.searchsorted(cumulative[f, :-1], u[..., f], side="right")
        return u

    reference = sample((10_000,))
    refs = [CategoricalReference(reference[:, f]) for f in range(64)]
    width = max(r.counts.size for r in refs)
    ref_counts = np.stack([np.pad(r.counts, (0, width - r.counts.size)) for r in refs])
    alarms = []
    for _ in range(4):
        counts = _window_counts(refs, sample((1000, 100)))
        _, p, _ = chi2_homogeneity_many(ref_counts, counts, MIN_EXPECTED)
        alarms.append((p < 0.05 / 64).any(axis=1))
    rate = np.concatenate(alarms).mean()
    assert np.concatenate(alarms).size == 4000
    assert rate <= 0.05


def test_many_tables_at_once_equal_one_at_a_time() -> None:
    rng = np.random.default_rng(4)
    ref = rng.poisson(rng.uniform(0, 30, size=(6, 9)))
    ref[:, 0] += 1
    win = rng.poisson(rng.uniform(0, 6, size=(50, 6, 9)))
    win[..., 0] += 1
    for min_expected in (0.0, 5.0, MIN_EXPECTED):
        stat, p, dof = chi2_homogeneity_many(ref, win, min_expected)
        for i in range(50):
            for f in range(6):
                one = chi2_homogeneity(ref[f], win[i, f], min_expected)
                assert (stat[i, f], p[i, f], dof[i, f]) == pytest.approx(one, rel=1e-12, abs=1e-15)
    with pytest.raises(ValueError, match="category"):
        chi2_homogeneity_many(ref, win[..., :4])
