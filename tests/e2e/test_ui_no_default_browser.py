"""The web UI in Chromium on a monitor with no default model (``DRIFTWATCH_NO_DEFAULT_MODEL``, as
``driftwatch up --ingest-only`` runs it): the overview says how to get a model watched while none
is, then lists the registered model alone; its page reads under ``/models/<name>``, never the root.

Only the monitor runs (``driftwatch monitor``, a real process on a real redis-server); the model is
registered and its events put on its streams the way the registry and the model service do.
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
from selenium.webdriver.support.ui import Select

from driftwatch.local_processes import LocalRedisServer
from shared.keys import Keys
from shared.registry import register_model
from tests.integration.monitor.helpers import publish_predictions, small_model
from tests.support.browser import leaves_localhost, open_browser, requested_urls, wait_until
from tests.support.monitor_process import running_monitor

pytestmark = pytest.mark.e2e

WINDOW = 200
MODEL = "churn"


async def _fill(url: str) -> None:
    client = aioredis.Redis.from_url(url)
    metadata, reference = small_model(MODEL, "1")
    await register_model(client, Keys(MODEL), metadata, reference)
    rng = np.random.default_rng(7)
    x = rng.normal(size=(WINDOW, 4)).astype(np.float32)
    await publish_predictions(client, Keys(MODEL), x, rng.integers(0, 2, WINDOW), n_classes=2)
    await client.aclose()


@pytest.fixture(scope="module")
def redis_url() -> Iterator[str]:
    with LocalRedisServer() as server:
        yield server.url


@pytest.fixture(scope="module")
def monitor_url(redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with running_monitor(redis_url, tmp_path_factory.mktemp("monitor"), DRIFTWATCH_NO_DEFAULT_MODEL="true",
                         DRIFTWATCH_WINDOW_SIZE=str(WINDOW), DRIFTWATCH_DISCOVERY_INTERVAL_S="0.5") as url:
        yield url


browser = pytest.fixture(scope="module", name="browser")(open_browser)


def test_no_model_yet_then_the_registered_one_alone(
    monitor_url: str, redis_url: str, browser: webdriver.Chrome
) -> None:
    browser.get(f"{monitor_url}/")
    empty = wait_until(lambda: browser.find_element(By.ID, "overview-empty").text, what="the empty overview")
    assert "register one" in empty
    assert [o.text for o in Select(browser.find_element(By.ID, "model-picker")).options] == ["All models"]

    asyncio.run(_fill(redis_url))
    wait_until(lambda: httpx.get(f"{monitor_url}/models/{MODEL}/drift").json().get("window") == 0,
               timeout_s=90, what="churn's first window")
    rows = wait_until(lambda: [r.text for r in browser.find_elements(By.CSS_SELECTOR, "#overview tbody tr")],
                      what="a row in the overview")
    assert len(rows) == 1 and rows[0].startswith(MODEL)
    assert not browser.find_element(By.ID, "overview-empty").is_displayed()
    picker = Select(browser.find_element(By.ID, "model-picker"))
    assert [o.text for o in picker.options] == ["All models", MODEL]

    picker.select_by_visible_text(MODEL)
    wait_until(lambda: browser.find_element(By.ID, "model-name").text == MODEL, what="the churn page")
    cells = wait_until(lambda: browser.find_elements(By.CSS_SELECTOR, '#heatmap button[data-window="0"]'),
                       what="churn's heat map")
    assert len(cells) == 4
    cells[0].click()  # its distributions, read under its own prefix
    wait_until(lambda: browser.find_element(By.ID, "dist-stats").is_displayed(), what="the distribution")


def test_every_read_is_under_the_models_prefix_and_no_error_is_logged(browser: webdriver.Chrome) -> None:
    every = requested_urls(browser.get_log("performance"))
    assert [u for u in every if leaves_localhost(u)] == []
    urls = [u for u in every if u.startswith("http")]
    paths = [u.split("//", 1)[1].split("/", 1)[1].split("?")[0] for u in urls]
    reads = [p for p in paths if p.startswith(("drift", "performance", "alerts", "models/"))]
    assert any(p == f"models/{MODEL}/drift/timeline" for p in reads), paths
    assert [p for p in reads if not p.startswith(f"models/{MODEL}/")] == []  # nothing at the (404) root
    assert [e for e in browser.get_log("browser") if e["level"] == "SEVERE"] == []
