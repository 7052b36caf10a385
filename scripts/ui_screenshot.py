"""Make the README's screenshot of the web UI, and measure what the page weighs.

    .venv/bin/python scripts/ui_screenshot.py [--out docs/ui-model.png] [--model-dir DIR]

Runs the local stack (`driftwatch up`, its own redis-server, free ports),
sends `driftwatch simulate` traffic as a user would (two windows as served,
then two windows of `--scenario covariate-shift`, with feedback), opens the
model page in Debian's Chromium at 1280 px, opens the distribution of the
most shifted feature, and saves a full-page PNG. It prints the page weight
(first load) and the kB transferred per refresh, with and without changes.
Without --model-dir it trains the default model first (about a minute).
"""

from __future__ import annotations

import argparse
import io
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from rich.console import Console
from selenium.webdriver.common.by import By

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from driftwatch.cli.simulate import Scenario, run_simulation  # noqa: E402
from driftwatch.local_processes import free_port, wait_for_http  # noqa: E402
from tests.support.browser import chromium, wait_until  # noqa: E402

WINDOW = 300
DRIFTWATCH = Path(sys.executable).parent / "driftwatch"

TRANSFERRED = """
return performance.getEntriesByType('navigation').concat(performance.getEntriesByType('resource'))
  .map(e => [e.name, e.transferSize, e.encodedBodySize]);
"""


RESOURCES = "return performance.getEntriesByType('resource').map(e => [e.name, e.transferSize, e.encodedBodySize]);"


def _kilobytes(entries: list[list]) -> float:
    return sum(e[1] for e in entries) / 1000


def _simulate(scenario: Scenario, model_dir: Path, model_url: str, monitor_url: str, seed: int) -> None:
    status = run_simulation(scenario, 2 * WINDOW, model_dir, model_url, monitor_url, batch=100, seed=seed,
                            console=Console(file=io.StringIO()))
    if status != 0:
        raise SystemExit(f"simulate --scenario {scenario.value} failed ({status})")


def _one_refresh(driver) -> list[list]:  # type: ignore[no-untyped-def]
    before = driver.execute_script("return window.driftwatch.refreshes")
    driver.execute_script("performance.clearResourceTimings()")
    wait_until(lambda: driver.execute_script("return window.driftwatch.refreshes") >= before + 1, 20, "a refresh")
    return [e for e in driver.execute_script(RESOURCES) if "/ui/" not in e[0]]


def shoot(model_dir: Path, out: Path, workdir: Path) -> None:
    model_port, monitor_port = free_port(), free_port()
    model_url, monitor_url = f"http://127.0.0.1:{model_port}", f"http://127.0.0.1:{monitor_port}"
    env = {k: v for k, v in os.environ.items() if k != "REDIS_URL"} | {"OTEL_SDK_DISABLED": "true"}
    stack = subprocess.Popen(
        [str(DRIFTWATCH), "up", "--model-dir", str(model_dir), "--model-port", str(model_port),
         "--monitor-port", str(monitor_port), "--window-size", str(WINDOW)],
        cwd=workdir, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    driver = None
    try:
        wait_for_http(f"{model_url}/readyz", timeout_s=120, processes=[stack])
        wait_for_http(f"{monitor_url}/readyz", timeout_s=120, processes=[stack])
        _simulate(Scenario.none, model_dir, model_url, monitor_url, seed=1)
        _simulate(Scenario.covariate_shift, model_dir, model_url, monitor_url, seed=2)
        name = httpx.get(f"{model_url}/model").json()["name"]
        newest = httpx.get(f"{monitor_url}/drift").json()

        driver = chromium(1280, 900)
        driver.get(f"{monitor_url}/#/models/{name}")
        wait_until(lambda: driver.find_elements(By.CSS_SELECTOR, f'#heatmap button[data-window="{newest["window"]}"]'),
                   what="the heat map")
        wait_until(lambda: "Window #" in driver.find_element(By.ID, "confusion").text, what="the confusion matrix")
        first_load = driver.execute_script(TRANSFERRED)
        top = max((f for f in newest["features"] if f["drifted"]), key=lambda f: f["effect_size"])
        driver.find_element(By.CSS_SELECTOR, f'#heatmap button[data-key="{top["name"]}@{newest["window"]}"]').click()
        wait_until(lambda: driver.find_element(By.ID, "dist-chart").get_attribute("data-feature") == top["name"],
                   what="the distribution chart")
        unchanged = _one_refresh(driver)
        height = driver.execute_script("return document.documentElement.scrollHeight")
        driver.set_window_size(1280, height + 20)
        wait_until(lambda: driver.execute_script("return document.documentElement.scrollHeight") <= height + 20,
                   what="the resized page")
        out.parent.mkdir(parents=True, exist_ok=True)
        driver.save_screenshot(str(out))
        print(f"screenshot: {out} ({out.stat().st_size / 1000:.0f} kB, 1280 x {height} px)")
        print(f"first load: {len(first_load)} requests, {_kilobytes(first_load):.1f} kB transferred "
              f"({_kilobytes([e for e in first_load if '/ui/' in e[0] or e[0].endswith('/')]):.1f} kB page and "
              "assets, gzipped)")
        print(f"refresh, nothing changed: {len(unchanged)} requests, {_kilobytes(unchanged):.1f} kB")
        _simulate(Scenario.covariate_shift, model_dir, model_url, monitor_url, seed=3)
        changed = _one_refresh(driver)
        print(f"refresh after a new window and labels: {len(changed)} requests, {_kilobytes(changed):.1f} kB")
        for entry in sorted(changed, key=lambda e: -e[1]):
            print(f"  {entry[1] / 1000:6.1f} kB  {entry[0].split('/', 3)[-1]}")
    finally:
        if driver is not None:
            driver.quit()
        stack.send_signal(signal.SIGINT)
        stack.wait(timeout=60)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "ui-model.png")
    parser.add_argument("--model-dir", type=Path, help="A trained model directory (trained here if left out)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="driftwatch-screenshot-") as tmp:
        model_dir = args.model_dir
        if model_dir is None:
            model_dir = Path(tmp) / "model"
            started = time.monotonic()
            subprocess.run([str(DRIFTWATCH), "train", "--out", str(model_dir)], check=True,
                           env=os.environ | {"OTEL_SDK_DISABLED": "true"}, stdout=subprocess.DEVNULL)
            print(f"trained the default model in {time.monotonic() - started:.0f} s")
        shoot(model_dir.resolve(), args.out.resolve(), Path(tmp))


if __name__ == "__main__":
    main()
