"""The web UI in Chromium says why a model has no label-free accuracy estimate, where the
estimate would be: the model page's latest-window caption, a note under the timeline chart and
each window's line of the timeline's text, and the overview's row (from /overview's
``estimate_unavailable``); a model with an estimate still shows it there.

Only the monitor runs (``driftwatch monitor``, a real process on a real redis-server); the two
models are registered and their predictions put on their streams the way the registry and the
model service do. "churn" logs probabilities (DoC estimates its windows); "churn-bare" logs none
and its reference has no labelled rows' features, so neither DoC nor agreement applies and
/performance's ``estimate_unavailable`` says so.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Iterator

import httpx
import numpy as np
import pytest
import redis.asyncio as aioredis

pytest.importorskip("selenium", reason="selenium is in the dev extra: pip install -e '.[dev]'")

from selenium import webdriver
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webelement import WebElement

from driftwatch.local_processes import LocalRedisServer
from monitor.calibrations import NEITHER_METHOD
from shared.events import encode_predictions
from shared.ids import new_prediction_ids
from shared.keys import Keys
from shared.registry import register_model
from tests.integration.monitor.helpers import publish_predictions, small_model
from tests.support.browser import ARTIFACTS, open_browser, wait_until
from tests.support.monitor_process import running_monitor

pytestmark = pytest.mark.e2e

WINDOW = 200
WITH_ESTIMATE = "churn"
WITHOUT = "churn-bare"


async def _fill(url: str) -> None:
    client = aioredis.Redis.from_url(url)
    rng = np.random.default_rng(11)
    metadata, reference = small_model(WITH_ESTIMATE, "1")
    await register_model(client, Keys(WITH_ESTIMATE), metadata, reference)
    x = rng.normal(size=(2 * WINDOW, 4)).astype(np.float32)
    await publish_predictions(client, Keys(WITH_ESTIMATE), x, rng.integers(0, 2, 2 * WINDOW), n_classes=2)

    metadata, reference = small_model(WITHOUT, "1", seed=2)
    metadata = metadata.model_copy(update={"has_probabilities": False})
    no_probabilities = np.zeros((len(reference.predicted_classes), 0), np.float32)
    reference = dataclasses.replace(reference, probabilities=no_probabilities)
    keys = Keys(WITHOUT, "1")
    await register_model(client, keys, metadata, reference)
    x = rng.normal(size=(2 * WINDOW, 4)).astype(np.float32)
    entries = encode_predictions(new_prediction_ids(len(x)), int(time.time() * 1000), WITHOUT, "1", x,
                                 rng.integers(0, 2, len(x)), np.zeros((len(x), 0), np.float32))
    async with client.pipeline(transaction=False) as pipe:
        for entry in entries:
            pipe.xadd(keys.predictions, entry)
        await pipe.execute()
    await client.aclose()


@pytest.fixture(scope="module")
def monitor_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with LocalRedisServer() as server:
        asyncio.run(_fill(server.url))
        with running_monitor(server.url, tmp_path_factory.mktemp("monitor"), DRIFTWATCH_NO_DEFAULT_MODEL="true",
                             DRIFTWATCH_WINDOW_SIZE=str(WINDOW), DRIFTWATCH_DISCOVERY_INTERVAL_S="0.5") as url:
            wait_until(lambda: all(httpx.get(f"{url}/models/{m}/drift").json().get("window") == 1
                                   for m in (WITH_ESTIMATE, WITHOUT)), timeout_s=90, what="both models' second window")
            yield url


browser = pytest.fixture(scope="module", name="browser")(open_browser)


def _open(browser: webdriver.Chrome, monitor_url: str, model: str) -> str:
    """The model's page, once its latest window's caption is drawn; that caption's text."""
    browser.get(f"{monitor_url}/#/models/{model}")
    wait_until(lambda: browser.find_element(By.ID, "model-name").text == model, what=f"the {model} page")
    return wait_until(lambda: browser.find_element(By.ID, "confusion").text if "Window #1" in
                      browser.find_element(By.ID, "confusion").text else None, what=f"{model}'s caption")


def _timeline_lines(browser: webdriver.Chrome) -> list[str]:
    return wait_until(lambda: [li.get_attribute("textContent") for li in
                               browser.find_elements(By.CSS_SELECTOR, "#timeline-text li")], what="the timeline text")


