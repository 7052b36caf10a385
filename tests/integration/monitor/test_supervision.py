"""A monitor that meets state it cannot handle says so and goes on (issue 12, item 1).

The case reported: Redis kept the windows of a 64-feature model, then another
model was registered under the same name and version, and the worker task
died on the first report (``cannot reshape array``) with nothing logged and
``/readyz`` at 503 forever. Registration now refuses that (see
``test_registry``), but a window that cannot be tested must still never stop
the others, and a task that dies must be seen and restarted.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import numpy as np
import pytest
import redis
import redis.asyncio as aioredis
from fastapi.testclient import TestClient

from monitor.app import create_app
from monitor.assembly import assemble_monitor
from monitor.monitor_settings import MonitorSettings
from shared.keys import Keys
from shared.registry import metadata_field, register_model
from tests.integration.monitor.helpers import eventually, holdout_rows, publish_predictions, register, small_model

WINDOW = 200


def settings(redis_url: str) -> MonitorSettings:
    return MonitorSettings(REDIS_URL=redis_url, DRIFTWATCH_WINDOW_SIZE=WINDOW, DRIFTWATCH_READ_BLOCK_MS=50)


async def test_a_window_that_does_not_fit_its_model_is_an_error_and_the_others_are_reported(
    aredis: aioredis.Redis, redis_url: str, model_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    digits, keys = await register(aredis, model_dir)
    first = assemble_monitor(aredis, settings(redis_url), "first-run")
    first.start()
    await publish_predictions(aredis, keys, holdout_rows(model_dir, 150), np.zeros(150, dtype=np.int64))
    await eventually(lambda: first.consumer.stats.predictions == 150)
    await first.stop()  # Ctrl-C: window 0 holds 150 rows of 64 features

    # Another model under the same name and version, as the registry wrote it before it checked:
    mine, _ = small_model(digits.name, digits.version)
    await aredis.hset(keys.model_info, metadata_field(digits.version), mine.model_dump_json())
    v2, v2_reference = small_model(digits.name, "2", seed=2)
    await register_model(aredis, keys, v2, v2_reference)

    second = assemble_monitor(aredis, settings(redis_url), "second-run")
    second.start()
    try:
        rng = np.random.default_rng(3)
        with caplog.at_level(logging.ERROR):
            await publish_predictions(aredis, keys, rng.normal(size=(50, 4)).astype(np.float32),
                                      np.zeros(50, dtype=np.int64), n_classes=2, version=digits.version)
            await eventually(lambda: second.consumer.stats.predictions == 50)
            await publish_predictions(aredis, keys, rng.normal(size=(WINDOW, 4)).astype(np.float32),
                                      rng.integers(0, 2, WINDOW), n_classes=2, version="2")

            async def two_reports() -> bool:  # one in each version's series
                return [await aredis.zcard(keys.for_version(v).drift_index) for v in ("1", "2")] == [1, 1]

            await eventually(two_reports)
        (oldest,) = await second.reports.history(10, version=digits.version)
        (newest,) = await second.reports.history(10)  # the current version: 2
        assert oldest.window == 0 and oldest.status == "error" and oldest.model_version == digits.version
        assert oldest.error is not None and oldest.error.startswith("ValueError") and "64" in oldest.error
        assert newest.window == 0 and newest.model_version == "2" and newest.status in ("ok", "drift")
        assert newest.n_features == 4 and newest.window_size == WINDOW
        assert second.worker.running and second.worker.supervisor.failures == 0
        assert any("window 0: report failed" in r.getMessage() and r.exc_info for r in caplog.records)
        assert not await aredis.exists(keys.window_rows(0))  # an error window does not stay forever
    finally:
        await second.stop()


def test_a_worker_that_dies_is_shown_in_readyz_and_restarted(redis_url: str, redis_client: redis.Redis) -> None:
    keys = Keys("digits-mlp")
    redis_client.set(keys.predictions, "not a stream")  # XGROUP CREATE fails: WRONGTYPE
    with TestClient(create_app(settings(redis_url))) as client:
        deadline = time.monotonic() + 20
        while (body := client.get("/readyz").json())["worker_error"] is None:
            assert time.monotonic() < deadline, body
            time.sleep(0.05)
        assert body["ready"] is False and body["worker_running"] is False
        assert body["worker_error"].startswith("monitor-worker: ResponseError: WRONGTYPE")
        redis_client.delete(keys.predictions)
        while (response := client.get("/readyz")).status_code != 200:
            assert time.monotonic() < deadline, response.json()
            time.sleep(0.05)
        body = response.json()
        assert body["worker_running"] is True and body["worker_failures"] >= 1
        assert body["worker_error"].startswith("monitor-worker: ResponseError: WRONGTYPE")  # kept for the operator
