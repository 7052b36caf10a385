"""The read side agrees with the reports in every window mode: each window that
``/drift/history`` reports appears, with its counts, in per-window ``/performance``
and in ``/drift/window``.

Traffic is stamped in the slots of the last few minutes, and the grace period
for late predictions is an hour: a later slot's predictions close the earlier
slots at once, and the newest slot stays open. Nothing waits for the clock.
"""

from __future__ import annotations

import time
from datetime import datetime
from pathlib import Path

import redis
from fastapi.testclient import TestClient

from monitor.app import create_app
from monitor.monitor_settings import MonitorSettings
from tests.integration.monitor.helpers import holdout_rows, publish_at, register_sync, wait_until

SLOT_S = 3
# Predictions per slot (all above the minimum window size) and labels per slot.
PER_SLOT = [40, 35, 50, 45, 60, 31]
LABELLED = [20, 0, 50, 10, 33, 1]






def test_time_windows_reported_in_history_appear_in_performance_and_window_progress(
    redis_url: str, redis_client: redis.Redis, model_dir: Path
) -> None:
    keys = register_sync(redis_url, model_dir)
    settings = MonitorSettings(
        REDIS_URL=redis_url, DRIFTWATCH_WINDOW_MODE="time", DRIFTWATCH_WINDOW_SECONDS=SLOT_S,
        DRIFTWATCH_WINDOW_GRACE_S=3_600,
        DRIFTWATCH_READ_BLOCK_MS=50, DRIFTWATCH_ALERTS_ENABLED=False,
    )
    base = int(time.time()) // SLOT_S - 100  # slots of five minutes ago
    x = holdout_rows(model_dir, sum(PER_SLOT))
    with TestClient(create_app(settings, consumer_name="window-reads")) as client:
        start = 0
        for k, (n, labelled) in enumerate(zip(PER_SLOT, LABELLED, strict=True)):
            publish_at(redis_client, keys, x[start : start + n], (base + k) * SLOT_S * 1000 + 500, labelled=labelled)
            start += n

        def reported() -> list[dict]:
            return client.get("/drift/history").json()["reports"]

        wait_until(lambda: len(reported()) == len(PER_SLOT) - 1)
        wait_until(lambda: client.get("/performance").json()["labelled"] == sum(LABELLED))
        history = {r["window"]: r for r in reported()}
        assert sorted(history) == [base + k for k in range(len(PER_SLOT) - 1)]

        performance = client.get("/performance", params={"windows": 20}).json()
        by_window = {w["window"]: w for w in performance["windows"]}
        for k, (n, labelled) in enumerate(zip(PER_SLOT, LABELLED, strict=True)):
            window = base + k
            if window in history:
                assert history[window]["window_size"] == n
            assert by_window[window]["predictions"] == n, window
            assert by_window[window]["labelled"] == labelled, window
            progress = client.get("/drift/window", params={"window": window}).json()
            assert (progress["window"], progress["filled"]) == (window, n)
            assert datetime.fromisoformat(progress["start"]).timestamp() == window * SLOT_S
            assert datetime.fromisoformat(progress["end"]).timestamp() == (window + 1) * SLOT_S
            assert progress["reported"] == (window in history)
        assert {datetime.fromisoformat(r["window_start"]).timestamp() for r in history.values()} == {
            w * SLOT_S for w in history}
        # Without a window asked for: the newest window, still open.
        current = client.get("/drift/window").json()
        assert (current["window"], current["filled"]) == (base + len(PER_SLOT) - 1, PER_SLOT[-1])
        assert not current["reported"]
        assert [w["window"] for w in performance["windows"]] == [base + k for k in reversed(range(len(PER_SLOT)))]
