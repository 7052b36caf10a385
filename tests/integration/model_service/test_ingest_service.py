"""The ingest path without HTTP: missing values and refused rows are counted per model and
feature in the metrics, and the registered-model cache serves what it knows while Redis is away."""

from __future__ import annotations

import asyncio
import json
import logging

import pytest
import redis.asyncio as aioredis
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from redis.exceptions import ConnectionError as RedisConnectionError

from driftwatch.local_processes import LocalRedisServer
from model_service.ingest_service import IngestService
from model_service.publisher import EventPublisher
from model_service.registered_models import RegisteredModels
from shared.keys import Keys
from shared.telemetry import ModelServiceMetrics
from tests.integration.model_service.registered import churn, churn_rows, register

pytestmark = pytest.mark.timeout(60)


def _points(reader: InMemoryMetricReader, name: str) -> dict[tuple[tuple[str, object], ...], float]:
    data = reader.get_metrics_data()
    assert data is not None
    return {
        tuple(sorted(p.attributes.items())): p.value
        for rm in data.resource_metrics for sm in rm.scope_metrics for m in sm.metrics if m.name == name
        for p in m.data.data_points
    }


async def test_missing_values_and_refused_rows_are_counted_by_model_and_feature(
    aredis: aioredis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("OTEL_SDK_DISABLED")
    await register(aredis, churn())
    reader = InMemoryMetricReader()
    metrics = ModelServiceMetrics(MeterProvider(metric_readers=[reader]).get_meter("t"), model=None)
    publisher = EventPublisher(aredis, maxlen=10_000, metrics=metrics)
    models = RegisteredModels(aredis, on_new=lambda s: metrics.track_model(s.name, s.version))
    ingest = IngestService(models, publisher, metrics)
    schema = await ingest.schema("churn")
    rows = churn_rows(4)
    rows[0]["features"][1] = None
    rows[1]["features"] = {"age": 1.0, "income": 2.0}  # tenure and plan missing
    rows[2]["features"][1] = None
    rows[3]["prediction"] = "maybe"  # refused: its missing values are not counted
    rows[3]["features"][0] = None
    body = ingest.bodies(schema).predictions.model_validate_json(json.dumps({"rows": rows}))
    logged = ingest.predictions(schema, body.rows)  # type: ignore[attr-defined]
    assert len(logged.ids) == 3 and logged.missing == {"income": 2, "tenure": 1, "plan": 1}
    publisher.start()
    await publisher.close()
    assert await aredis.xlen(Keys("churn").predictions) == 3

    version = (("model", "churn"), ("model.version", "1"))
    assert _points(reader, "driftwatch.ingest.missing_values") == {
        (("feature", "income"), *version): 2, (("feature", "plan"), *version): 1,
        (("feature", "tenure"), *version): 1,
    }
    rows_seen = _points(reader, "driftwatch.ingest.rows")
    assert rows_seen[(*version, ("outcome", "accepted"), ("source", "predictions"))] == 3
    assert rows_seen[(*version, ("outcome", "rejected"), ("source", "predictions"))] == 1
    published = _points(reader, "driftwatch.events.published")
    assert published[(*version, ("stream", "predictions"))] == 3
    dropped = _points(reader, "driftwatch.events.dropped")  # exported at 0 from the model's first sight
    assert dropped[(*version, ("reason", "queue_full"), ("stream", "predictions"))] == 0


async def test_the_cache_serves_a_known_model_while_redis_is_away_and_asks_again_for_unknown_names() -> None:
    now = [0.0]
    with LocalRedisServer() as server:
        client = aioredis.Redis.from_url(server.url, socket_timeout=1.0, socket_connect_timeout=1.0)
        await register(client, churn())
        models = RegisteredModels(client, ttl_s=5.0, miss_ttl_s=1.0, clock=lambda: now[0])
        assert (await models.get("churn")).version == "1"  # type: ignore[union-attr]
        assert await models.get("churn-b") is None
        await register(client, churn("2"), churn("1").model_copy(update={"name": "churn-b"}))
        assert await models.get("churn-b") is None  # an unknown name is remembered for a second
        now[0] = 1.5
        assert (await models.get("churn-b")).version == "1"  # type: ignore[union-attr]
        assert (await models.get("churn")).version == "1"  # type: ignore[union-attr]  # cached
        now[0] = 6.0  # expired: the first request after the TTL uses the new version (a client that
        # waited the documented TTL would otherwise get its rows refused, finally, by the old schema)
        assert (await models.get("churn")).version == "2"  # type: ignore[union-attr]

        server.stop()
        now[0] = 20.0
        assert (await models.get("churn")).version == "2"  # type: ignore[union-attr]  # Redis away: the last known
        await asyncio.sleep(0.1)
        assert (await models.get("churn")).version == "2"  # type: ignore[union-attr]
        with pytest.raises(RedisConnectionError):
            await models.get("never-seen")  # nothing to fall back on: the caller answers 503
        await models.close()
        await client.aclose()


async def test_refreshes_failing_while_redis_is_away_are_said_once(caplog: pytest.LogCaptureFixture) -> None:
    """Each failed refresh (every TTL, per model with traffic) logged a warning: with Redis stopped a
    minute, 12 lines per model. Now the outage is one line, and its end one."""
    now = [0.0]
    quiet = caplog.at_level(logging.DEBUG, logger="model_service.registered_models")
    with LocalRedisServer(appendonly=True) as server, quiet:
        client = aioredis.Redis.from_url(server.url, socket_timeout=1.0, socket_connect_timeout=1.0)
        await register(client, churn(), churn("1").model_copy(update={"name": "churn-b"}))
        models = RegisteredModels(client, ttl_s=5.0, clock=lambda: now[0])
        for name in ("churn", "churn-b"):
            assert await models.get(name) is not None
        server.stop()
        for attempt in range(1, 4):  # three TTLs of outage, two models with traffic
            now[0] = 6.0 * attempt
            for name in ("churn", "churn-b"):
                assert (await models.get(name)).version == "1"  # type: ignore[union-attr]
                await asyncio.gather(*models._refreshing.values(), return_exceptions=True)  # the refresh is over
        failures = [r for r in caplog.records if "Redis unavailable" in r.getMessage()]
        assert len(failures) == 6 and [r.levelno for r in failures].count(logging.WARNING) == 1

        server.start()
        now[0] = 30.0
        assert await models.get("churn") is not None
        await asyncio.gather(*models._refreshing.values(), return_exceptions=True)
        assert (await models.get("churn")).version == "1"  # type: ignore[union-attr]
        assert [r.getMessage() for r in caplog.records if "answers again" in r.getMessage()] == [
            "registered models: Redis answers again"]
        await models.close()
        await client.aclose()
