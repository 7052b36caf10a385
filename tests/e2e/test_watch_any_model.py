"""Issue 15's proof: four models of four kinds, all at once on ONE monitor, every part a real process.

- (a) ``breast-cancer``: the scikit-learn example app (examples/sklearn_app, uvicorn, its own process),
  registered with ``driftwatch register --monitor-url``, logging through ``driftwatch.Client``;
- (b) ``loans``: registered from a CSV the test writes (``driftwatch register --monitor-url``; string
  class labels, missing scores), logging over raw HTTP to ``POST /models/loans/predictions`` with
  ``null`` features;
- (c) ``iris-kserve``: registered with ``PUT /models/{name}/versions/{v}`` (integer labels, no
  probabilities), fed KServe inference-logger CloudEvents (V1 and V2, request and response halves in
  either order) that the test posts to ``/kserve``;
- (d) ``digits-mlp``: the built-in digits model behind ``driftwatch serve --model-dir``, ``/predict``.

(a)-(c) log through one ingest-only model service (``driftwatch serve --ingest-only``), (d) through
its own; all share one redis-server and one ``driftwatch monitor`` (windows of 200, alpha 1e-4 so no
unshifted window of any model may false-alarm). The monitor is SIGKILLed while every model's traffic
flows and started again. Then, model by model: every accepted prediction is counted once (the
monitor's count, its join state and the stream hold exactly the accepted ids), every label once,
accuracy and the confusion matrix are those of the labels sent, every window is reported, and the one
shift applied (two features of ``loans``, its last window) flags exactly that window of that model
and exactly those features; every other report says ``ok``.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import redis

from driftwatch.local_processes import LocalRedisServer, free_port, wait_for_http
from shared.api_auth import API_KEY_HEADER
from shared.keys import CONSUMER_GROUP, Keys
from shared.model_metadata import ModelMetadata
from tests.e2e.proof_feeds import (
    IRIS_FEATURES,
    LOANS_CLASSES,
    LOANS_MISSING,
    LOANS_SHIFTED,
    AppFeed,
    DigitsFeed,
    Feed,
    Gates,
    KserveFeed,
    LoggedFeed,
    iris_registration,
    write_loans_reference,
)
from tests.fault.procs import Service, start, stream_ids, wait_live

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(900)]

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "sklearn_app"
WINDOW = 200
API_KEY = "proof-key"
ROWS = 4 * WINDOW  # per model; loans has one more window, shifted
FIRST = 300  # rows each feed sends before the monitor is killed (window 0 of every model is ingested first)
SECOND_CAP = 700  # rows a feed may reach while the test kills the monitor; the rest after the restart
WAIT_S = 300.0


def _wait(check: Callable[[], bool], what: str, processes: tuple[Service, ...] = (), timeout_s: float = WAIT_S) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        for service in processes:
            assert service.process.poll() is None, f"{service.log.stem} exited:\n{service.tail()}"
        assert time.monotonic() < deadline, f"{what}: not within {timeout_s:.0f} s"
        time.sleep(0.2)


@dataclass
class Fleet:
    redis: redis.Redis
    redis_url: str
    ingest_url: str
    digits_url: str
    monitor: Service
    workdir: Path
    env: dict[str, str]

    def start_monitor(self) -> Service:
        self.monitor = start("monitor", self.env, self.workdir, "monitor")
        return self.monitor


def _cli(*args: str, env: dict[str, str], cwd: Path = ROOT) -> None:
    done = subprocess.run([sys.executable, "-m", "driftwatch.cli", *args], env=env, cwd=cwd, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]


@pytest.fixture
def fleet(model_dir: Path, tmp_path: Path) -> Iterator[Fleet]:
    with LocalRedisServer() as server:
        env = {"REDIS_URL": server.url, "DRIFTWATCH_API_KEY": API_KEY, "DRIFTWATCH_PROTECT_KSERVE": "false",
               "DRIFTWATCH_SPILL_DIR": str(tmp_path / "spill"), "DRIFTWATCH_WINDOW_SIZE": str(WINDOW),
               "DRIFTWATCH_ALPHA": "1e-4", "DRIFTWATCH_CONSUMER_NAME": "solo", "DRIFTWATCH_CLAIM_IDLE_MS": "1000",
               "DRIFTWATCH_DISCOVERY_INTERVAL_S": "0.5", "DRIFTWATCH_READ_COUNT": "50"}
        monitor = start("monitor", env, tmp_path, "monitor")
        ingest = start("serve", env, tmp_path, "ingest", "--ingest-only")
        digits = start("serve", {**env, "DRIFTWATCH_SPILL_DIR": str(tmp_path / "spill-digits")}, tmp_path, "digits",
                       "--model-dir", str(model_dir))
        services = [monitor, ingest, digits]
        client = redis.Redis.from_url(server.url)
        fleet = Fleet(client, server.url, ingest.url, digits.url, monitor, tmp_path, env)
        try:
            for service in services:
                wait_live(service, timeout_s=120)
                wait_for_http(f"{service.url}/readyz", timeout_s=120, processes=[service.process])
            yield fleet
        finally:
            for service in (fleet.monitor, ingest, digits):
                if service.process.poll() is None:
                    service.signal(signal.SIGTERM)
            for service in (fleet.monitor, ingest, digits):
                try:
                    service.wait(60)
                except subprocess.TimeoutExpired:
                    service.stop()
            client.close()


def _register_everything(fleet: Fleet) -> None:
    env = {**os.environ, "OTEL_SDK_DISABLED": "true", "DRIFTWATCH_API_KEY": API_KEY}
    env.pop("REDIS_URL", None)  # through the monitor only
    monitor = fleet.monitor.url
    reference = fleet.workdir / "breast-cancer.csv"
    subprocess.run([sys.executable, "model.py", str(reference)], cwd=EXAMPLE, env=env, check=True, timeout=300)
    _cli("register", "--name", "breast-cancer", "--version", "1", "--reference", str(reference),
         "--prediction-column", "prediction", "--probability-columns", "p_malignant,p_benign",
         "--label-column", "label", "--class-names", "malignant,benign", "--monitor-url", monitor, env=env)
    loans = fleet.workdir / "loans.csv"
    write_loans_reference(loans)
    _cli("register", "--name", "loans", "--version", "1", "--reference", str(loans), "--prediction-column", "decision",
         "--probability-columns", ",".join(f"p_{c}" for c in LOANS_CLASSES), "--label-column", "outcome",
         "--monitor-url", monitor, env=env)
    put = httpx.put(f"{monitor}/models/iris-kserve/versions/1", json=iris_registration(),
                    headers={API_KEY_HEADER: API_KEY}, timeout=120)
    assert put.status_code == 201, put.text[:2000]

    listed = httpx.get(f"{monitor}/models", timeout=30).json()["models"]
    assert {m["name"] for m in listed} >= {"breast-cancer", "loans", "iris-kserve", "digits-mlp"}, listed
    loans_meta = _metadata(monitor, "loans")
    assert (loans_meta["label_kind"], loans_meta["class_names"]) == ("string", LOANS_CLASSES)
    iris_meta = _metadata(monitor, "iris-kserve")
    assert (iris_meta["label_kind"], iris_meta["class_names"], iris_meta["has_probabilities"]) == (
        "integer", ["0", "1", "2"], False)


def _metadata(monitor: str, name: str) -> dict[str, Any]:
    detail = httpx.get(f"{monitor}/models/{name}", timeout=30).json()
    return dict(detail["versions"][-1]["metadata"])


def _start_app(fleet: Fleet) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    env = {**os.environ, "OTEL_SDK_DISABLED": "true", "DRIFTWATCH_URL": fleet.ingest_url, "DRIFTWATCH_API_KEY": API_KEY}
    with (fleet.workdir / "app.log").open("ab") as log:
        app = subprocess.Popen([sys.executable, "-m", "uvicorn", "app:app", "--port", str(port), "--log-level",
                                "warning"], cwd=EXAMPLE, env=env, stdout=log, stderr=subprocess.STDOUT)
    wait_for_http(f"http://127.0.0.1:{port}/stats", timeout_s=120, processes=[app])
    return app, f"http://127.0.0.1:{port}"


def _feeds(fleet: Fleet, app_url: str, model_dir: Path) -> list[Feed]:
    sys.path.insert(0, str(EXAMPLE))
    try:
        import model as example  # examples/sklearn_app/model.py: the app's own data and names
    finally:
        sys.path.remove(str(EXAMPLE))
    x, y, features, classes = example.load()
    with np.load(model_dir / "holdout.npz") as holdout:
        digits_x, digits_y = holdout["features"], holdout["labels"]
    digits = ModelMetadata.load(model_dir)
    return [
        AppFeed("breast-cancer", ROWS, classes, url=app_url, x=x, y=y, features=features,
                order=np.random.default_rng(5).permutation(len(x))),
        LoggedFeed("loans", ROWS + WINDOW, LOANS_CLASSES, url=fleet.ingest_url, key=API_KEY, shift_from=ROWS),
        KserveFeed("iris-kserve", ROWS, ["0", "1", "2"], url=fleet.ingest_url, key=API_KEY),
        DigitsFeed(digits.name, ROWS, list(digits.class_names), url=fleet.digits_url, key=API_KEY, x=digits_x,
                   y=digits_y),
    ]


def _ingested(fleet: Fleet, name: str) -> int:
    return int(fleet.redis.get(Keys(name, _version(fleet, name)).ingested) or 0)


def _version(fleet: Fleet, name: str) -> str:
    return str(fleet.redis.hget(Keys(name).model_info, "version").decode())


def _done(fleet: Fleet, feed: Feed) -> bool:
    keys = Keys(feed.name, _version(fleet, feed.name))
    pending = sum(fleet.redis.xpending(s, CONSUMER_GROUP)["pending"] for s in (keys.predictions, keys.feedback))
    received = int(fleet.redis.hget(keys.feedback_counts, "received") or 0)
    return (_ingested(fleet, feed.name), pending, received, fleet.redis.zcard(keys.drift_index),
            fleet.redis.scard(keys.windows_to_report)) == (feed.total, 0, len(feed.labelled), feed.total // WINDOW, 0)


def _joined(fleet: Fleet, name: str) -> int:
    """Predictions in the label-join state: one field per prediction id ingested (model-scoped)."""
    return sum(fleet.redis.hlen(k) for k in fleet.redis.scan_iter(match=Keys(name).join_state_pattern)
               if k.endswith(b":spred"))


def _run_and_kill(fleet: Fleet, feeds: list[Feed]) -> dict[str, int]:
    """Every feed sends; once every model's first window is ingested and every feed is sending again,
    SIGKILL the monitor, start it again; returns each model's ingested count at the kill."""
    gates = Gates()
    with ThreadPoolExecutor(len(feeds)) as pool:
        futures: list[Future[None]] = [pool.submit(f.run, gates, FIRST, SECOND_CAP) for f in feeds]

        def healthy() -> bool:
            for future in futures:
                if future.done():
                    future.result()  # a feed's failure, raised here
            return True

        def first_windows_in() -> bool:
            return healthy() and all(_ingested(fleet, f.name) >= WINDOW for f in feeds)

        _wait(first_windows_in, "every model's first window ingested", (fleet.monitor,))
        gates.go.set()
        _wait(lambda: healthy() and all(f.batches_after_go >= 1 for f in feeds), "every feed sending again")
        killed_at = {f.name: _ingested(fleet, f.name) for f in feeds}
        flowing = {f.name: not f.paused_for_restart for f in feeds}
        fleet.monitor.signal(signal.SIGKILL)
        assert fleet.monitor.wait(timeout_s=30) == -signal.SIGKILL
        gates.killed.set()
        unacked = {f.name: sum(c["pending"] for s in (Keys(f.name).predictions, Keys(f.name).feedback)
                               for c in fleet.redis.xinfo_consumers(s, CONSUMER_GROUP)) for f in feeds}
        print(f"\nmonitor SIGKILLed at ingested={killed_at}, read and not acked={unacked}, sending={flowing}")
        assert all(flowing.values()), f"a feed had stopped before the kill: {flowing}"
        assert all(WINDOW <= n < f.total for n, f in zip(killed_at.values(), feeds, strict=True)), killed_at
        again = fleet.start_monitor()
        wait_live(again, timeout_s=120)
        gates.restarted.set()
        for future in futures:
            future.result(timeout=WAIT_S)
    return killed_at