def test_a_model_without_an_estimate_says_why_where_the_estimate_would_be(
    monitor_url: str, browser: webdriver.Chrome
) -> None:
    performance = httpx.get(f"{monitor_url}/models/{WITHOUT}/performance?windows=1").json()
    assert performance["estimate_unavailable"] == NEITHER_METHOD
    assert performance["windows"][0]["estimated_accuracy"] is None

    caption = _open(browser, monitor_url, WITHOUT)
    assert f"no estimated accuracy ({NEITHER_METHOD})" in caption, caption
    note = wait_until(lambda: browser.find_element(By.ID, "timeline-estimate").text, what="the timeline's note")
    assert note == f"No estimated accuracy for 2 of these 2 windows: {NEITHER_METHOD}."
    lines = _timeline_lines(browser)
    assert len(lines) == 2 and all(f", no estimated accuracy ({NEITHER_METHOD}), label coverage" in x for x in lines)
    (ARTIFACTS / "ui").mkdir(parents=True, exist_ok=True)
    browser.save_screenshot(str(ARTIFACTS / "ui" / "estimate-unavailable.png"))


def test_a_model_with_an_estimate_still_shows_it_and_no_reason(monitor_url: str, browser: webdriver.Chrome) -> None:
    performance = httpx.get(f"{monitor_url}/models/{WITH_ESTIMATE}/performance?windows=1").json()
    newest = performance["windows"][0]
    assert newest["window"] == 1 and newest["estimated_accuracy"] is not None and newest["estimate_method"]

    caption = _open(browser, monitor_url, WITH_ESTIMATE)
    shown = f"estimated {100 * newest['estimated_accuracy']:.1f}% by {newest['estimate_method']} (95% interval"
    assert shown in caption and "no estimated accuracy" not in caption, caption
    assert not browser.find_element(By.ID, "timeline-estimate").is_displayed()
    lines = _timeline_lines(browser)
    assert len(lines) == 2 and not [x for x in lines if "no estimated accuracy" in x], lines
    assert [e for e in browser.get_log("browser") if e["level"] == "SEVERE"] == []


def _overview(monitor_url: str) -> dict[str, dict]:
    return {m["name"]: m for m in httpx.get(f"{monitor_url}/overview").json()["models"]}


def test_overview_gives_the_reason_only_for_the_model_without_an_estimate(monitor_url: str) -> None:
    models = _overview(monitor_url)  # the fixture waited for both models' window 1
    assert {name: m["last_window"] for name, m in models.items()} == {WITH_ESTIMATE: 1, WITHOUT: 1}
    assert models[WITHOUT]["estimated_accuracy"] is None
    assert models[WITHOUT]["estimate_unavailable"] == NEITHER_METHOD
    newest = httpx.get(f"{monitor_url}/models/{WITH_ESTIMATE}/performance?windows=1").json()["windows"][0]
    assert models[WITH_ESTIMATE]["estimated_accuracy"] == newest["estimated_accuracy"] is not None
    assert models[WITH_ESTIMATE]["estimate_unavailable"] is None


def test_the_overview_row_says_why_the_estimate_is_blank(monitor_url: str, browser: webdriver.Chrome) -> None:
    newest = httpx.get(f"{monitor_url}/models/{WITH_ESTIMATE}/performance?windows=1").json()["windows"][0]
    browser.get(f"{monitor_url}/")
    column = [th.text for th in browser.find_elements(By.CSS_SELECTOR, "#overview thead th")].index(
        "Estimated accuracy")

    def cells() -> dict[str, WebElement] | None:
        rows = browser.find_elements(By.CSS_SELECTOR, "#overview tbody tr")
        found = {r.find_element(By.CSS_SELECTOR, "th a").text: r.find_elements(By.CSS_SELECTOR, "th, td")[column]
                 for r in rows}
        return found if set(found) == {WITH_ESTIMATE, WITHOUT} else None

    cell = wait_until(cells, what="both models' rows in the overview")
    blank = cell[WITHOUT]
    assert blank.text.splitlines() == ["\u2013", NEITHER_METHOD], blank.text
    assert blank.get_attribute("title") == f"No estimated accuracy: {NEITHER_METHOD}"
    shown = cell[WITH_ESTIMATE]
    assert shown.text == f"{100 * newest['estimated_accuracy']:.1f}%" and not shown.get_attribute("title")
    (ARTIFACTS / "ui").mkdir(parents=True, exist_ok=True)
    browser.save_screenshot(str(ARTIFACTS / "ui" / "overview-estimate-unavailable.png"))
    assert [e for e in browser.get_log("browser") if e["level"] == "SEVERE"] == []
