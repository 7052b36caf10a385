"""The simulated scenarios have the known answers the e2e tests rely on."""

import numpy as np
import pytest

from driftwatch.cli.simulate import SHIFTED_FEATURES, Scenario, make_traffic

X = np.random.default_rng(0).integers(0, 17, (360, 64)).astype(np.float32)  # distinct rows
Y = np.arange(360) % 10


def test_zero_rows_is_empty_traffic() -> None:
    traffic = make_traffic(Scenario.none, X, Y, 0, seed=0, window=300)
    assert traffic.features.shape == (0, 64) and traffic.labels.shape == (0,)


@pytest.mark.parametrize("scenario", [Scenario.none, Scenario.covariate_shift])
def test_no_window_repeats_a_row(scenario: Scenario) -> None:
    traffic = make_traffic(scenario, X, Y, 900, seed=1, window=300)
    for start in range(0, 900, 300):
        rows = traffic.features[start : start + 300]
        assert len(np.unique(rows, axis=0)) == 300


def test_covariate_shift_moves_only_the_shifted_features() -> None:
    plain = make_traffic(Scenario.none, X, Y, 300, seed=2, window=300)
    shifted = make_traffic(Scenario.covariate_shift, X, Y, 300, seed=2, window=300)
    changed = np.flatnonzero((plain.features != shifted.features).any(axis=0))
    assert set(changed.tolist()) <= set(SHIFTED_FEATURES)
    assert (shifted.features <= 16).all()


def test_label_shift_favours_zeros_and_ones() -> None:
    traffic = make_traffic(Scenario.label_shift, X, Y, 2000, seed=3)
    assert np.isin(traffic.labels, [0, 1]).mean() > 0.5
