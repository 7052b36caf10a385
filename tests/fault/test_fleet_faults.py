"""Many models on each monitor, as real processes: a replica SIGKILLed mid-stream loses and double-counts
nothing for any model.

Three models (the trained digits model, the default, and two registered 4-feature
models the monitors discover from the registry) get the same events in every
run, a poison entry each. Every run is compared, model by model, with one
uninterrupted monitor: ingested count, windows reported and their sizes, the
confusion totals, feedback counts, the dead-letter queue, and the window each
prediction id landed in.
"""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import redis
import redis.asyncio as aioredis

from driftwatch.local_processes import LocalRedisServer
from shared.events import encode_feedback, encode_predictions
from shared.ids import new_prediction_ids
from shared.keys import CONSUMER_GROUP, Keys
from shared.model_metadata import ModelMetadata, Reference
from shared.registry import register_model
from tests.fault.procs import Service, start, wait_live
from tests.fault.test_monitor_faults import snapshot
from tests.integration.monitor.helpers import small_model

pytestmark = [pytest.mark.fault, pytest.mark.timeout(300)]

N_PRED = 3_000
N_FEEDBACK = 1_500
WINDOW = 500
DEFAULT = "digits-mlp"
OTHERS = ("churn", "fraud")


@dataclass
class ModelEvents:
    metadata: ModelMetadata
    reference: Reference
    predictions: list[dict[bytes, bytes]]
    feedback: list[dict[bytes, bytes]]

    @property
    def keys(self) -> Keys:
        return Keys(self.metadata.name, self.metadata.version)


def model_events(metadata: ModelMetadata, reference: Reference, x: np.ndarray, labels: np.ndarray,
                 seed: int) -> ModelEvents:
    n_classes = len(metadata.class_names)
    rng = np.random.default_rng(seed)
    pick = rng.integers(0, len(x), N_PRED)
    classes = np.where(rng.random(N_PRED) < 0.9, labels[pick], rng.integers(0, n_classes, N_PRED)).astype(np.int64)
    now = int(time.time() * 1000)
    ids = new_prediction_ids(N_PRED, now)
    predictions = encode_predictions(ids, now, metadata.name, metadata.version, x[pick].astype(np.float32), classes,
                                     np.eye(n_classes, dtype=np.float32)[classes])
    chosen = rng.choice(N_PRED, N_FEEDBACK, replace=False)
    feedback = [encode_feedback(ids[i], int(labels[pick[i]]), now) for i in chosen]
    return ModelEvents(metadata, reference, predictions, feedback)


@pytest.fixture(scope="module")
def server() -> Iterator[LocalRedisServer]:
    with LocalRedisServer() as srv:
        yield srv


@pytest.fixture(scope="module")
def events(model_dir: Path) -> dict[str, ModelEvents]:
    with np.load(model_dir / "holdout.npz") as holdout:
        x, labels = holdout["features"], holdout["labels"]
    out = {DEFAULT: model_events(ModelMetadata.load(model_dir), Reference.load(model_dir), x, labels, seed=7)}
    for i, name in enumerate(OTHERS):
        metadata, reference = small_model(name, "1", seed=i + 2)
        rng = np.random.default_rng(i)
        out[name] = model_events(metadata, reference, rng.normal(size=(2_000, 4)), rng.integers(0, 2, 2_000),
                                 seed=i + 11)
    return out


def fill(server: LocalRedisServer, db: int, events: dict[str, ModelEvents], *, publish: bool = True) -> str:
    """A fresh database with every model registered (so in the registry's index), events on the streams."""
    url = f"redis://127.0.0.1:{server.port}/{db}"

    async def register() -> None:
        client = aioredis.Redis.from_url(url)
        await client.flushdb()
        for e in events.values():
            await register_model(client, Keys(e.metadata.name), e.metadata, e.reference)
        await client.aclose()

    asyncio.run(register())
    if publish:
        publish_events(url, events)
    return url


