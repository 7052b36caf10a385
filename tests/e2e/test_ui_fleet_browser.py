"""The web UI in Chromium with two models on one monitor: the overview lists both, the model
picker switches between their pages, and each page is that model's (a shift on one shows on it alone).

Only the monitor runs (``driftwatch monitor``, a real process on a real redis-server):
the two models are registered and their events put on their streams the way the
registry and the model services do.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
import redis.asyncio as aioredis

pytest.importorskip("selenium", reason="selenium is in the dev extra: pip install -e '.[dev]'")

from selenium import webdriver
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.ui import Select

from driftwatch.cli.simulate import Scenario, make_traffic
from driftwatch.local_processes import LocalRedisServer
from shared.keys import Keys
from shared.registry import register_model
from tests.integration.monitor.helpers import publish_predictions, register, small_model
from tests.support.browser import ARTIFACTS, leaves_localhost, open_browser, requested_urls, wait_until
from tests.support.monitor_process import running_monitor

pytestmark = pytest.mark.e2e

WINDOW = 200
DIGITS = "digits-mlp"
OTHER = "churn"


async def _fill(url: str, model_dir: Path) -> None:
    client = aioredis.Redis.from_url(url)
    await register(client, model_dir)
    metadata, reference = small_model(OTHER, "1")
    await register_model(client, Keys(OTHER), metadata, reference)
    with np.load(model_dir / "holdout.npz") as holdout:
        x, y = holdout["features"], holdout["labels"]
    traffic = make_traffic(Scenario.none, x, y, 2 * WINDOW, seed=0, window=WINDOW)
    await publish_predictions(client, Keys(DIGITS), traffic.features, traffic.labels)
    rng = np.random.default_rng(5)
    shifted = rng.normal(size=(2 * WINDOW, 4)).astype(np.float32)
    shifted[:, 0] += 3.0  # feature "a" only
    await publish_predictions(client, Keys(OTHER), shifted, rng.integers(0, 2, 2 * WINDOW), n_classes=2)
    await client.aclose()


@pytest.fixture(scope="module")
def monitor_url(model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with LocalRedisServer() as server:
        asyncio.run(_fill(server.url, model_dir))
        with running_monitor(server.url, tmp_path_factory.mktemp("monitor"), DRIFTWATCH_MODEL_NAME=DIGITS,
                             DRIFTWATCH_WINDOW_SIZE=str(WINDOW)) as url:
            wait_until(lambda: all(httpx.get(f"{url}{p}").json().get("window") == 1
                                   for p in ("/drift", f"/models/{OTHER}/drift")), timeout_s=90,
                       what="both models' second window")
            yield url


browser = pytest.fixture(scope="module", name="browser")(open_browser)


def heat_cells(browser: webdriver.Chrome, window: int) -> list[WebElement]:
    return browser.find_elements(By.CSS_SELECTOR, f'#heatmap button[data-window="{window}"]')


def test_the_picker_switches_between_two_models_each_page_its_own(monitor_url: str, browser: webdriver.Chrome) -> None:
    browser.get(f"{monitor_url}/")

    def overview_rows() -> list[str] | None:
        rows = [r.text for r in browser.find_elements(By.CSS_SELECTOR, "#overview tbody tr")]
        return rows if len(rows) == 2 else None

    rows = wait_until(overview_rows, what="two rows in the overview")
    assert rows[0].startswith(DIGITS) and rows[1].startswith(OTHER)
    picker = Select(browser.find_element(By.ID, "model-picker"))
    assert [o.text for o in picker.options] == ["All models", DIGITS, OTHER]

    picker.select_by_visible_text(OTHER)
    wait_until(lambda: browser.current_url.endswith(f"#/models/{OTHER}"), what="the churn page's address")
    wait_until(lambda: browser.find_element(By.ID, "model-name").text == OTHER, what="the churn page")
    cells = wait_until(lambda: heat_cells(browser, 1) if len(heat_cells(browser, 1)) == 4 else None,
                       what="churn's heat map: 4 features")
    drifted = {c.get_attribute("data-feature") for c in cells if c.get_attribute("data-drifted") == "true"}
    assert drifted == {"a"}
    assert "drift" in browser.find_element(By.ID, "model-status").text
    (ARTIFACTS / "ui").mkdir(parents=True, exist_ok=True)
    browser.save_screenshot(str(ARTIFACTS / "ui" / "fleet-churn.png"))

    Select(browser.find_element(By.ID, "model-picker")).select_by_visible_text(DIGITS)
    wait_until(lambda: browser.find_element(By.ID, "model-name").text == DIGITS, what="the digits page")
    cells = wait_until(lambda: heat_cells(browser, 1) if len(heat_cells(browser, 1)) == 64 else None,
                       what="digits' heat map: 64 features")
    assert [c for c in cells if c.get_attribute("data-drifted") == "true"] == []
    assert Select(browser.find_element(By.ID, "model-picker")).first_selected_option.text == DIGITS

    Select(browser.find_element(By.ID, "model-picker")).select_by_visible_text("All models")
    wait_until(lambda: browser.find_element(By.ID, "overview-view").is_displayed(), what="the overview again")


def test_the_two_model_pages_stay_on_127_0_0_1_and_log_no_error(browser: webdriver.Chrome) -> None:
    urls = requested_urls(browser.get_log("performance"))
    assert any(f"/models/{OTHER}/drift/timeline" in u for u in urls), urls
    assert any(u.split("?")[0].endswith("/drift/timeline") and "/models/" not in u for u in urls), urls
    assert [u for u in urls if leaves_localhost(u)] == []
    assert [e for e in browser.get_log("browser") if e["level"] == "SEVERE"] == []
