"""Pre-filled streams consumed by real monitor processes, and what a run leaves in Redis.

The monitor fault tests (one model in ``test_monitor_faults.py``, several in
``test_fleet_faults.py``) share this harness: the same events in every run,
each run in its own Redis database, compared model by model with one
uninterrupted monitor. Ingested count, windows reported and their sizes,
the confusion totals, feedback counts, the dead-letter queue and the window
each prediction id landed in must all be equal.
"""

from __future__ import annotations

import asyncio
import json
import signal
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import redis
import redis.asyncio as aioredis

from shared.events import encode_feedback, encode_predictions
from shared.ids import new_prediction_ids
from shared.keys import CONSUMER_GROUP, Keys
from shared.model_metadata import ModelMetadata, Reference
from shared.registry import register_model
from tests.fault.procs import Service, start

POISON = {b"v": b"1", b"id": b"poison", b"x": b"\x00" * 5}
"""One undecodable entry per model, in the middle of its predictions: it must end in the DLQ, once."""


@dataclass
class ModelEvents:
    """One model's events: its predictions (90% right), and labels for some of them."""

    metadata: ModelMetadata
    reference: Reference
    predictions: list[dict[bytes, bytes]]
    feedback: list[dict[bytes, bytes]]

    @property
    def keys(self) -> Keys:
        return Keys(self.metadata.name, self.metadata.version)


def model_events(metadata: ModelMetadata, reference: Reference, x: np.ndarray, labels: np.ndarray, *,
                 n_predictions: int, n_feedback: int, seed: int) -> ModelEvents:
    n_classes = len(metadata.class_names)
    rng = np.random.default_rng(seed)
    pick = rng.integers(0, len(x), n_predictions)
    right = rng.random(n_predictions) < 0.9
    classes = np.where(right, labels[pick], rng.integers(0, n_classes, n_predictions)).astype(np.int64)
    now = int(time.time() * 1000)
    ids = new_prediction_ids(n_predictions, now)
    predictions = encode_predictions(ids, now, metadata.name, metadata.version, x[pick].astype(np.float32), classes,
                                     np.eye(n_classes, dtype=np.float32)[classes])
    chosen = rng.choice(n_predictions, n_feedback, replace=False)
    feedback = [encode_feedback(ids[i], int(labels[pick[i]]), now) for i in chosen]
    return ModelEvents(metadata, reference, predictions, feedback)


def fill(url: str, events: dict[str, ModelEvents], *, publish: bool = True) -> None:
    """Empty the database, register every model (so the registry's index lists it), and publish its events."""

    async def register() -> None:
        client = aioredis.Redis.from_url(url)
        await client.flushdb()
        for e in events.values():
            await register_model(client, Keys(e.metadata.name), e.metadata, e.reference)
        await client.aclose()

    asyncio.run(register())
    if publish:
        publish_events(url, events)