def publish_events(url: str, events: dict[str, ModelEvents]) -> None:
    """Every model's events, interleaved in chunks as several services would write them."""
    client = redis.Redis.from_url(url)
    half = N_FEEDBACK // 2
    with client.pipeline(transaction=False) as pipe:
        for e in events.values():
            for fields in e.feedback[:half]:  # some labels arrive before their predictions
                pipe.xadd(e.keys.feedback, fields)
        for start_at in range(0, N_PRED, 250):
            for e in events.values():
                for i, fields in enumerate(e.predictions[start_at:start_at + 250], start=start_at):
                    pipe.xadd(e.keys.predictions, fields)
                    if i == N_PRED // 2:
                        pipe.xadd(e.keys.predictions, {b"v": b"1", b"id": b"poison", b"x": b"\x00" * 5})
        for e in events.values():
            for fields in e.feedback[half:]:
                pipe.xadd(e.keys.feedback, fields)
        pipe.execute()
    client.close()


def monitor(url: str, tmp_path: Path, name: str) -> Service:
    env = {
        "REDIS_URL": url,
        "DRIFTWATCH_MODEL_NAME": DEFAULT,
        "DRIFTWATCH_WINDOW_SIZE": str(WINDOW),
        "DRIFTWATCH_READ_COUNT": "50",
        "DRIFTWATCH_READ_BLOCK_MS": "100",
        "DRIFTWATCH_CLAIM_IDLE_MS": "1000",
        "DRIFTWATCH_DISCOVERY_INTERVAL_S": "0.2",
        "DRIFTWATCH_CONSUMER_NAME": name,
        "DRIFTWATCH_ALERTS_ENABLED": "false",
    }
    return start("monitor", env, tmp_path, name)


