"""Monitors as real processes under faults: SIGKILL mid-stream and restart, replicas with one
SIGKILLed, a poison entry in every run.

Every run consumes the same events (pre-filled streams, in its own Redis
database) and is compared with an uninterrupted single-monitor run:
ingested count, windows reported, the confusion totals, feedback counts,
the dead-letter queue, and the window each prediction id landed in.
"""

from __future__ import annotations

import asyncio
import json
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

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

pytestmark = [pytest.mark.fault, pytest.mark.timeout(150)]

N_PRED = 6_000
N_FEEDBACK = 3_000
WINDOW = 500


@pytest.fixture(scope="module")
def server() -> Iterator[LocalRedisServer]:
    with LocalRedisServer() as srv:
        yield srv


@pytest.fixture(scope="module")
def events(model_dir: Path) -> dict[str, Any]:
    """The same events for every run: predictions, feedback for half of them, one poison entry."""
    metadata = ModelMetadata.load(model_dir)
    with np.load(model_dir / "holdout.npz") as holdout:
        x, labels = holdout["features"].astype(np.float32), holdout["labels"]
    rng = np.random.default_rng(7)
    pick = rng.integers(0, len(x), N_PRED)
    features = x[pick]
    classes = np.where(rng.random(N_PRED) < 0.9, labels[pick], rng.integers(0, 10, N_PRED)).astype(np.int64)
    ids = new_prediction_ids(N_PRED, int(time.time() * 1000))
    probs = np.eye(10, dtype=np.float32)[classes]
    predictions = encode_predictions(ids, int(time.time() * 1000), metadata.name, metadata.version, features,
                                     classes, probs)
    fb = rng.choice(N_PRED, N_FEEDBACK, replace=False)
    feedback = [encode_feedback(ids[i], int(labels[pick[i]]), int(time.time() * 1000)) for i in fb]
    return {"metadata": metadata, "predictions": predictions, "feedback": feedback, "ids": ids}


def fill(server: LocalRedisServer, db: int, model_dir: Path, events: dict[str, Any], *, publish: bool = True) -> str:
    """A fresh database with the model registered and (unless ``publish`` is false) the events on the streams."""
    url = f"redis://127.0.0.1:{server.port}/{db}"
    metadata: ModelMetadata = events["metadata"]
    keys = Keys(metadata.name)

    async def register() -> None:
        client = aioredis.Redis.from_url(url)
        await client.flushdb()
        await register_model(client, keys, metadata, Reference.load(model_dir))
        await client.aclose()

    asyncio.run(register())
    if publish:
        publish_events(url, keys, events)
    return url


def publish_events(url: str, keys: Keys, events: dict[str, Any]) -> None:
    client = redis.Redis.from_url(url)
    half = len(events["feedback"]) // 2
    with client.pipeline(transaction=False) as pipe:
        for fields in events["feedback"][:half]:  # some labels arrive before their predictions
            pipe.xadd(keys.feedback, fields)
        for i, fields in enumerate(events["predictions"]):
            pipe.xadd(keys.predictions, fields)
            if i == N_PRED // 2:
                pipe.xadd(keys.predictions, {b"v": b"1", b"id": b"poison", b"x": b"\x00" * 5})
        for fields in events["feedback"][half:]:
            pipe.xadd(keys.feedback, fields)
        pipe.execute()
    client.close()


def monitor(url: str, tmp_path: Path, name: str) -> Service:
    env = {
        "REDIS_URL": url,
        "DRIFTWATCH_WINDOW_SIZE": str(WINDOW),
        "DRIFTWATCH_READ_COUNT": "50",
        "DRIFTWATCH_READ_BLOCK_MS": "100",
        "DRIFTWATCH_CLAIM_IDLE_MS": "1000",
        "DRIFTWATCH_CONSUMER_NAME": name,
        "DRIFTWATCH_ALERTS_ENABLED": "false",
    }
    return start("monitor", env, tmp_path, name)


def ingested(client: redis.Redis, keys: Keys) -> int:
    return int(client.get(keys.ingested) or 0)


def kill_mid_stream(client: redis.Redis, keys: Keys, victim: Service, at: int) -> int:
    """SIGKILL ``victim`` once ``at`` events are ingested; returns the count seen just before the kill.

    That count, not one read after the kill: other replicas keep consuming
    while the victim dies and may finish the stream by then.
    """
    deadline = time.monotonic() + 60
    while (seen := ingested(client, keys)) < at:
        assert time.monotonic() < deadline, f"no progress:\n{victim.tail()}"
        assert victim.process.poll() is None, victim.tail()
        time.sleep(0.005)
    victim.signal(signal.SIGKILL)
    victim.wait(timeout_s=10)
    name = victim.log.stem.encode()
    unacked = sum(
        c["pending"] for s in (keys.predictions, keys.feedback)
        for c in client.xinfo_consumers(s, CONSUMER_GROUP) if c["name"] == name
    )
    print(f"\n{name.decode()} SIGKILLed at ingested={seen} with {unacked} entries read and not acked")
    return seen


def wait_done(client: redis.Redis, keys: Keys, timeout_s: float = 90) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        pending = sum(client.xpending(s, CONSUMER_GROUP)["pending"] for s in (keys.predictions, keys.feedback))
        counts = client.hgetall(keys.feedback_counts)
        if (ingested(client, keys) == N_PRED and pending == 0 and int(counts.get(b"received", 0)) == N_FEEDBACK
                and client.zcard(keys.drift_index) == N_PRED // WINDOW and not client.scard(keys.windows_to_report)
                and client.xlen(keys.dlq) >= 1):
            return
        time.sleep(0.2)
    raise AssertionError(f"not done: ingested={ingested(client, keys)} pending={pending}")


