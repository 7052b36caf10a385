"""Debian's Chromium driven by Selenium through Debian's chromedriver: nothing downloaded.

Selenium is given both binaries explicitly, so Selenium Manager never fetches a
driver or a browser. The browser keeps its console and DevTools network events
(``goog:loggingPrefs``), which the UI tests read to prove that the page logged
no error and sent no request beyond 127.0.0.1.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"

T = TypeVar("T")


def missing_browser() -> str | None:
    """Why the browser cannot run here, or None (scripts/install-system-packages.sh installs both)."""
    for binary in (CHROMIUM, CHROMEDRIVER):
        if not binary.exists():
            return f"{binary} is missing: run scripts/install-system-packages.sh"
    return None


def open_browser() -> Iterator[webdriver.Chrome]:
    """A headless Chromium for one test module (a fixture's body), skipped with the reason
    where it cannot run here, and quit afterwards."""
    reason = missing_browser()
    if reason:
        pytest.skip(reason)
    driver = chromium()
    try:
        yield driver
    finally:
        driver.quit()


def chromium(width: int = 1280, height: int = 900) -> webdriver.Chrome:
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for argument in (
        "--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu", f"--window-size={width},{height}",
        # No traffic of the browser's own (updates, sync, field trials): only the page's requests.
        "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--disable-default-apps", "--disable-extensions", "--hide-scrollbars", "--force-color-profile=srgb",
    ):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    return webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)


def wait_until(check: Callable[[], T | None], timeout_s: float = 20.0, what: str = "condition") -> T:
    """Poll ``check`` until it returns something truthy (no fixed sleeps)."""
    deadline = time.monotonic() + timeout_s
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        try:
            result = check()
            if result:
                return result
        except Exception as exc:  # the DOM may be mid-render: try again
            last_error = exc
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}" + (f" (last error: {last_error})" if last_error else ""))


def requested_urls(performance_log: list[dict[str, Any]]) -> list[str]:
    """Every URL the page asked for, from the DevTools ``Network.requestWillBeSent`` events."""
    urls = []
    for entry in performance_log:
        message = json.loads(entry["message"])["message"]
        if message["method"] == "Network.requestWillBeSent":
            urls.append(message["params"]["request"]["url"])
    return urls


def leaves_localhost(url: str) -> bool:
    parts = urlsplit(url)
    if parts.scheme in ("data", "blob", "about"):
        return False
    return parts.hostname not in ("127.0.0.1",)
