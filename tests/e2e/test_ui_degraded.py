"""The web UI in Chromium when reads need an API key, and while Redis is away.

Only the monitor runs here (`driftwatch monitor`, no model service): the page
must ask for the key, keep it for the tab, and say plainly when Redis stops
answering, then recover on its own when Redis is back.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("selenium", reason="selenium is in the dev extra: pip install -e '.[dev]'")

from selenium import webdriver
from selenium.webdriver.common.by import By

from driftwatch.local_processes import LocalRedisServer, free_port, wait_for_http
from tests.support.browser import open_browser, wait_until

pytestmark = pytest.mark.e2e

KEY = "ui-test-key"


@pytest.fixture(scope="module")
def redis_server() -> Iterator[LocalRedisServer]:
    with LocalRedisServer() as server:
        yield server


@pytest.fixture(scope="module")
def monitor_url(redis_server: LocalRedisServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    port = free_port()
    env = os.environ | {
        "REDIS_URL": redis_server.url, "DRIFTWATCH_PORT": str(port), "DRIFTWATCH_API_KEY": KEY,
        "DRIFTWATCH_PROTECT_READS": "true", "OTEL_SDK_DISABLED": "true",
    }
    process = subprocess.Popen([str(Path(sys.executable).parent / "driftwatch"), "monitor", "--log-level", "warning"],
                               env=env, cwd=tmp_path_factory.mktemp("monitor"))
    try:
        wait_for_http(f"http://127.0.0.1:{port}/livez", timeout_s=60, processes=[process])
        yield f"http://127.0.0.1:{port}"
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(timeout=30)


browser = pytest.fixture(scope="module", name="browser")(open_browser)


def test_the_page_asks_for_the_api_key_and_keeps_it_for_the_tab(monitor_url: str, browser: webdriver.Chrome) -> None:
    browser.get(f"{monitor_url}/")
    form = wait_until(lambda: browser.find_element(By.ID, "key-form").is_displayed()
                      and browser.find_element(By.ID, "key-form"), what="the API key form")
    assert browser.find_elements(By.CSS_SELECTOR, "#overview tbody tr") == []
    form.find_element(By.ID, "api-key").send_keys("wrong")
    form.find_element(By.CSS_SELECTOR, "button").click()
    wait_until(lambda: "refused" in browser.find_element(By.ID, "key-form").text, what="the refusal")
    form.find_element(By.ID, "api-key").send_keys(KEY)
    form.find_element(By.CSS_SELECTOR, "button").click()
    row = wait_until(lambda: browser.find_elements(By.CSS_SELECTOR, "#overview tbody tr"), what="the overview")
    assert "no windows yet" in row[0].text
    assert not browser.find_element(By.ID, "key-form").is_displayed()
    assert browser.execute_script("return sessionStorage.getItem('driftwatch.apiKey')") == KEY


def test_the_page_says_when_redis_is_away_and_recovers(
    monitor_url: str, browser: webdriver.Chrome, redis_server: LocalRedisServer
) -> None:
    banner = browser.find_element(By.ID, "banner")
    assert not banner.is_displayed()
    redis_server.stop()
    try:
        wait_until(lambda: banner.is_displayed() and "cannot reach Redis" in banner.text, timeout_s=20,
                   what="the Redis banner")
        assert "✕ error" in browser.find_element(By.CSS_SELECTOR, "#overview tbody tr").text
    finally:
        redis_server.start()
    wait_until(lambda: not banner.is_displayed(), timeout_s=30, what="the banner to go")
    errors = [e for e in browser.get_log("browser") if e["level"] == "SEVERE" and "/overview" not in e["message"]]
    assert errors == []
