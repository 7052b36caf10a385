"""A Redis outage is one warning per retrying loop, and its end one line: never a line per retry.

The monitor's consumer (one per watched model) and the alert leader's lease retry
while Redis is away; each retry used to log a warning (~20 a minute per model
during a stop, in the same words), burying what happened. Real redis-server,
stopped and started again on its port, under the monitor app.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from driftwatch.local_processes import LocalRedisServer
from monitor.app import create_app
from monitor.monitor_settings import AlertSettings, MonitorSettings

pytestmark = pytest.mark.timeout(90)
RETRIES = 3  # failed attempts of each loop seen before the lines are counted


@pytest.fixture
def own_redis() -> Iterator[LocalRedisServer]:
    with LocalRedisServer() as server:
        yield server


def _lines(caplog: pytest.LogCaptureFixture, logger: str, text: str, level: int | None = None) -> int:
    return sum(
        1
        for r in caplog.records
        if r.name == logger and text in r.getMessage() and (level is None or r.levelno == level)
    )


def _wait_for_lines(caplog: pytest.LogCaptureFixture, logger: str, text: str, at_least: int) -> None:
    deadline = time.monotonic() + 60
    while _lines(caplog, logger, text) < at_least:
        assert time.monotonic() < deadline, f"{logger} never logged {text!r} {at_least} times"
        time.sleep(0.05)


LOOPS = {  # each retrying loop's logger, and the words of its failure
    "monitor.consumer": "monitor: Redis unavailable",
    "monitor.alerts.notifier": "alert leader lease: Redis unavailable",
}


def test_an_outage_is_said_once_by_each_loop_and_its_end_once(
    own_redis: LocalRedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    settings = MonitorSettings(
        REDIS_URL=own_redis.url, DRIFTWATCH_READ_BLOCK_MS=50, alerts=AlertSettings(leader_ttl_s=0.6)
    )
    with caplog.at_level(logging.DEBUG, logger="monitor"), TestClient(create_app(settings)) as client:
        assert client.get("/readyz").status_code == 200
        own_redis.stop()
        for logger, text in LOOPS.items():
            _wait_for_lines(caplog, logger, text, RETRIES)  # retried, each retry logged at DEBUG...
        for logger, text in LOOPS.items():
            assert _lines(caplog, logger, text, logging.WARNING) == 1, logger  # ...and said once

        own_redis.start()
        for logger in LOOPS:
            _wait_for_lines(caplog, logger, "Redis answers again", 1)
        deadline = time.monotonic() + 30
        while client.get("/readyz").status_code != 200:
            assert time.monotonic() < deadline, "the monitor never became ready again"
            time.sleep(0.05)
        for logger, text in LOOPS.items():
            assert _lines(caplog, logger, text, logging.WARNING) == 1, logger
            assert _lines(caplog, logger, "Redis answers again") == 1, logger
