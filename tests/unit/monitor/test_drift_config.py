"""The detector configuration the monitor runs, from its window settings: time windows take
their effect floors from a grid of sizes, count and sliding windows name their one size."""

from __future__ import annotations

import pytest

from monitor.monitor_settings import MonitorSettings
from monitor.reports import drift_config


@pytest.mark.parametrize(
    ("env", "floor_sizes", "window_size"),
    [
        ({}, "exact", 1_000),
        ({"DRIFTWATCH_WINDOW_SIZE": 500}, "exact", 500),
        ({"DRIFTWATCH_WINDOW_MODE": "sliding", "DRIFTWATCH_SLIDING_SIZE": 4_000}, "exact", 4_000),
        ({"DRIFTWATCH_WINDOW_MODE": "time"}, "grid", None),
        ({"DRIFTWATCH_WINDOW_MODE": "sliding-time"}, "grid", None),
    ],
)
def test_window_mode_sets_the_floor_sizes(env: dict[str, object], floor_sizes: str, window_size: int | None) -> None:
    config = drift_config(MonitorSettings(**env))  # type: ignore[arg-type]
    assert config.floor_sizes == floor_sizes
    assert config.window_size == window_size