def publish_events(url: str, events: dict[str, ModelEvents], *, part: slice = slice(None)) -> None:
    """Each model's predictions in ``part``, interleaved in chunks as several services would write them.

    Half the labels go with the first part (some labels arrive before their
    predictions), the rest with the part that ends the streams; publishing the
    parts in turn writes every stream exactly as one call would.
    """
    client = redis.Redis.from_url(url)
    with client.pipeline(transaction=False) as pipe:
        for e in events.values():
            first, last, _ = part.indices(len(e.predictions))
            if first == 0:
                for fields in e.feedback[:len(e.feedback) // 2]:
                    pipe.xadd(e.keys.feedback, fields)
        for start_at in range(0, max(len(e.predictions) for e in events.values()), 250):
            for e in events.values():
                first, last, _ = part.indices(len(e.predictions))
                for i in range(max(first, start_at), min(last, start_at + 250)):
                    pipe.xadd(e.keys.predictions, e.predictions[i])
                    if i == len(e.predictions) // 2:
                        pipe.xadd(e.keys.predictions, POISON)
        for e in events.values():
            if part.indices(len(e.predictions))[1] == len(e.predictions):
                for fields in e.feedback[len(e.feedback) // 2:]:
                    pipe.xadd(e.keys.feedback, fields)
        pipe.execute()
    client.close()


def start_monitor(url: str, tmp_path: Path, name: str, window: int, **env: str) -> Service:
    """A monitor process reading small batches (so a kill lands mid-stream) under consumer name ``name``."""
    return start("monitor", {
        "REDIS_URL": url,
        "DRIFTWATCH_WINDOW_SIZE": str(window),
        "DRIFTWATCH_READ_COUNT": "50",
        "DRIFTWATCH_READ_BLOCK_MS": "100",
        "DRIFTWATCH_CLAIM_IDLE_MS": "1000",
        "DRIFTWATCH_CONSUMER_NAME": name,
        "DRIFTWATCH_ALERTS_ENABLED": "false",
        **env,
    }, tmp_path, name)


def ingested(client: redis.Redis, events: dict[str, ModelEvents]) -> dict[str, int]:
    return {name: int(client.get(e.keys.ingested) or 0) for name, e in events.items()}


def kill_mid_stream(url: str, client: redis.Redis, events: dict[str, ModelEvents], victim: Service) -> dict[str, int]:
    """Publish the first third of every stream, SIGKILL ``victim`` once every model has ingested some of it, then
    publish the rest; returns each model's count just before the kill.

    Holding the rest back until the kill is what makes it land mid-stream for
    every model: a model whose first batch is slow (a loaded machine) cannot
    be at 0 while the others have already finished. The count is the one read
    before the kill, not after: other replicas keep consuming while the victim
    dies.
    """
    head = slice(0, min(len(e.predictions) for e in events.values()) // 3)
    publish_events(url, events, part=head)
    deadline = time.monotonic() + 120
    while min((seen := ingested(client, events)).values()) == 0:
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
    publish_events(url, events, part=slice(head.stop, None))
    return seen


def wait_done(client: redis.Redis, events: dict[str, ModelEvents], window: int, timeout_s: float = 180) -> None:
    """Until every model has ingested, labelled, reported and dead-lettered all it will, with nothing pending."""
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
            n = len(e.predictions)
            if state != (n, 0, len(e.feedback), n // window, 0, 1):
                left[name] = state
        if not left:
            return
        time.sleep(0.2)
    raise AssertionError(f"not done (ingested, pending, labels, reports, to report, dlq): {left}")


def snapshot(url: str, keys: Keys) -> dict[str, Any]:
    """What one model's run left: counts, reports, the DLQ, and each prediction id's join field."""
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
        "ingested": int(client.get(keys.ingested) or 0),
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


def snapshots(url: str, events: dict[str, ModelEvents]) -> dict[str, dict[str, Any]]:
    return {name: snapshot(url, e.keys) for name, e in events.items()}


def check_baseline(snaps: dict[str, dict[str, Any]], events: dict[str, ModelEvents]) -> None:
    """The uninterrupted run itself: every prediction joined once, every label counted, the poison dead-lettered."""
    for name, snap in snaps.items():
        e = events[name]
        assert snap["ingested"] == len(e.predictions) and len(snap["joined"]) == len(e.predictions), name
        assert sum(int(v) for v in snap["confusion"].values()) == len(e.feedback), name
        assert snap["version_confusion"] == snap["confusion"], name  # one version: its series holds every label
        assert [stream for stream, _ in snap["dlq"]] == [e.keys.predictions.encode()], name


def compare(what: str, baseline: dict[str, dict[str, Any]], runs: dict[str, dict[str, Any]],
            killed_at: dict[str, int], *, same_order: bool) -> None:
    """A run counts like the baseline: nothing lost, nothing double-counted; one consumer gives the same reports."""
    assert all(0 < killed_at[name] < run["ingested"] for name, run in runs.items()), \
        f"the kill did not land mid-stream: {killed_at}"
    for name, run in runs.items():
        base = baseline[name]
        lost = len(set(base["joined"]) - set(run["joined"]))
        double = run["ingested"] - len(run["joined"])
        print(f"[{what}] {name}: killed at ingested={killed_at[name]}: lost={lost} double_counted={double} "
              f"windows={len(run['windows'])} dlq={len(run['dlq'])}")
        assert (lost, double) == (0, 0), name
        for key in ("ingested", "confusion", "version_confusion", "windows", "window_sizes", "dlq"):
            assert run[key] == base[key], (name, key)
        # ``duplicate`` counts redeliveries the script turned into no-ops, which a crash causes by design.
        assert run["feedback"][b"received"] == base["feedback"][b"received"], name
        if same_order:  # one consumer: the same windows, the same reports
            assert run["joined"] == base["joined"], name
            assert run["reports"] == base["reports"], name
