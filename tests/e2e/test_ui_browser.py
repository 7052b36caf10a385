"""The web UI in a real browser (Debian's Chromium) against the running stack.

One module-scoped stack (``driftwatch up``) and one browser; the tests run in
file order: the empty model page first, then the page after
``driftwatch simulate --scenario covariate-shift``. A screenshot of the model
page is written to ``test-artifacts/ui/`` (gitignored).
"""

from __future__ import annotations

import io
import re

import httpx
import pytest
from rich.console import Console

pytest.importorskip("selenium", reason="selenium is in the dev extra: pip install -e '.[dev]'")

from selenium import webdriver
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys

from driftwatch.cli.simulate import SHIFTED_FEATURES, Scenario, run_simulation
from tests.e2e.conftest import STACK_WINDOW, Stack
from tests.support.browser import (
    ARTIFACTS,
    leaves_localhost,
    open_browser,
    requested_urls,
    wait_until,
)

pytestmark = pytest.mark.e2e


browser = pytest.fixture(scope="module", name="browser")(open_browser)


@pytest.fixture(scope="module")
def model_name(stack: Stack) -> str:
    return str(httpx.get(f"{stack.model_url}/model").json()["name"])


def refreshes(browser: webdriver.Chrome) -> int:
    return int(browser.execute_script("return window.driftwatch.refreshes"))


def test_model_page_without_windows_says_so(stack: Stack, browser: webdriver.Chrome, model_name: str) -> None:
    browser.get(f"{stack.monitor_url}/#/models/{model_name}")
    message = wait_until(lambda: browser.find_element(By.ID, "model-empty").is_displayed()
                         and browser.find_element(By.ID, "model-empty").text, what="the no-window message")
    assert "No window has been reported yet" in message
    assert f"0 / {STACK_WINDOW} predictions" in message