def snapshot(url: str, keys: Keys) -> dict[str, Any]:
    client = redis.Redis.from_url(url)
    joined: dict[bytes, bytes] = {}  # (key, field): one per prediction id
    for key in client.scan_iter(match=keys.join_state_pattern):
        if key.endswith(b":spred"):
            joined.update({key + b"/" + field: tag for field, tag in client.hgetall(key).items()})
    reports = {int(w): json.loads(r) for w, r in client.hgetall(keys.drift_reports).items()}
    for report in reports.values():
        report.pop("computed_at", None)
    dlq = [(f[b"stream"], f[b"reason"][:20]) for _, f in client.xrange(keys.dlq)]
    snap = {
        "ingested": ingested(client, keys),
        "confusion": client.hgetall(keys.confusion_total),
        "version_confusion": client.hgetall(keys.version_confusion_total),
        "feedback": client.hgetall(keys.feedback_counts),
        "windows": sorted(reports),
        "window_sizes": [reports[w]["window_size"] for w in sorted(reports)],
        "joined": joined,
        "reports": reports,
        "dlq": dlq,
    }
    client.close()
    return snap


@pytest.fixture(scope="module")
def baseline(server: LocalRedisServer, model_dir: Path, events: dict[str, Any],
             tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """One monitor, never interrupted."""
    tmp = tmp_path_factory.mktemp("baseline")
    keys = Keys(events["metadata"].name, events["metadata"].version)
    url = fill(server, 1, model_dir, events)
    service = monitor(url, tmp, "base")
    client = redis.Redis.from_url(url)
    try:
        wait_live(service)
        wait_done(client, keys)
    finally:
        service.stop()
        client.close()
    snap = snapshot(url, keys)
    assert snap["ingested"] == N_PRED and len(snap["joined"]) == N_PRED
    assert sum(int(v) for v in snap["confusion"].values()) == N_FEEDBACK
    assert snap["version_confusion"] == snap["confusion"]  # one version: its series holds every label
    assert [stream for stream, _ in snap["dlq"]] == [keys.predictions.encode()]  # the poison entry
    return snap


def compare(name: str, baseline: dict[str, Any], run: dict[str, Any], *, same_order: bool, killed_at: int) -> None:
    lost = len(set(baseline["joined"]) - set(run["joined"]))
    double = run["ingested"] - len(run["joined"])
    print(f"\n[{name}] killed at ingested={killed_at}: lost={lost} double_counted={double} "
          f"ingested={run['ingested']} windows={len(run['windows'])} dlq={len(run['dlq'])}")
    assert 0 < killed_at < N_PRED, "the kill did not land mid-stream"
    assert (lost, double) == (0, 0)
    for key in ("ingested", "confusion", "version_confusion", "windows", "window_sizes", "dlq"):
        assert run[key] == baseline[key], key
    # ``duplicate`` counts redeliveries the script turned into no-ops, which a crash causes by design.
    assert run["feedback"][b"received"] == baseline["feedback"][b"received"]
    if same_order:  # one consumer: the same windows, the same reports
        assert run["joined"] == baseline["joined"]
        assert run["reports"] == baseline["reports"]


def test_monitor_sigkilled_mid_stream_and_restarted_counts_like_an_uninterrupted_run(
    server: LocalRedisServer, model_dir: Path, events: dict[str, Any], baseline: dict[str, Any], tmp_path: Path
) -> None:
    keys = Keys(events["metadata"].name, events["metadata"].version)
    url = fill(server, 2, model_dir, events)
    client = redis.Redis.from_url(url)
    first = monitor(url, tmp_path, "solo")
    again = None
    try:
        wait_live(first)
        killed_at = kill_mid_stream(client, keys, first, N_PRED // 3)
        again = monitor(url, tmp_path, "solo")  # the same consumer name: its pending entries come first
        wait_live(again)
        wait_done(client, keys)
    finally:
        first.stop()
        if again is not None:
            again.stop()
        client.close()
    compare("monitor SIGKILL + restart", baseline, snapshot(url, keys), same_order=True, killed_at=killed_at)


@pytest.mark.parametrize("replicas", [2, 3])
def test_replicas_with_one_sigkilled_give_the_single_monitor_counts(
    replicas: int, server: LocalRedisServer, model_dir: Path, events: dict[str, Any], baseline: dict[str, Any],
    tmp_path: Path,
) -> None:
    keys = Keys(events["metadata"].name, events["metadata"].version)
    url = fill(server, 2 + replicas, model_dir, events, publish=False)
    client = redis.Redis.from_url(url)
    services = [monitor(url, tmp_path, f"replica-{i}") for i in range(replicas)]
    try:
        for service in services:
            wait_live(service)
        # Only now: the first replica up would otherwise ingest the lot before the others start.
        publish_events(url, keys, events)
        killed_at = kill_mid_stream(client, keys, services[0], N_PRED // 3)
        wait_done(client, keys)
    finally:
        for service in services:
            service.stop()
        client.close()
    compare(f"{replicas} replicas, one SIGKILLed", baseline, snapshot(url, keys), same_order=False,
            killed_at=killed_at)
