"""The web UI in Chromium for a model with two versions: the model page shows the current
version's timeline, and only that version's alert transitions on it.

Window numbers are per version. After a model was retrained (the old version still
registered, its drift alerts fired at its windows 0 and 1), the page drew the old
version's transitions on the new version's timeline at the windows of the same numbers,
and listed them under the chart as if they were the new version's.

Only the monitor runs (``driftwatch monitor``, a real process on a real redis-server).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import httpx
import numpy as np
import pytest
import redis.asyncio as aioredis

pytest.importorskip("selenium", reason="selenium is in the dev extra: pip install -e '.[dev]'")

from selenium import webdriver
from selenium.webdriver.common.by import By

from driftwatch.local_processes import LocalRedisServer
from shared.keys import Keys
from shared.registry import register_model
from tests.integration.monitor.helpers import publish_predictions, small_model
from tests.support.browser import open_browser, wait_until
from tests.support.monitor_process import running_monitor

pytestmark = pytest.mark.e2e

WINDOW = 100
MODEL = "churn"


async def _register(url: str, version: str, seed: int) -> None:
    client = aioredis.Redis.from_url(url)
    metadata, reference = small_model(MODEL, version, seed=seed)
    await register_model(client, Keys(MODEL), metadata, reference)
    await client.aclose()


async def _publish(url: str, version: str, shift: float, seed: int) -> None:
    client = aioredis.Redis.from_url(url)
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(2 * WINDOW, 4)).astype(np.float32)
    x[:, 0] += shift
    await publish_predictions(client, Keys(MODEL), x, rng.integers(0, 2, 2 * WINDOW), n_classes=2, version=version)
    await client.aclose()


def _fired(url: str, version: str) -> bool:
    history = httpx.get(f"{url}/models/{MODEL}/alerts/history").json()["transitions"]
    return any(
        t["alertname"] == "DatasetDrift" and t["to_state"] == "firing" and t["labels"].get("model_version") == version
        for t in history
    )


@pytest.fixture(scope="module")
def monitor_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with LocalRedisServer() as server:
        asyncio.run(_register(server.url, "1", seed=1))
        with running_monitor(
            server.url,
            tmp_path_factory.mktemp("monitor"),
            DRIFTWATCH_NO_DEFAULT_MODEL="true",
            DRIFTWATCH_WINDOW_SIZE=str(WINDOW),
            DRIFTWATCH_DISCOVERY_INTERVAL_S="0.2",
        ) as url:
            wait_until(
                lambda: httpx.get(f"{url}/models/{MODEL}/drift/window").status_code == 200,
                timeout_s=30,
                what="v1 watched",
            )
            asyncio.run(_publish(server.url, "1", shift=3.0, seed=5))  # v1 drifts: windows 0 and 1
            wait_until(lambda: _fired(url, "1"), timeout_s=90, what="v1's DatasetDrift firing")
            asyncio.run(_register(server.url, "2", seed=2))  # retrained: v2 is current, v1 stays
            asyncio.run(_publish(server.url, "2", shift=0.0, seed=6))  # v2: windows 0 and 1, no drift
            wait_until(
                lambda: (
                    httpx.get(f"{url}/models/{MODEL}/drift").json().get("model_version") == "2"
                    and httpx.get(f"{url}/models/{MODEL}/drift").json().get("window") == 1
                ),
                timeout_s=90,
                what="v2's second window",
            )
            yield url


browser = pytest.fixture(scope="module", name="browser")(open_browser)


def test_the_model_page_shows_only_the_current_versions_alert_transitions(
    monitor_url: str, browser: webdriver.Chrome
) -> None:
    browser.get(f"{monitor_url}/#/models/{MODEL}")
    wait_until(lambda: browser.find_elements(By.CSS_SELECTOR, '#heatmap button[data-window="1"]'), what="v2's heat map")
    listed = browser.find_element(By.ID, "timeline-alerts").text
    assert "DatasetDrift → firing" not in listed, listed  # v1's, at its window 1
    history = wait_until(lambda: browser.find_element(By.ID, "alert-history").text or None, what="alert history")
    assert "DatasetDrift" in history and "(v1)" in history, history  # still listed, with its version
