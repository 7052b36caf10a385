"""The read side agrees with the reports in every window mode: each window that
``/drift/history`` reports appears, with its counts, in per-window ``/performance``
and in ``/drift/window``.

Traffic is stamped in the slots of the last few minutes, and the grace period
for late predictions is an hour: a later slot's predictions close the earlier
slots at once, and the newest slot stays open. Nothing waits for the clock.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import numpy as np
import redis
import redis.asyncio as aioredis
from fastapi.testclient import TestClient

from monitor.app import create_app
from monitor.monitor_settings import MonitorSettings
from shared.events import encode_feedback, encode_predictions
from shared.ids import new_prediction_ids
from shared.keys import Keys
from shared.model_metadata import ModelMetadata, Reference
from shared.registry import register_model
from tests.integration.monitor.helpers import holdout_rows

SLOT_S = 3
# Predictions per slot (all above the minimum window size) and labels per slot.
PER_SLOT = [40, 35, 50, 45, 60, 31]
LABELLED = [20, 0, 50, 10, 33, 1]


def _wait(check: Callable[[], bool], timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)


def _publish_slot(client: redis.Redis, keys: Keys, rows: np.ndarray, at_ms: int, labelled: int) -> None:
    ids = new_prediction_ids(len(rows), at_ms)
    classes = np.arange(len(rows), dtype=np.int64) % 10
    probs = np.eye(10, dtype=np.float32)[classes]
    with client.pipeline(transaction=False) as pipe:
        for entry in encode_predictions(ids, at_ms, keys.model, "1", rows, classes, probs):
            pipe.xadd(keys.predictions, entry)  # type: ignore[arg-type]
        for pid, label in zip(ids[:labelled], classes[:labelled].tolist(), strict=True):
            pipe.xadd(keys.feedback, encode_feedback(pid, label, at_ms + 1_000))  # type: ignore[arg-type]
        pipe.execute()


def test_time_windows_reported_in_history_appear_in_performance_and_window_progress(
    redis_url: str, redis_client: redis.Redis, model_dir: Path
) -> None:
    metadata = ModelMetadata.load(model_dir)
    keys = Keys(metadata.name, metadata.version)

    async def _register() -> None:
        client = aioredis.Redis.from_url(redis_url)
        await register_model(client, keys, metadata, Reference.load(model_dir))
        await client.aclose()

    asyncio.run(_register())
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
            _publish_slot(redis_client, keys, x[start : start + n], (base + k) * SLOT_S * 1000 + 500, labelled)
            start += n

        def reported() -> list[dict]:
            return client.get("/drift/history").json()["reports"]

        _wait(lambda: len(reported()) == len(PER_SLOT) - 1)
        _wait(lambda: client.get("/performance").json()["labelled"] == sum(LABELLED))
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
