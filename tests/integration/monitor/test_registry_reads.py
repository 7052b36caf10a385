"""The monitor's registry reads decode each version's metadata once per stored content
(monitor.registry_reads), and never answer from a stale decoding: on the monitor app with a real Redis."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from typing import Any

import pytest
import redis
import redis.asyncio as aioredis
from fastapi.testclient import TestClient
from pydantic import ValidationError

from monitor.app import create_app
from monitor.monitor_settings import MonitorSettings
from monitor.registry_reads import DECODE_INLINE_BYTES, RegistryReader
from shared.keys import Keys
from shared.model_metadata import ModelMetadata
from shared.registry import metadata_field, register_model, status_field
from tests.integration.monitor.helpers import small_model

KEY = "registry-key"


@pytest.fixture
def api(redis_url: str) -> Iterator[TestClient]:
    """A monitor that watches no model on its own (no default, no discovery poll during a test,
    no alerts): what Redis sees during a request is the request's."""
    settings = MonitorSettings(
        REDIS_URL=redis_url,
        DRIFTWATCH_NO_DEFAULT_MODEL=True,
        DRIFTWATCH_DISCOVERY_INTERVAL_S=300,
        DRIFTWATCH_ALERTS_ENABLED=False,
    )
    with TestClient(create_app(settings)) as client:
        yield client


def register(redis_url: str, metadata: ModelMetadata, *, seed: int = 1) -> None:
    """Through the registry's own registration (shared.registry.register_model)."""

    async def go() -> None:
        client = aioredis.Redis.from_url(redis_url)
        try:
            await register_model(client, Keys(metadata.name), metadata, small_model(metadata.name, "x", seed)[1])
        finally:
            await client.aclose()

    asyncio.run(go())


def model(name: str, version: str, *, seed: int = 1, created_at: str = "2026-12-01T00:00:00+00:00") -> ModelMetadata:
    return small_model(name, version, seed)[0].model_copy(update={"created_at": created_at})


def listing(api: TestClient) -> dict[str, list[tuple[str, str, str, int]]]:
    """Each listed model's versions as (version, status, created_at, n_features), in the answer's order."""
    answer = api.get("/models")
    assert answer.status_code == 200, answer.text
    return {
        m["name"]: [(v["version"], v["status"], v["created_at"], v["n_features"]) for v in m["versions"]]
        for m in answer.json()["models"]
    }


def test_reads_of_an_unchanged_registry_decode_no_metadata_again(
    api: TestClient, redis_url: str, redis_client: redis.Redis
) -> None:
    # The reads' own count: the monitor's other tasks (the model catalog, answering a registration)
    # decode metadata too, at moments of their own, so a process-wide count races with them.
    reader: RegistryReader = api.app.state.registry  # type: ignore[attr-defined]
    for name in ("churn", "fraud"):
        for version in ("1", "2", "3"):
            register(redis_url, model(name, version, seed=int(version)))
    first = api.get("/models").json()
    assert [len(m["versions"]) for m in first["models"]] == [3, 3]
    assert reader.decodes == 6  # each version once

    with redis_client.monitor() as monitor:  # every command the server runs, in order (Redis MONITOR)
        for _ in range(3):
            assert api.get("/models").json() == first
        assert api.get("/models/churn").status_code == 200
        redis_client.echo("done")
        commands = []
        for seen in monitor.listen():
            if seen["command"] == "ECHO done":
                break
            commands.append(seen["command"])
    assert reader.decodes == 6  # it decoded every version's metadata on every read
    # The registry: one HGETALL a model a listing, one for the one model read; nothing a version
    # (each version's window series is read apart, for its newest report), no reference read.
    registry = {Keys(name).model_info for name in ("churn", "fraud")}
    touched = [c.split()[0] for c in commands if any(key in c.split()[1:2] for key in registry)]
    assert touched == ["HGETALL"] * (3 * 2 + 1)
    assert not [c for c in commands if ":reference:" in c]