def watches_every_model(service: Service, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            models = httpx.get(f"{service.url}/readyz", timeout=5).json().get("models", {})
        except httpx.HTTPError:
            models = {}
        if set(models) == {DEFAULT, *OTHERS}:
            return
        time.sleep(0.1)
    raise AssertionError(f"{service.log.stem} does not watch every model:\n{service.tail()}")


def ingested(client: redis.Redis, events: dict[str, ModelEvents]) -> dict[str, int]:
    return {name: int(client.get(e.keys.ingested) or 0) for name, e in events.items()}


def kill_mid_stream(client: redis.Redis, events: dict[str, ModelEvents], victim: Service) -> dict[str, int]:
    """SIGKILL ``victim`` once a third of all predictions are ingested; returns each model's count just before."""
    deadline = time.monotonic() + 120
    while sum((seen := ingested(client, events)).values()) < len(events) * N_PRED // 3:
        assert time.monotonic() < deadline, f"no progress:\n{victim.tail()}"
        assert victim.process.poll() is None, victim.tail()
        time.sleep(0.005)
    victim.signal(signal.SIGKILL)
    victim.wait(timeout_s=10)
    name = victim.log.stem.encode()
    unacked = sum(
        c["pending"] for e in events.values() for s in (e.keys.predictions, e.keys.feedback)
        for c in client.xinfo_consumers(s, CONSUMER_GROUP) if c["name"] == name
    )
    print(f"\n{name.decode()} SIGKILLed at ingested={seen} with {unacked} entries read and not acked")
    return seen


def wait_done(client: redis.Redis, events: dict[str, ModelEvents], timeout_s: float = 180) -> None:
    deadline = time.monotonic() + timeout_s
    left: dict[str, Any] = {}
    while time.monotonic() < deadline:
        left = {}
        for name, e in events.items():
            keys = e.keys
            try:
                pending = sum(client.xpending(s, CONSUMER_GROUP)["pending"] for s in (keys.predictions, keys.feedback))
            except redis.ResponseError:  # NOGROUP: not discovered yet
                left[name] = "no consumer group yet"
                continue
            received = int(client.hgetall(keys.feedback_counts).get(b"received", 0))
            state = (int(client.get(keys.ingested) or 0), pending, received, client.zcard(keys.drift_index),
                     client.scard(keys.windows_to_report), client.xlen(keys.dlq))
            if state != (N_PRED, 0, N_FEEDBACK, N_PRED // WINDOW, 0, 1):
                left[name] = state
        if not left:
            return
        time.sleep(0.2)
    raise AssertionError(f"not done (ingested, pending, labels, reports, to report, dlq): {left}")


def snapshots(url: str, events: dict[str, ModelEvents]) -> dict[str, dict[str, Any]]:
    return {name: snapshot(url, e.keys) for name, e in events.items()}


@pytest.fixture(scope="module")
def baseline(server: LocalRedisServer, events: dict[str, ModelEvents],
             tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    """One monitor watching every model, never interrupted."""
    url = fill(server, 1, events)
    service = monitor(url, tmp_path_factory.mktemp("baseline"), "base")
    client = redis.Redis.from_url(url)
    try:
        wait_live(service)
        wait_done(client, events)
    finally:
        service.stop()
        client.close()
    snaps = snapshots(url, events)
    for name, snap in snaps.items():
        assert snap["ingested"] == N_PRED and len(snap["joined"]) == N_PRED, name
        assert sum(int(v) for v in snap["confusion"].values()) == N_FEEDBACK, name
    return snaps


def compare(what: str, baseline: dict[str, dict[str, Any]], runs: dict[str, dict[str, Any]],
            killed_at: dict[str, int], *, same_order: bool) -> None:
    assert all(0 < n < N_PRED for n in killed_at.values()), f"the kill did not land mid-stream: {killed_at}"
    for name, run in runs.items():
        base = baseline[name]
        lost = len(set(base["joined"]) - set(run["joined"]))
        double = run["ingested"] - len(run["joined"])
        print(f"[{what}] {name}: killed at ingested={killed_at[name]}: lost={lost} double_counted={double} "
              f"windows={len(run['windows'])} dlq={len(run['dlq'])}")
        assert (lost, double) == (0, 0), name
        for key in ("ingested", "confusion", "version_confusion", "windows", "window_sizes", "dlq"):
            assert run[key] == base[key], (name, key)
        assert run["feedback"][b"received"] == base["feedback"][b"received"], name
        if same_order:
            assert run["joined"] == base["joined"], name
            assert run["reports"] == base["reports"], name


def test_a_monitor_of_many_models_sigkilled_and_restarted_counts_like_an_uninterrupted_run(
    server: LocalRedisServer, events: dict[str, ModelEvents], baseline: dict[str, dict[str, Any]], tmp_path: Path
) -> None:
    url = fill(server, 2, events)
    client = redis.Redis.from_url(url)
    first = monitor(url, tmp_path, "solo")
    again = None
    try:
        wait_live(first)
        killed_at = kill_mid_stream(client, events, first)
        again = monitor(url, tmp_path, "solo")  # the same consumer name: its pending entries come first
        wait_live(again)
        wait_done(client, events)
    finally:
        first.stop()
        if again is not None:
            again.stop()
        client.close()
    compare("SIGKILL + restart", baseline, snapshots(url, events), killed_at, same_order=True)


def test_replicas_of_many_models_with_one_sigkilled_give_the_single_monitor_counts(
    server: LocalRedisServer, events: dict[str, ModelEvents], baseline: dict[str, dict[str, Any]], tmp_path: Path
) -> None:
    url = fill(server, 3, events, publish=False)
    client = redis.Redis.from_url(url)
    services = [monitor(url, tmp_path, f"replica-{i}") for i in range(2)]
    try:
        for service in services:
            wait_live(service)
            watches_every_model(service)
        # Only now: the first replica up would otherwise ingest the lot before the other starts.
        publish_events(url, events)
        killed_at = kill_mid_stream(client, events, services[0])
        wait_done(client, events)
    finally:
        for service in services:
            service.stop()
        client.close()
    compare("2 replicas, one SIGKILLed", baseline, snapshots(url, events), killed_at, same_order=False)
