"""``driftwatch.Client`` against the real model service: ``driftwatch serve --ingest-only`` as a
process, a real redis-server, models registered as ``driftwatch register`` registers them."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import redis

from driftwatch import Client
from shared.events import decode_feedback, decode_predictions
from shared.ids import internal_prediction_id
from shared.keys import Keys
from tests.integration.model_service.registered import churn, fraud, ingest_process, wait_until

pytestmark = pytest.mark.timeout(180)


@pytest.fixture
def service(redis_url: str, tmp_path: Path) -> Iterator[str]:
    with ingest_process(redis_url, tmp_path / "spill", churn(), fraud()) as url:
        yield url


def _entries(r: redis.Redis, stream: str) -> list[dict[bytes, bytes]]:
    return [fields for _, fields in r.xrange(stream)]


def test_logged_rows_reach_the_stream_with_their_ids_nulls_and_labels(service: str, redis_client: redis.Redis) -> None:
    rng = np.random.default_rng(0)
    n = 1200
    x = rng.normal(size=(n, 4)).astype(np.float32)
    x[::7, 1] = np.nan  # nulls: missing, never a number
    probabilities = rng.dirichlet([1, 1], n).astype(np.float32)
    predicted = np.array(["stay", "leave"])[probabilities.argmax(axis=1)]
    with Client(service, flush_on_exit=False) as client:
        ids = [i for s in range(0, n, 100)
               for i in client.log("churn", x[s : s + 100], predicted[s : s + 100], probabilities[s : s + 100])]
        assert client.flush(60)
        assert client.feedback("churn", ids[:300], predicted[:300]) == 300
        assert client.flush(60)
        stats = client.stats
    assert stats.sent_rows == n + 300 and stats.rejected_rows == stats.dropped_rows == 0, stats
    keys = Keys("churn")
    wait_until(lambda: redis_client.xlen(keys.predictions) == n and redis_client.xlen(keys.feedback) == 300)
    batch = decode_predictions(_entries(redis_client, keys.predictions))
    order = np.argsort(np.array(batch.ids))
    sent_order = np.argsort(np.array(ids))
    assert sorted(batch.ids) == sorted(ids)
    np.testing.assert_array_equal(batch.features[order], x[sent_order])  # NaN where sent null (equal_nan)
    assert batch.classes[order].tolist() == (predicted[sent_order] == "leave").astype(int).tolist()
    np.testing.assert_allclose(batch.probabilities[order], probabilities[sent_order])
    labels = decode_feedback(_entries(redis_client, keys.feedback))
    assert sorted(labels.ids) == sorted(ids[:300])


def test_own_ids_boolean_labels_and_refusals_are_counted(service: str, redis_client: redis.Redis) -> None:
    with Client(service, flush_on_exit=False) as client:
        ids = client.log("fraud", np.array([[10.0], [99.0]]), np.array([False, True]), ids=["tx-1", "tx-2"],
                         timestamps=[1_767_225_600_000, 1_767_225_601_000])
        assert ids == ["tx-1", "tx-2"]
        client.feedback("fraud", ids, [False, False], prediction_timestamps=[1_767_225_600_000, 1_767_225_601_000])
        client.log("fraud", np.zeros((3, 2)), [True, False, True])  # two features for a one-feature model
        client.log("nope", np.zeros((1, 1)), [True])  # not registered
        assert client.flush(60)
        stats = client.stats
    assert stats.sent_rows == 4 and stats.rejected_rows == 4, stats
    assert set(stats.failures) == {"rows refused for fraud", "unknown model nope"}
    keys = Keys("fraud")
    wait_until(lambda: redis_client.xlen(keys.predictions) == 2 and redis_client.xlen(keys.feedback) == 2)
    stored = decode_predictions(_entries(redis_client, keys.predictions))
    assert stored.ids == [internal_prediction_id("tx-1", 1_767_225_600_000),
                          internal_prediction_id("tx-2", 1_767_225_601_000)]
    assert stored.classes.tolist() == [0, 1]
    assert sorted(decode_feedback(_entries(redis_client, keys.feedback)).ids) == sorted(stored.ids)
