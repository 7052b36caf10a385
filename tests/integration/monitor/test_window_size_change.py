"""A model version's count windows after ``DRIFTWATCH_WINDOW_SIZE`` (``driftwatch up --window-size``) or the
window mode changes on the same Redis: successive monitors on one real redis-server, fed through the
predictions stream as the model service feeds it.

Before the fix a count window's index was ``ingest counter // size``, the counter outliving the change:
- lower the size (100 -> 40 after 60 predictions): window 0's 60 rows were never tested, the next
  window started at 60 // 40 = 1 with 20 rows;
- raise it (40 -> 100 after 140): window 140 // 100 = 1 was filled again, though reported: its report
  was never stored again, and the shifted traffic that followed gave no drift report at all;
- time -> count: the first count window counted the time windows' predictions.

Now each change begins a window epoch in the ingest script: the count window in progress is closed as
it is (reported short, with its real rows), the open time slots are closed, and the new size's windows
are numbered on from the next number. Every prediction is in exactly one reported window.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import redis
from fastapi.testclient import TestClient

from monitor.app import create_app
from shared.keys import Keys
from tests.integration.monitor.helpers import (
    holdout_rows,
    publish_at,
    register_sync,
    wait_until,
    window_settings,
)

SLOT_S = 3
SHIFT = np.float32(6.0)  # a covariate shift every window of 40 rows flags (tests/integration/monitor/test_windows.py)








def _monitor(redis_url: str, name: str, mode: str = "count", size: int = 40) -> TestClient:
    return TestClient(create_app(window_settings(redis_url, mode, size, SLOT_S), consumer_name=name))


def _reports(client: redis.Redis, keys: Keys) -> dict[int, dict]:  # type: ignore[type-arg]
    raw = client.hgetall(keys.for_version("1").drift_reports)
    return {int(w): json.loads(r) for w, r in raw.items()}  # type: ignore[union-attr]


def _filled(client: TestClient) -> int:
    return int(client.get("/drift/window").json()["filled"])


def _assert_every_prediction_reported_once(reports: dict[int, dict], sent: int, sizes: list[int]) -> None:  # type: ignore[type-arg]
    """Reports, by increasing window number, hold ``sizes`` rows: all ``sent``, each in one window, in send order."""
    ordered = sorted(reports)
    assert [reports[w]["window_size"] for w in ordered] == sizes, {w: reports[w]["window_size"] for w in ordered}
    assert sum(sizes) == sent
    starts = [reports[w]["window_start"] for w in ordered]
    assert starts == sorted(starts)  # a higher number is a later window: no number reused for later rows


def test_lowering_the_count_window_size_reports_the_window_in_progress_and_numbers_on(
    redis_url: str, redis_client: redis.Redis, model_dir: Path
) -> None:
    keys = register_sync(redis_url, model_dir)
    x = holdout_rows(model_dir, 200, seed=1)
    at = int(time.time() * 1000) - 60_000

    with _monitor(redis_url, "big", size=100) as client:
        publish_at(redis_client, keys, x[:60], at)
        wait_until(lambda: _filled(client) == 60)
        assert _reports(redis_client, keys) == {}

    with _monitor(redis_url, "small", size=40) as client:
        # Before any prediction of the new size: the next one goes to window 1 (it closes window 0
        # short), and that is what `driftwatch simulate` reads to know which windows its run fills.
        progress = client.get("/drift/window").json()
        assert (progress["window"], progress["filled"], progress["size"]) == (1, 0, 40)
        publish_at(redis_client, keys, x[60:100], at + 1_000)
        publish_at(redis_client, keys, x[100:180] + SHIFT, at + 2_000)
        wait_until(lambda: len(_reports(redis_client, keys)) == 4)
        reports = _reports(redis_client, keys)
        _assert_every_prediction_reported_once(reports, 180, [60, 40, 40, 40])
        assert sorted(reports) == [0, 1, 2, 3]
        assert [reports[w]["dataset_drift"] for w in (1, 2, 3)] == [False, True, True]
        progress = client.get("/drift/window").json()
        assert (progress["window"], progress["filled"], progress["size"]) == (4, 0, 40)
        assert [r["window"] for r in client.get("/drift/history").json()["reports"]] == [3, 2, 1, 0]


def test_raising_the_count_window_size_never_reuses_a_reported_window_and_reports_drift(
    redis_url: str, redis_client: redis.Redis, model_dir: Path
) -> None:
    keys = register_sync(redis_url, model_dir)
    x = holdout_rows(model_dir, 340, seed=2)
    at = int(time.time() * 1000) - 60_000

    with _monitor(redis_url, "small", size=40) as client:
        publish_at(redis_client, keys, x[:140], at)
        wait_until(lambda: len(_reports(redis_client, keys)) == 3 and _filled(client) == 20)

    with _monitor(redis_url, "big", size=100) as client:
        progress = client.get("/drift/window").json()
        assert (progress["window"], progress["filled"], progress["size"]) == (4, 0, 100)
        publish_at(redis_client, keys, x[140:240], at + 1_000)
        publish_at(redis_client, keys, x[240:340] + SHIFT, at + 2_000)
        wait_until(lambda: len(_reports(redis_client, keys)) == 6)
        reports = _reports(redis_client, keys)
        _assert_every_prediction_reported_once(reports, 340, [40, 40, 40, 20, 100, 100])
        assert sorted(reports) == [0, 1, 2, 3, 4, 5]
        assert reports[3]["status"] == "insufficient_data"  # 20 rows: below the minimum, said so, not "no drift"
        assert (reports[4]["dataset_drift"], reports[5]["dataset_drift"]) == (False, True)
        assert client.get("/drift").json()["window"] == 5
        progress = client.get("/drift/window").json()
        assert (progress["window"], progress["filled"], progress["size"]) == (6, 0, 100)


def test_time_to_count_closes_the_open_slot_and_the_first_count_window_holds_count_predictions_only(
    redis_url: str, redis_client: redis.Redis, model_dir: Path
) -> None:
    keys = register_sync(redis_url, model_dir)
    x = holdout_rows(model_dir, 155, seed=3)
    base = int(time.time()) // SLOT_S - 100  # slots of five minutes ago: a later slot closes an earlier one at once

    with _monitor(redis_url, "time", mode="time") as client:
        publish_at(redis_client, keys, x[:40], base * SLOT_S * 1000 + 500)
        publish_at(redis_client, keys, x[40:75], (base + 1) * SLOT_S * 1000 + 500)
        wait_until(lambda: len(_reports(redis_client, keys)) == 1 and _filled(client) == 35)

    with _monitor(redis_url, "count", size=40) as client:
        at = int(time.time() * 1000)
        publish_at(redis_client, keys, x[75:115], at)
        publish_at(redis_client, keys, x[115:155] + SHIFT, at + 1_000)
        wait_until(lambda: len(_reports(redis_client, keys)) == 4)
        reports = _reports(redis_client, keys)
        assert sorted(reports) == [0, 1, base, base + 1]
        sizes = {w: (r["window_mode"], r["window_size"]) for w, r in reports.items()}
        assert sizes == {base: ("time", 40), base + 1: ("time", 35), 0: ("count", 40), 1: ("count", 40)}
        assert (reports[0]["dataset_drift"], reports[1]["dataset_drift"]) == (False, True)
        assert [r["window"] for r in client.get("/drift/history").json()["reports"]] == [1, 0]
        progress = client.get("/drift/window").json()
        assert (progress["window"], progress["filled"]) == (2, 0)
