"""Feedback that carries its prediction, end to end: ``driftwatch.Client`` and raw HTTP to a real
``driftwatch serve --ingest-only`` process, a real redis-server, the real monitor.

A model registered with ``label_join: carried`` stores no join state for its predictions; its
labels carry the predicted class and the prediction's time, and the monitor's accuracy per
window is that of the labels sent, each counted once however often it is sent. A label without
what such a model needs, or a ``prediction`` without its ``prediction_timestamp``, is a 422
naming the field and the row.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
import redis
import redis.asyncio as aioredis

from driftwatch import Client
from monitor.assembly import assemble_monitor
from monitor.monitor_settings import MonitorSettings
from monitor.performance_report import performance_report
from shared.ids import internal_prediction_id, new_prediction_ids
from shared.keys import Keys
from tests.integration.model_service.registered import churn, ingest_process, ingest_service, register, wait_until
from tests.support.polling import until

pytestmark = pytest.mark.timeout(180)
CARRIED = churn().model_copy(update={"label_join": "carried"})
CHURN = Keys("churn")
T0 = 1_767_225_600_000


@pytest.fixture
def service(redis_url: str, tmp_path: Path) -> Iterator[str]:
    """``driftwatch serve --ingest-only`` with churn registered as a "carried" model."""
    with ingest_process(redis_url, tmp_path / "spill", CARRIED) as url:
        yield url


async def test_carried_labels_through_the_client_and_the_route_give_each_windows_accuracy(
    service: str, aredis: aioredis.Redis, redis_client: redis.Redis, redis_url: str
) -> None:
    n, window = 300, 100
    rng = np.random.default_rng(5)
    x = rng.normal(size=(n, 4)).astype(np.float32)
    classes = rng.integers(0, 2, n)
    names = np.array(["stay", "leave"])
    stamps = T0 + np.arange(n, dtype=np.int64) * 1_000
    truth = np.where(rng.random(n) < np.repeat([0.9, 0.7, 0.5], window), classes, 1 - classes)  # accuracy falls
    settings = MonitorSettings(REDIS_URL=redis_url, DRIFTWATCH_MODEL_NAME="churn", DRIFTWATCH_WINDOW_SIZE=window,
                               DRIFTWATCH_READ_BLOCK_MS=50)
    monitor = assemble_monitor(aredis, settings, "test-consumer")
    monitor.start()
    try:
        with Client(service, flush_on_exit=False) as client:
            ids = client.log("churn", x, names[classes], np.eye(2, dtype=np.float32)[classes],
                             ids=[f"req-{i}" for i in range(n)], timestamps=stamps)
            assert client.flush(60)
            stats = monitor.consumer.stats
            await until(lambda: stats.predictions == n, what="predictions counted")
            join_keys = [k for k in redis_client.scan_iter(match=CHURN.join_state_pattern)
                         if k != CHURN.join_shards.encode()]
            assert join_keys == []  # no state per prediction

            # Labels long after, in any order, 200 through the client and 100 over raw HTTP, one batch twice.
            order = rng.permutation(n)
            by_client, by_http = order[:200], order[200:]
            client.feedback("churn", [ids[i] for i in by_client], names[truth[by_client]],
                            timestamps=T0 + 86_400_000, prediction_timestamps=stamps[by_client],
                            predictions=names[classes[by_client]])
            client.feedback("churn", [ids[i] for i in by_client[:50]], names[truth[by_client[:50]]],
                            prediction_timestamps=stamps[by_client[:50]], predictions=names[classes[by_client[:50]]],
                            version="1")  # re-sent
            assert client.flush(60) and client.stats.rejected_rows == 0
        labels = [{"id": ids[i], "label": str(names[truth[i]]), "prediction": str(names[classes[i]]),
                   "prediction_timestamp": int(stamps[i])} for i in by_http.tolist()]
        async with httpx.AsyncClient() as http:
            response = await http.post(f"{service}/models/churn/feedback", json={"labels": labels})
        assert response.status_code == 202, response.text

        await until(lambda: stats.feedback == n and stats.duplicates == 50, what="labels counted")
        report = await performance_report(aredis, CHURN, ["stay", "leave"], monitor.window_index)
        assert report.labelled == n and report.accuracy == pytest.approx(float(np.mean(truth == classes)))
        per_window = {w.window: w for w in report.windows}
        for w in range(3):
            rows = slice(w * window, (w + 1) * window)
            assert per_window[w].labelled == window
            assert per_window[w].accuracy == pytest.approx(float(np.mean(truth[rows] == classes[rows])))
    finally:
        await monitor.stop()


def test_labels_without_what_a_carried_model_needs_are_422_naming_field_and_row(service: str) -> None:
    good = {"id": "req-0", "label": "stay", "prediction": "leave", "prediction_timestamp": "2026-01-01T00:00:00Z"}
    labels = [
        good,
        {"id": "req-1", "label": "stay", "prediction_timestamp": T0},  # no prediction: a carried model needs it
        {"id": "req-2", "label": "stay", "prediction": "leave"},  # prediction without its time
        {"id": "req-3", "label": "stay", "prediction": "maybe", "prediction_timestamp": T0},  # no such class
        {"id": "req-4", "label": "stay", "prediction": "stay", "prediction_timestamp": T0, "version": "a b"},
        # a version never registered: it would be counted in the model's totals under keys that never expire
        {"id": "req-5", "label": "stay", "prediction": "stay", "prediction_timestamp": T0, "version": "99"},
        {"id": "req-6", "label": "stay", "prediction": "stay", "prediction_timestamp": T0, "version": "1"},
    ]
    response = httpx.post(f"{service}/models/churn/feedback", json={"labels": labels})
    assert response.status_code == 422, response.text
    body = response.json()
    assert [tuple(e["loc"][2:4]) for e in body["detail"]] == [
        (1, "prediction"), (2, "prediction_timestamp"), (3, "prediction"), (4, "version"), (5, "version")]
    assert "label_join 'carried'" in body["detail"][0]["msg"]
    assert "no version '99'" in body["detail"][4]["msg"]
    assert body["accepted"] == 2 and body["accepted_ids"] == ["req-0", "req-6"]


async def test_a_by_id_model_takes_labels_with_or_without_their_prediction(
    aredis: aioredis.Redis, redis_client: redis.Redis, redis_url: str
) -> None:
    await register(aredis, churn())
    pid = new_prediction_ids(1, T0)[0]
    labels = [
        {"id": pid, "label": "stay"},  # joined by id
        {"id": "req-1", "label": "leave", "prediction": "stay", "prediction_timestamp": T0 + 1, "version": "1"},
        {"id": "req-2", "label": "stay", "version": "1"},  # a version names a carried prediction's: none here
        {"id": pid, "label": "stay", "prediction": "leave"},  # no time for the prediction it carries
    ]
    with ingest_service(redis_url) as client:
        response = client.post("/models/churn/feedback", json={"labels": labels})
        assert response.status_code == 422, response.text
        assert [tuple(e["loc"][2:4]) for e in response.json()["detail"]] == [(2, "version"),
                                                                            (3, "prediction_timestamp")]
        wait_until(lambda: redis_client.xlen(CHURN.feedback) == 2)
    by_id, carried = (fields for _, fields in redis_client.xrange(CHURN.feedback))
    assert b"py" not in by_id and by_id[b"id"] == pid.encode()
    assert (carried[b"py"], carried[b"pts"], carried[b"mv"], carried[b"label"]) == (b"0", str(T0 + 1).encode(),
                                                                                   b"1", b"1")
    assert carried[b"id"] == internal_prediction_id("req-1", T0 + 1).encode()
