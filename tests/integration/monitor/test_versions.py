"""A new model version starts its own window series: traffic on v1, then v2 (other features, other
reference) deployed as a canary with v1 and v2 events interleaved in one stream batch, and a v1
straggler after v2 began. Each version's windows hold only its rows, are tested against its own
reference (the KS statistic checked against scipy), and its performance comes from its own labels;
nothing is dead-lettered."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import numpy as np
import pytest
import redis.asyncio as aioredis
from fastapi.testclient import TestClient
from scipy import stats

from monitor.app import create_app
from monitor.assembly import MonitorParts, assemble_monitor
from monitor.monitor_settings import MonitorSettings
from shared.events import encode_feedback, encode_predictions
from shared.ids import new_prediction_ids
from shared.keys import CONSUMER_GROUP, Keys
from shared.model_metadata import Reference
from shared.registry import register_model
from tests.integration.monitor.helpers import eventually, holdout_rows, register, small_model

WINDOW = 100
V1_FIRST, CANARY, V1_LATE, V2_LATE = 250, 150, 100, 50  # v1: 500 rows (5 windows); v2: 200 (2 windows)


def settings(redis_url: str) -> MonitorSettings:
    return MonitorSettings(REDIS_URL=redis_url, DRIFTWATCH_WINDOW_SIZE=WINDOW, DRIFTWATCH_READ_BLOCK_MS=50,
                           DRIFTWATCH_READ_COUNT=1_000)


@pytest.fixture
async def worker(aredis: aioredis.Redis, redis_url: str, model_dir: Path) -> AsyncIterator[MonitorParts]:
    await register(aredis, model_dir)
    monitor = assemble_monitor(aredis, settings(redis_url), "versions-test")
    monitor.start()
    yield monitor
    await monitor.stop()


def _entries(keys: Keys, version: str, x: np.ndarray, classes: np.ndarray, n_classes: int
             ) -> tuple[list[str], list[dict[bytes, bytes]]]:
    ids = new_prediction_ids(len(x))
    probabilities = np.full((len(x), n_classes), 0.1 / max(n_classes - 1, 1), dtype=np.float32)
    probabilities[np.arange(len(x)), classes] = 0.9
    now = int(time.time() * 1000)
    return ids, encode_predictions(ids, now, keys.model, version, x, classes, probabilities)


async def _xadd(client: aioredis.Redis, stream: str, entries: list[dict[bytes, bytes]]) -> None:
    async with client.pipeline(transaction=False) as pipe:
        for entry in entries:
            pipe.xadd(stream, entry)
        await pipe.execute()


async def _labels(client: aioredis.Redis, keys: Keys, ids: list[str], labels: np.ndarray) -> None:
    now = int(time.time() * 1000)
    await _xadd(client, keys.feedback, [encode_feedback(i, int(y), now) for i, y in zip(ids, labels, strict=True)])


async def test_each_version_has_its_own_series_reports_and_performance(
    worker: MonitorParts, aredis: aioredis.Redis, model_dir: Path
) -> None:
    rng = np.random.default_rng(12)
    keys = worker.keys
    v1, v2 = keys.for_version("1"), keys.for_version("2")

    # 1. v1 (64 features, 10 classes) serves alone.
    x1 = holdout_rows(model_dir, V1_FIRST + CANARY + V1_LATE, seed=5)
    y1 = rng.integers(0, 10, len(x1))
    ids1, entries1 = _entries(keys, "1", x1, y1, 10)
    await _xadd(aredis, keys.predictions, entries1[:V1_FIRST])
    await eventually(lambda: worker.consumer.stats.predictions == V1_FIRST)

    # 2. v2 (4 features, 2 classes, its own reference) is deployed: its feature "a" is shifted.
    metadata2, reference2 = small_model(keys.model, "2")
    await register_model(aredis, keys, metadata2, reference2)
    x2 = rng.normal(size=(CANARY + V2_LATE, 4)).astype(np.float32)
    x2[:, 0] += 1.5
    y2 = rng.integers(0, 2, len(x2))
    ids2, entries2 = _entries(keys, "2", x2, y2, 2)
    # Labels for v2's last predictions arrive before them (they wait, then join in the ingest script).
    labels2 = rng.integers(0, 2, len(x2))
    await _labels(aredis, keys, ids2[CANARY:], labels2[CANARY:])
    await eventually(lambda: worker.consumer.stats.feedback == V2_LATE)

    # 3. Canary: v1 and v2 interleaved in one stream batch (one XREADGROUP reads them all).
    canary = [e for pair in zip(entries1[V1_FIRST:V1_FIRST + CANARY], entries2[:CANARY], strict=True) for e in pair]
    await _xadd(aredis, keys.predictions, canary)
    await eventually(lambda: worker.consumer.stats.predictions == V1_FIRST + 2 * CANARY)
    # 4. A v1 straggler after v2 began, then the rest of v2.
    await _xadd(aredis, keys.predictions, entries1[V1_FIRST + CANARY:])
    await _xadd(aredis, keys.predictions, entries2[CANARY:])
    await eventually(lambda: worker.consumer.stats.predictions == len(x1) + len(x2), timeout_s=60)

    async def all_reported() -> bool:
        return [await aredis.zcard(s.drift_index) for s in (v1, v2)] == [len(x1) // WINDOW, len(x2) // WINDOW]

    await eventually(all_reported, timeout_s=60)

    # Nothing dead-lettered, everything acked, each series counted its own rows.
    assert worker.consumer.stats.dead_lettered == 0 and await aredis.xlen(keys.dlq) == 0
    assert (await aredis.xpending(keys.predictions, CONSUMER_GROUP))["pending"] == 0
    assert [int(await aredis.get(s.ingested)) for s in (v1, v2)] == [len(x1), len(x2)]

    # v1: five windows of 100 rows of 64 features against the digits reference, no drift (held-out rows).
    reports1 = list(reversed(await worker.reports.history(20, version="1")))
    digits_reference = Reference.load(model_dir)
    assert [r.window for r in reports1] == list(range(5))
    assert all(r.model_version == "1" and r.window_size == WINDOW and r.n_features == 64 and r.status != "error"
               and r.reference_size == len(digits_reference.features) for r in reports1)
    assert not any(r.dataset_drift for r in reports1)

    # v2: its own windows 0 and 1 (the default: v2 is the current version), 4 features, its reference,
    # the shift of "a" found, and the statistic scipy gives for exactly the rows sent to window 0.
    reports2 = list(reversed(await worker.reports.history(20)))
    assert [(r.window, r.model_version, r.window_size, r.n_features) for r in reports2] == [
        (0, "2", WINDOW, 4), (1, "2", WINDOW, 4)]
    assert all(r.reference_size == len(reference2.features) and "a" in r.drifted_features for r in reports2)
    first = {f.name: f for f in reports2[0].features}
    expected = stats.ks_2samp(reference2.features[:, 0], x2[:WINDOW, 0])
    assert first["a"].statistic == pytest.approx(expected.statistic, abs=1e-12)

    # Performance per version from its own labels (labels of both versions in one feedback batch).
    labels1 = rng.integers(0, 10, len(x1))
    labelled1 = rng.choice(len(x1), 120, replace=False)
    both = [*zip([ids1[i] for i in labelled1], labels1[labelled1], strict=True),
            *zip(ids2[:CANARY], labels2[:CANARY], strict=True)]
    await _labels(aredis, keys, [i for i, _ in both], np.array([y for _, y in both]))
    await eventually(lambda: worker.consumer.stats.feedback == V2_LATE + len(both))
    perf1 = await worker.performance.report(10, version="1")
    perf2 = await worker.performance.report(10)  # the current version: 2
    assert perf1 is not None and perf2 is not None
    assert (perf1.model_version, perf1.predictions, perf1.labelled) == ("1", len(x1), len(labelled1))
    assert perf1.accuracy == pytest.approx(float(np.mean(labels1[labelled1] == y1[labelled1])))
    assert len(perf1.confusion_matrix) == 10 and sum(w.labelled for w in perf1.windows) == len(labelled1)
    assert (perf2.model_version, perf2.predictions, perf2.labelled) == ("2", len(x2), len(x2))
    assert perf2.accuracy == pytest.approx(float(np.mean(labels2 == y2)))
    assert len(perf2.confusion_matrix) == 2 and [w.window for w in perf2.windows] == [1, 0]
    assert [w.labelled for w in perf2.windows] == [WINDOW, WINDOW]
    assert perf1.feedback_received == perf2.feedback_received == V2_LATE + len(both)  # the model's, every version
    assert perf2.feedback_unmatched == 0


async def test_reads_take_a_version_over_http(aredis: aioredis.Redis, redis_url: str, model_dir: Path) -> None:
    """``?version=`` on the read routes; without it, the current version's series."""
    metadata, keys = await register(aredis, model_dir)
    x = holdout_rows(model_dir, WINDOW)
    _, entries = _entries(keys, "1", x, np.zeros(WINDOW, dtype=np.int64), 10)
    await _xadd(aredis, keys.predictions, entries)
    with TestClient(create_app(settings(redis_url))) as client:
        deadline = time.monotonic() + 60
        while client.get("/drift").json().get("window") != 0:
            assert time.monotonic() < deadline
            await asyncio.sleep(0.05)
        v2, reference2 = small_model(metadata.name, "2")
        await register_model(aredis, Keys(metadata.name), v2, reference2)
        assert client.get("/drift").json()["status"] == "insufficient_data"  # v2 has no window yet
        assert client.get("/drift/window").json()["model_version"] == "2"
        assert client.get("/drift", params={"version": "1"}).json()["model_version"] == "1"
        assert [r["window"] for r in client.get("/drift/history", params={"version": "1"}).json()["reports"]] == [0]
        assert client.get("/drift/history").json()["reports"] == []
        assert client.get("/drift/windows/0", params={"version": "1"}).status_code == 200
        assert client.get("/drift/windows/0").status_code == 404
        assert client.get("/performance", params={"version": "1"}).json()["predictions"] == WINDOW
        assert client.get("/performance").json()["model_version"] == "2"
        assert client.get("/performance", params={"version": "nope"}).status_code == 404
        assert client.get("/drift/timeline", params={"version": "1"}).json()["model_version"] == "1"
        assert client.get("/drift/histograms/0", params={"version": "1"}).status_code == 200
        # A version the model never registered is a 404 naming it on every read (the drift reads
        # answered it as a version with no window yet: 200, insufficient_data); a malformed one is a 422.
        for path in ("/drift", "/drift/window", "/drift/history", "/drift/windows/0", "/drift/timeline",
                     "/drift/histograms/0", "/performance", f"/models/{metadata.name}/drift"):
            unknown = client.get(path, params={"version": "nope"})
            assert unknown.status_code == 404 and "'nope'" in unknown.json()["detail"], (path, unknown.text)
            assert client.get(path, params={"version": "x" * 201}).json()["detail"][0]["loc"] == ["query", "version"]


def test_series_keys_need_a_version_and_share_the_models_slot() -> None:
    keys = Keys("m")
    with pytest.raises(ValueError, match="needs a version"):
        _ = keys.drift_reports
    series = keys.for_version("2")
    assert series.drift_reports == "driftwatch:{m}:v:2:drift:reports"
    assert series.predictions == keys.predictions and series.confusion_total == keys.confusion_total
