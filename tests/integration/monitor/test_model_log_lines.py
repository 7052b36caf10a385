"""Every line a monitor logs about one model names it (and the version, where there is one).

With 50 models on one monitor, ``window 0: drift`` or ``1 entries dead-lettered``
says nothing. The real monitor app against a real redis-server, three models:
each one's window reports, dead-lettered entries and worker failures must
carry the model (``record.model``, ``record.model_version``) and show it in
the services' log format.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pytest
import redis.asyncio as aioredis
from fastapi.testclient import TestClient

from monitor.app import create_app
from monitor.monitor_settings import MonitorSettings
from shared.keys import Keys
from shared.log_context import LOG_FORMAT
from shared.registry import register_model
from tests.integration.monitor.helpers import eventually, publish_predictions, small_model

pytestmark = pytest.mark.timeout(120)

WINDOW = 100
# The loggers of a model's own work: its consumer, reporter, worker and their supervisor.
PER_MODEL = ("monitor.consumer", "monitor.reports", "monitor.worker", "shared.supervision")


async def register_small(client: aioredis.Redis, name: str) -> Keys:
    metadata, reference = small_model(name, "1")
    await register_model(client, Keys(name), metadata, reference)
    return Keys(name)


async def test_each_models_lines_name_the_model_and_version(
    aredis: aioredis.Redis, redis_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    churn, fraud = await register_small(aredis, "churn"), await register_small(aredis, "fraud")
    await aredis.set(Keys("broken").predictions, "not a stream")  # its worker fails at every start
    await register_small(aredis, "broken")
    settings = MonitorSettings(
        REDIS_URL=redis_url, DRIFTWATCH_MODEL_NAME="churn", DRIFTWATCH_WINDOW_SIZE=WINDOW,
        DRIFTWATCH_READ_BLOCK_MS=50, DRIFTWATCH_DISCOVERY_INTERVAL_S=0.2,
    )
    rng = np.random.default_rng(0)
    caplog.set_level(logging.INFO)
    with TestClient(create_app(settings, consumer_name="logs")) as client:
        for keys, shift in ((churn, 0.0), (fraud, 3.0)):
            x = rng.normal(size=(WINDOW, 4)).astype(np.float32)
            x[:, 0] += shift
            await publish_predictions(aredis, keys, x, rng.integers(0, 2, WINDOW), n_classes=2)
        await aredis.xadd(churn.predictions, {"junk": "1"})  # undecodable: dead-lettered
        await aredis.xadd(fraud.feedback, {"junk": "1"})

        def lines(logger: str, text: str) -> list[logging.LogRecord]:
            return [r for r in caplog.records if r.name == logger and text in r.getMessage()]

        await eventually(lambda: len(lines("monitor.reports", "window 0:")) == 2
                         and lines("monitor.alerts.service", "DatasetDrift")
                         and len(lines("monitor.consumer", "dead-lettered")) == 2
                         and lines("shared.supervision", "monitor-worker failed"), timeout_s=60)
        ready: dict[str, Any] = client.get("/readyz").json()
        assert ready["failing_models"] == ["broken"]

    reports = {r.model: r for r in lines("monitor.reports", "window 0:")}
    assert set(reports) == {"churn", "fraud"}
    assert all(r.model_version == "1" for r in reports.values())
    formatted = logging.Formatter(LOG_FORMAT).format(reports["fraud"])
    assert "monitor.reports: [fraud v1] window 0: drift, dataset drift=True" in formatted
    assert "version" not in reports["fraud"].getMessage()  # named once, by the tag

    dead = {(r.model, r.model_version) for r in lines("monitor.consumer", "dead-lettered")}
    assert dead == {("churn", None), ("fraud", None)}  # the junk entries name no version
    failed = lines("shared.supervision", "monitor-worker failed")
    assert {r.model for r in failed} == {"broken"}
    assert logging.Formatter(LOG_FORMAT).format(failed[0]).split(": ", 1)[1].startswith("[broken] background task")

    (alert, *_) = lines("monitor.alerts.service", "DatasetDrift")
    assert (alert.model, alert.model_version) == ("fraud", "1")
    assert "monitor.alerts.service: [fraud v1] alert DatasetDrift " in logging.Formatter(LOG_FORMAT).format(alert)

    per_model = [r for r in caplog.records if r.name in PER_MODEL or "->" in r.getMessage()]
    assert per_model and all(r.model in ("churn", "fraud", "broken") for r in per_model), [
        (r.name, r.getMessage()) for r in per_model if r.model is None]
    # Lines about no model in particular carry none.
    assert all(r.model is None for r in caplog.records if r.name == "monitor.fleet")