def test_after_covariate_shift_the_page_marks_exactly_the_shifted_features(
    stack: Stack, browser: webdriver.Chrome, model_name: str
) -> None:
    status = run_simulation(Scenario.covariate_shift, 2 * STACK_WINDOW, stack.model_dir, stack.model_url,
                            stack.monitor_url, batch=100, seed=0, console=Console(file=io.StringIO()))
    assert status == 0
    report = httpx.get(f"{stack.monitor_url}/drift").json()
    names = httpx.get(f"{stack.model_url}/model").json()["feature_names"]
    shifted = {names[i] for i in SHIFTED_FEATURES}

    # The overview lists the model as drifting.
    browser.get(f"{stack.monitor_url}/")
    row = wait_until(lambda: next((r for r in browser.find_elements(By.CSS_SELECTOR, "#overview tbody tr")
                                   if model_name in r.text and "drift" in r.text), None), what="the overview row")
    assert "▲ drift" in row.text

    browser.find_element(By.LINK_TEXT, model_name).click()
    newest = str(report["window"])
    cells = wait_until(lambda: browser.find_elements(By.CSS_SELECTOR, f'#heatmap button[data-window="{newest}"]'),
                       what="the heat map's newest column")
    assert len(cells) == len(names)
    marked = {c.get_attribute("data-feature") for c in cells if c.get_attribute("data-drifted") == "true"}
    assert marked == shifted == set(report["drifted_features"])
    assert all(c.text == "✱" for c in cells if c.get_attribute("data-feature") in shifted)
    # Sorted by effect size in the newest window (the default): the shifted features come first.
    rows = [th.text for th in browser.find_elements(By.CSS_SELECTOR, "#heatmap tbody th")]
    assert set(rows[: len(shifted)]) == shifted

    # Open a shifted feature's distribution; the statistics shown are the report's.
    feature = names[SHIFTED_FEATURES[0]]
    browser.find_element(By.CSS_SELECTOR, f'#heatmap button[data-key="{feature}@{newest}"]').click()
    wait_until(lambda: browser.find_element(By.ID, "dist-chart").get_attribute("data-feature") == feature,
               what="the distribution chart")
    assert browser.find_elements(By.CSS_SELECTOR, "#dist-chart canvas")
    stats = browser.find_element(By.ID, "dist-stats").text
    tested = next(f for f in report["features"] if f["name"] == feature)
    assert f"KS statistic D {tested['statistic']:.4g}" in stats
    assert "adjusted p-value" in stats and "✱ drifted" in stats

    # Keyboard: the opened cell holds the focus stop; arrows move it, Enter opens that cell.
    browser.find_element(By.CSS_SELECTOR, "#heatmap button.selected").send_keys(Keys.ARROW_DOWN)
    below = browser.switch_to.active_element
    assert below.get_attribute("data-window") == newest and below.get_attribute("data-feature") != feature
    other = below.get_attribute("data-feature")
    below.send_keys(Keys.ENTER)
    wait_until(lambda: browser.find_element(By.ID, "dist-chart").get_attribute("data-feature") == other,
               what="the distribution chart of the next feature")

    wait_until(lambda: "Window #" in browser.find_element(By.ID, "confusion").text, what="the confusion matrix")
    assert browser.find_elements(By.CSS_SELECTOR, "#confusion table.confusion td.diag")
    # The estimate names its method: the digits reference has labelled rows with features, so each
    # reported count window's estimate is agreement (monitor/agreement.py), in the newest window's
    # caption (/performance) and in each window's line of the timeline (/drift/timeline).
    own = httpx.get(f"{stack.monitor_url}/performance?windows=1").json()["windows"][0]
    method = own["estimate_method"]
    assert own["window"] == report["window"] and method in ("agreement", "agreement-capped")  # capped: at the bound
    caption = f"estimated {100 * own['estimated_accuracy']:.1f}% by {method} (95% interval"
    wait_until(lambda: caption in browser.find_element(By.ID, "confusion").text, what="the caption naming the method")
    lines = wait_until(lambda: [li.get_attribute("textContent") for li in
                                browser.find_elements(By.CSS_SELECTOR, "#timeline-text li")], what="the timeline text")
    assert lines and all(re.search(r" by agreement(-capped)?, label coverage", line) for line in lines), lines
    assert browser.find_elements(By.CSS_SELECTOR, "#rules tbody tr")
    (ARTIFACTS / "ui").mkdir(parents=True, exist_ok=True)
    browser.save_screenshot(str(ARTIFACTS / "ui" / "model-page.png"))

    # A laptop's width: the panels stack, nothing runs off the side of the page.
    browser.set_window_size(1024, 768)
    wait_until(lambda: browser.execute_script("return window.innerWidth") <= 1024, what="the narrower window")
    assert browser.execute_script("return document.documentElement.scrollWidth <= window.innerWidth")
    browser.save_screenshot(str(ARTIFACTS / "ui" / "model-page-1024.png"))
    browser.set_window_size(1280, 900)


def test_page_stays_on_127_0_0_1_and_logs_no_error(browser: webdriver.Chrome) -> None:
    urls = requested_urls(browser.get_log("performance"))
    assert urls, "no request seen in the DevTools log"
    assert [u for u in urls if leaves_localhost(u)] == []
    errors = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
    assert errors == []


def test_an_unchanged_refresh_costs_only_revalidations(browser: webdriver.Chrome) -> None:
    """Polling re-reads every route; with ETags, unchanged answers come back as bodiless 304s
    (the browser then reports the cached body's size apart from the few hundred bytes that moved)."""
    before = refreshes(browser)
    browser.execute_script("performance.clearResourceTimings()")
    wait_until(lambda: refreshes(browser) >= before + 1, timeout_s=15, what="a refresh")
    entries = browser.execute_script(
        "return performance.getEntriesByType('resource').map(e => [e.name, e.transferSize, e.encodedBodySize])")
    api = {name.split("/", 3)[-1]: (moved, body) for name, moved, body in entries if "/ui/" not in name}
    assert "drift/timeline?limit=40" in api, api
    moved, body = api["drift/timeline?limit=40"]
    assert body > 2 * moved, "the timeline's body was sent again"
    kilobytes = sum(moved for moved, _ in api.values()) / 1000
    print(f"unchanged refresh: {len(api)} requests, {kilobytes:.1f} kB transferred")
    assert kilobytes < 0.5 * len(api)