def test_four_kinds_of_model_on_one_monitor_survive_a_sigkill_and_only_the_shifted_one_drifts(
    fleet: Fleet, model_dir: Path
) -> None:
    started = time.monotonic()
    _register_everything(fleet)
    app, app_url = _start_app(fleet)
    try:
        feeds = _feeds(fleet, app_url, model_dir)
        _wait(lambda: set(httpx.get(f"{fleet.monitor.url}/readyz", timeout=30).json().get("models", {}))
              >= {f.name for f in feeds}, "the monitor watches every model", (fleet.monitor,))
        _run_and_kill(fleet, feeds)
        _wait(lambda: all(_done(fleet, f) for f in feeds), "every model counted, labelled and reported",
              (fleet.monitor,))
        stats = httpx.get(f"{app_url}/stats", timeout=30).json()
    finally:
        app.send_signal(signal.SIGINT)
        try:
            app.wait(timeout=60)
        except subprocess.TimeoutExpired:
            app.kill()
    labelled_app = len(feeds[0].labelled)
    assert stats["logged"] == stats["sent"] == ROWS + labelled_app, stats
    assert stats["rejected"] == stats["dropped"] == 0, stats

    monitor = fleet.monitor.url
    for feed in feeds:
        keys = Keys(feed.name, _version(fleet, feed.name))
        # Counted once: the monitor's count, its join state and the stream hold exactly the accepted ids.
        assert len(set(feed.accepted)) == len(feed.accepted) == feed.total, feed.name
        on_stream = set(stream_ids(fleet.redis, keys.predictions))
        assert on_stream == set(feed.accepted), (feed.name, len(on_stream ^ set(feed.accepted)))
        assert _joined(fleet, feed.name) == feed.total, feed.name
        assert fleet.redis.xlen(keys.dlq) == 0, feed.name
        performance = httpx.get(f"{monitor}/models/{feed.name}/performance", timeout=30).json()
        assert performance["model"] == feed.name
        assert performance["predictions"] == feed.total, (feed.name, performance["predictions"])
        assert performance["labelled"] == performance["feedback_received"] == len(feed.labelled), feed.name
        assert performance["feedback_unmatched"] == 0, feed.name
        assert performance["confusion_matrix"] == feed.expected_confusion(), feed.name
        assert performance["accuracy"] == pytest.approx(feed.expected_accuracy(), abs=1e-9), feed.name
        print(f"{feed.name}: {feed.total} predictions, {len(feed.labelled)} labels, accuracy "
              f"{performance['accuracy']:.4f}")

        history = httpx.get(f"{monitor}/models/{feed.name}/drift/history", params={"limit": 50}, timeout=30).json()
        reports = sorted(history["reports"], key=lambda r: r["window"])
        assert [r["window"] for r in reports] == list(range(feed.total // WINDOW)), feed.name
        assert all(r["window_size"] == WINDOW and r["model"] == feed.name for r in reports), feed.name
        shifted = reports[-1] if feed.name == "loans" else None
        for report in reports:
            if report is shifted:
                continue
            assert (report["status"], report["drifted_features"]) == ("ok", []), (feed.name, report["window"],
                                                                                  _drift_summary(report))
        if shifted is not None:
            assert shifted["status"] == "drift"
            assert sorted(shifted["drifted_features"]) == sorted(LOANS_SHIFTED), _drift_summary(shifted)
            prediction = shifted.get("prediction_drift") or {}
            assert not prediction.get("drifted"), prediction  # the model reads tenure alone
            score = next(f for f in shifted["features"] if f["name"] == LOANS_MISSING)
            assert 0 < score["missing"]["window"] < WINDOW // 4 and not score["missing"]["drifted"], score
            latest = httpx.get(f"{monitor}/models/{feed.name}/drift", timeout=30).json()
            assert (latest["window"], latest["drifted_features"]) == (shifted["window"], shifted["drifted_features"])
    iris = next(f for f in feeds if f.name == "iris-kserve")
    assert isinstance(iris, KserveFeed) and iris.published == ROWS and len(IRIS_FEATURES) == 4
    print(f"whole test: {time.monotonic() - started:.0f} s")


def _drift_summary(report: dict[str, Any]) -> dict[str, Any]:
    return {"status": report["status"], "drifted": report["drifted_features"],
            "prediction": report.get("prediction_drift"), "multivariate": report.get("multivariate_drift"),
            "p": {f["name"]: f.get("p_value") for f in report["features"] if f.get("drifted")}}
