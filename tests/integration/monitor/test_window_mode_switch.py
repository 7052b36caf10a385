"""A model version's series outlives a change of ``DRIFTWATCH_WINDOW_MODE`` on the same Redis:
count windows (0, 1, 2 ...) and time slots (prediction time / slot length) then share its window
indexes. Every read of "the newest windows" shows those of the mode the monitor runs now.

Before the fix, right after count -> time ``/drift/window`` showed the last count window as a
time slot starting on 1970-01-01, and after time -> count the old time slots' reports stayed
"the newest" (their indexes are larger) above every new count window's.

Since window epochs (test_window_size_change.py), count -> time closes the count window in progress
(reported short, as a count window) and the first count window after time -> count holds count-mode
predictions only.

Time traffic is stamped in slots of five minutes ago with an hour's grace: a later slot's
predictions close the earlier one at once. Nothing waits for the clock.
"""

from __future__ import annotations

import json
import time
from datetime import datetime
from pathlib import Path

import redis
from fastapi.testclient import TestClient

from monitor.app import create_app
from monitor.monitor_settings import MonitorSettings
from tests.integration.monitor.helpers import (
    holdout_rows,
    publish_at,
    register_sync,
    wait_until,
    window_settings,
)

STEP = 50  # count windows
SLOT_S = 3  # time windows






def _settings(redis_url: str, mode: str) -> MonitorSettings:
    return window_settings(redis_url, mode, STEP, SLOT_S)


def _history(client: TestClient) -> list[tuple[int, str]]:
    return [(r["window"], r["window_mode"]) for r in client.get("/drift/history").json()["reports"]]


def _last_report_window(client: TestClient, model: str) -> int | None:
    models = {m["name"]: m for m in client.get("/models").json()["models"]}
    last = models[model]["versions"][0]["last_report"]
    return last["window"] if last else None


def test_views_show_the_current_window_mode_after_switching_count_to_time_and_back(
    redis_url: str, redis_client: redis.Redis, model_dir: Path
) -> None:
    keys = register_sync(redis_url, model_dir)
    x = holdout_rows(model_dir, 250)

    # 1. Count windows: two reported (0, 1), window 2 holds 20 predictions.
    with TestClient(create_app(_settings(redis_url, "count"), consumer_name="count-1")) as client:
        publish_at(redis_client, keys, x[:120], int(time.time() * 1000))
        wait_until(lambda: client.get("/drift/window").json()["filled"] == 20 and len(_history(client)) == 2)
        assert _history(client) == [(1, "count"), (0, "count")]

    # 2. The same series with time windows, before any prediction of the new mode.
    with TestClient(create_app(_settings(redis_url, "time"), consumer_name="time-1")) as client:
        before = int(time.time()) // SLOT_S
        progress = client.get("/drift/window").json()
        after = int(time.time()) // SLOT_S
        assert progress["mode"] == "time" and progress["size"] is None
        assert before <= progress["window"] <= after, progress  # the current slot, not count window 2
        assert progress["filled"] == 0 and not progress["reported"]
        assert datetime.fromisoformat(progress["start"]).timestamp() == progress["window"] * SLOT_S  # not 1970
        assert _history(client) == []
        drift = client.get("/drift").json()
        assert drift["status"] == "insufficient_data" and drift["predictions_in_window"] == 0
        assert client.get("/performance", params={"windows": 20}).json()["windows"] == []
        assert _last_report_window(client, keys.model) is None
        (summary,) = client.get("/overview").json()["models"]
        assert (summary["window_filled"], summary["window_size"], summary["last_window"]) == (0, None, None)

        # Its first slots: the views follow them.
        base = int(time.time()) // SLOT_S - 100
        publish_at(redis_client, keys, x[120:160], base * SLOT_S * 1000 + 500)
        publish_at(redis_client, keys, x[160:195], (base + 1) * SLOT_S * 1000 + 500)
        wait_until(lambda: len(_history(client)) == 1 and client.get("/drift/window").json()["filled"] == 35)
        assert _history(client) == [(base, "time")]
        # The count window in progress (2, 20 rows) was closed by the switch: reported short, as a
        # count window, and not among the time views.
        series = keys.for_version("1")
        wait_until(lambda: redis_client.hexists(series.drift_reports, 2))
        short = json.loads(redis_client.hget(series.drift_reports, 2))  # type: ignore[arg-type]
        assert (short["window_mode"], short["window_size"]) == ("count", 20)
        assert client.get("/drift/window").json()["window"] == base + 1
        windows = client.get("/performance", params={"windows": 20}).json()["windows"]
        assert [(w["window"], w["predictions"]) for w in windows] == [(base + 1, 35), (base, 40)]
        assert _last_report_window(client, keys.model) == base

    # 3. Back to count windows: the time slots' reports (larger indexes) are no longer "the newest".
    with TestClient(create_app(_settings(redis_url, "count"), consumer_name="count-2")) as client:
        progress = client.get("/drift/window").json()
        assert (progress["mode"], progress["window"], progress["size"]) == ("count", 3, STEP)  # after the short 2
        assert progress["start"] is None and progress["filled"] == 0
        assert _history(client) == [(2, "count"), (1, "count"), (0, "count")]
        assert client.get("/drift").json()["window"] == 2
        assert _last_report_window(client, keys.model) == 2
        windows = client.get("/performance", params={"windows": 20}).json()["windows"]
        assert [w["window"] for w in windows] == [2, 1, 0]

        # The first count window holds STEP predictions of count mode: the time windows' 75 do not count.
        publish_at(redis_client, keys, x[195 : 195 + STEP - 1], int(time.time() * 1000))
        wait_until(lambda: client.get("/drift/window").json()["filled"] == STEP - 1)
        assert len(_history(client)) == 3
        publish_at(redis_client, keys, x[195 + STEP - 1 : 195 + STEP], int(time.time() * 1000))
        wait_until(lambda: len(_history(client)) == 4)
        assert _history(client) == [(3, "count"), (2, "count"), (1, "count"), (0, "count")]
        assert client.get("/drift").json()["window"] == 3
        assert client.get("/drift").json()["window_size"] == STEP  # its rows: none of time mode
        assert _last_report_window(client, keys.model) == 3
        (summary,) = client.get("/overview").json()["models"]
        assert summary["last_window"] == 3
