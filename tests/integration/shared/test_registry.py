"""A name+version never changes meaning once registered (issue 12, item 1)."""

from __future__ import annotations

from pathlib import Path

import pytest
import redis
import redis.asyncio as aioredis
from fastapi.testclient import TestClient

from model_service.app import create_app
from model_service.serving_settings import ModelServiceSettings
from shared.keys import MODELS_INDEX, Keys
from shared.model_metadata import ModelMetadata, Reference
from shared.registry import ModelIdentityConflict, read_registered_model, register_model
from tests.integration.monitor.helpers import small_model
from tests.support.prom_stack import poll


async def test_another_model_under_a_registered_name_and_version_is_refused(
    aredis: aioredis.Redis, model_dir: Path
) -> None:
    digits, reference = ModelMetadata.load(model_dir), Reference.load(model_dir)
    keys = Keys(digits.name)
    await register_model(aredis, keys, digits, reference)
    await register_model(aredis, keys, digits.model_copy(update={"created_at": "later"}), reference)  # same model

    mine, mine_reference = small_model(digits.name, digits.version)
    with pytest.raises(ModelIdentityConflict) as refused:
        await register_model(aredis, keys, mine, mine_reference)
    message = str(refused.value)
    assert f"model {digits.name!r} version {digits.version!r}" in message
    assert "64 features (pixel_0_0" in message and digits.data.sha256[:12] in message  # what Redis holds
    assert "4 features (a, b, c, d)" in message and mine.data.sha256[:12] in message  # what was offered
    registered = await read_registered_model(aredis, keys, digits.version)
    assert registered is not None and registered[0].feature_names == digits.feature_names  # untouched

    for changed in ({"class_names": [str(c) for c in range(9, -1, -1)]},
                    {"data": digits.data.model_copy(update={"sha256": "0" * 64})}):
        with pytest.raises(ModelIdentityConflict):
            await register_model(aredis, keys, digits.model_copy(update=changed), reference)
    await register_model(aredis, keys, mine.model_copy(update={"version": "2"}), mine_reference)  # a new version


async def test_the_model_service_refuses_to_start_over_another_model(
    aredis: aioredis.Redis, redis_url: str, model_dir: Path
) -> None:
    digits = ModelMetadata.load(model_dir)
    mine, mine_reference = small_model(digits.name, digits.version)
    await register_model(aredis, Keys(digits.name), mine, mine_reference)
    app = create_app(ModelServiceSettings(REDIS_URL=redis_url, DRIFTWATCH_MODEL_DIR=str(model_dir)))
    with pytest.raises(ModelIdentityConflict, match="already registered in Redis as a different model"), \
            TestClient(app):
        pass


async def test_every_registration_lists_the_model_name_in_the_models_index(aredis: aioredis.Redis) -> None:
    mine, mine_reference = small_model("mine", "1")
    assert await aredis.smembers(MODELS_INDEX) == set()
    await register_model(aredis, Keys("mine"), mine, mine_reference)
    await register_model(aredis, Keys("mine"), mine.model_copy(update={"version": "2"}), mine_reference)
    theirs, theirs_reference = small_model("theirs", "7", seed=2)
    await register_model(aredis, Keys("theirs"), theirs, theirs_reference)
    assert await aredis.smembers(MODELS_INDEX) == {b"mine", b"theirs"}


async def test_a_refused_registration_does_not_list_a_new_name(aredis: aioredis.Redis) -> None:
    mine, mine_reference = small_model("mine", "1")
    await aredis.hset(Keys("mine").model_info, "metadata:1",
                      mine.model_copy(update={"feature_names": ["w", "x", "y", "z"]}).model_dump_json())
    with pytest.raises(ModelIdentityConflict):
        await register_model(aredis, Keys("mine"), mine, mine_reference)
    assert await aredis.smembers(MODELS_INDEX) == set()


async def test_the_same_inputs_with_another_task_or_label_kind_is_another_model(aredis: aioredis.Redis) -> None:
    mine, mine_reference = small_model("mine", "1")
    await register_model(aredis, Keys("mine"), mine, mine_reference)
    for changed in ({"label_kind": "string"}, {"has_probabilities": False},
                    {"task": "regression", "class_names": []}):
        with pytest.raises(ModelIdentityConflict) as refused:
            await register_model(aredis, Keys("mine"), mine.model_copy(update=changed), mine_reference)
        assert "integer labels" in str(refused.value)


def test_the_model_service_lists_its_model_when_it_registers(
    redis_url: str, redis_client: redis.Redis, model_dir: Path
) -> None:
    digits = ModelMetadata.load(model_dir)
    app = create_app(ModelServiceSettings(REDIS_URL=redis_url, DRIFTWATCH_MODEL_DIR=str(model_dir)))
    with TestClient(app):  # registration may finish in the background when Redis is slow: poll
        listed = poll("model listed", lambda: digits.name.encode() in redis_client.smembers(MODELS_INDEX) or None,
                      timeout_s=30)
    assert listed