def test_the_listing_sees_new_retired_re_registered_and_removed_versions(
    api: TestClient, redis_url: str, redis_client: redis.Redis
) -> None:
    day = "2026-12-01T00:00:00+00:00"
    register(redis_url, model("churn", "1", created_at=day))
    assert listing(api) == {"churn": [("1", "active", "2026-12-01T00:00:00Z", 4)]}

    register(redis_url, model("churn", "2", seed=2, created_at="2026-12-01T01:00:00+00:00"))
    assert [v[0] for v in listing(api)["churn"]] == ["1", "2"]

    assert api.delete("/models/churn/versions/1").status_code == 200
    assert listing(api)["churn"][0][:2] == ("1", "retired")

    # The same model again, later: active again, and its new created_at orders it after version 2.
    register(redis_url, model("churn", "1", created_at="2026-12-01T02:00:00+00:00"))
    assert listing(api) == {
        "churn": [("2", "active", "2026-12-01T01:00:00Z", 4), ("1", "active", "2026-12-01T02:00:00Z", 4)]
    }
    detail = api.get("/models/churn").json()
    assert [v["metadata"]["created_at"] for v in detail["versions"]] == [
        "2026-12-01T01:00:00+00:00",
        "2026-12-01T02:00:00+00:00",
    ]

    # A version removed from the hash is gone from both reads.
    redis_client.hdel(Keys("churn").model_info, metadata_field("2"), status_field("2"))
    assert [v[0] for v in listing(api)["churn"]] == ["1"]
    assert [v["metadata"]["version"] for v in api.get("/models/churn").json()["versions"]] == ["1"]

    # The hash removed and the name+version registered again as another model: the new one is read.
    redis_client.delete(Keys("churn").model_info)
    assert listing(api) == {} and api.get("/models/churn").status_code == 404
    other = model("churn", "1", seed=9).model_copy(update={"feature_names": ["x", "y"], "categorical": [False] * 2})
    register(redis_url, other)
    assert listing(api) == {"churn": [("1", "active", "2026-12-01T00:00:00Z", 2)]}
    assert api.get("/models/churn").json()["versions"][0]["metadata"]["feature_names"] == ["x", "y"]


async def test_concurrent_first_reads_share_one_decoding_a_version(aredis: aioredis.Redis) -> None:
    for version in ("1", "2"):
        metadata, reference = small_model("churn", version, int(version))
        await register_model(aredis, Keys("churn"), metadata, reference)
    reader = RegistryReader(aredis)
    answers = await asyncio.gather(*(reader.models(["churn"]) for _ in range(20)))
    assert reader.decodes == 2
    assert all(a == answers[0] for a in answers) and [v.version for v in answers[0][0].versions] == ["1", "2"]


async def test_metadata_that_cannot_be_decoded_fails_each_read_until_it_can(aredis: aioredis.Redis) -> None:
    """As before the cache: the read fails (the route's 500 names nothing of the client's); a
    failed decoding is not kept, so the read after the hash is mended answers."""
    metadata, reference = small_model("churn", "1")
    await register_model(aredis, Keys("churn"), metadata, reference)
    good = await aredis.hget(Keys("churn").model_info, metadata_field("1"))
    await aredis.hset(Keys("churn").model_info, metadata_field("1"), b"{not json")
    reader = RegistryReader(aredis)
    for _ in range(2):
        with pytest.raises(ValidationError):
            await reader.models(["churn"])
    assert reader.decodes == 2
    await aredis.hset(Keys("churn").model_info, metadata_field("1"), good)
    (found,) = await reader.models(["churn"])
    assert found.versions[0].metadata == metadata


async def test_large_metadata_is_decoded_off_the_event_loop(
    aredis: aioredis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A version of thousands of features (~100 kB of JSON, tens of ms to decode) is decoded in a
    worker thread; a small one on the loop, where a thread's hop would cost more than it saves."""
    small, reference = small_model("churn", "1")
    wide = small.model_copy(
        update={
            "version": "2",
            "feature_names": [f"feature_{i}" for i in range(6_000)],
            "categorical": [False] * 6_000,
            "data": small.data.model_copy(update={"sha256": "f" * 64}),
        }
    )
    for metadata in (small, wide):
        await register_model(aredis, Keys("churn"), metadata, reference)
    assert len(await aredis.hget(Keys("churn").model_info, metadata_field("2"))) > DECODE_INLINE_BYTES
    threads: dict[int, int] = {}
    decode = ModelMetadata.model_validate_json.__func__  # type: ignore[attr-defined]

    def recording(cls: type[ModelMetadata], raw: Any, **kwargs: Any) -> ModelMetadata:
        found: ModelMetadata = decode(cls, raw, **kwargs)
        threads[found.n_features] = threading.get_ident()
        return found

    monkeypatch.setattr(ModelMetadata, "model_validate_json", classmethod(recording))
    (found,) = await RegistryReader(aredis).models(["churn"])
    assert [v.metadata.n_features for v in found.versions] == [4, 6_000]
    assert threads[4] == threading.get_ident() != threads[6_000]
