"""PUT/GET/DELETE /models on the monitor (issue 15 part 1), on the monitor app with a real Redis."""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import redis
from fastapi.testclient import TestClient
from pydantic import SecretStr

from monitor.app import create_app
from monitor.monitor_settings import MonitorSettings
from shared.api_auth import API_KEY_HEADER
from shared.keys import MODELS_INDEX, Keys
from shared.model_metadata import Reference
from shared.registry import read_current_version, register_model, retired_field
from tests.integration.monitor.helpers import small_model

KEY = "registry-key"
URL = "/models/churn/versions/1"


@pytest.fixture
def api(redis_url: str) -> Iterator[TestClient]:
    settings = MonitorSettings(REDIS_URL=redis_url, DRIFTWATCH_API_KEY=SecretStr(KEY), DRIFTWATCH_MAX_BODY_BYTES=50_000,
                               DRIFTWATCH_MAX_REGISTRATION_BYTES=200_000, DRIFTWATCH_RETIRED_RETENTION_S=3_600)
    with TestClient(create_app(settings), headers={API_KEY_HEADER: KEY}) as client:
        yield client


def body(n: int = 400, seed: int = 0, **spec: Any) -> dict[str, Any]:
    rng = np.random.default_rng(seed)
    probs = rng.dirichlet([1, 1], n)
    age = rng.normal(40, 10, n).round(1).tolist()
    age[3] = None  # missing
    return {
        "metadata": {"feature_names": ["age", "plan"], "prediction_column": "churned",
                     "probability_columns": ["p_false", "p_true"], "label_column": "truth", **spec},
        "reference": {
            "age": age, "plan": rng.integers(0, 3, n).tolist(),
            "churned": (probs[:, 1] > 0.5).tolist(), "p_false": probs[:, 0].tolist(), "p_true": probs[:, 1].tolist(),
            "truth": [None if i % 4 == 0 else bool(v) for i, v in enumerate(rng.integers(0, 2, n))],
        },
    }


def locs(response: Any) -> list[list[Any]]:
    return [e["loc"] for e in response.json()["detail"]]


def test_a_json_registration_is_stored_listed_and_read_back(api: TestClient, redis_client: redis.Redis) -> None:
    sent = body()
    created = api.put(URL, json=sent)
    assert created.status_code == 201, created.text
    answer = created.json()
    assert answer["created"] and answer["reference_rows"] == 400 and answer["sample_rows"] == 400
    metadata = answer["metadata"]
    assert (metadata["label_kind"], metadata["class_names"], metadata["has_probabilities"]) == (
        "boolean", ["false", "true"], True)
    assert metadata["categorical"] == [False, True] and metadata["training"] is None
    assert metadata["reference_summary"]["features"][0]["missing"] == 1
    assert redis_client.smembers(MODELS_INDEX) == {b"churn"}

    again = api.put(URL, json=sent)  # the same model again: fine, not new
    assert again.status_code == 200 and not again.json()["created"]

    blob = redis_client.get(Keys("churn").reference("1"))
    reference = Reference.from_bytes(blob)
    expected = [int(v) for v in sent["reference"]["churned"]]
    assert reference.predicted_classes.tolist() == expected
    assert reference.labels.tolist() == [-1 if t is None else int(t) for t in sent["reference"]["truth"]]

    listing = api.get("/models").json()["models"]
    assert [m["name"] for m in listing] == ["churn"]
    (version,) = listing[0]["versions"]
    assert (listing[0]["status"], listing[0]["current_version"]) == ("active", "1")
    assert (version["version"], version["status"], version["windows"], version["last_report"]) == ("1", "active", 0,
                                                                                                    None)
    detail = api.get("/models/churn").json()
    assert detail["versions"][0]["metadata"]["feature_names"] == ["age", "plan"]
    assert api.get("/models/nobody").status_code == 404


def test_a_parquet_registration_gives_the_same_model_as_json(api: TestClient) -> None:
    sent = body()
    as_json = api.put("/models/a/versions/1", json=sent).json()["metadata"]
    table = pa.table({k: pa.array(v) for k, v in sent["reference"].items()})
    import orjson
    table = table.replace_schema_metadata({b"driftwatch": orjson.dumps(sent["metadata"])})
    buffer = io.BytesIO()
    pq.write_table(table, buffer)
    answer = api.put("/models/b/versions/1", content=buffer.getvalue(),
                     headers={"Content-Type": "application/vnd.apache.parquet"})
    assert answer.status_code == 201, answer.text
    as_parquet = answer.json()["metadata"]
    for field in ("class_names", "label_kind", "categorical", "reference_summary", "data"):
        assert as_parquet[field] == as_json[field], field


def test_a_version_registered_with_carried_labels_says_so(api: TestClient) -> None:
    answer = api.put(URL, json=body(label_join="carried"))
    assert answer.status_code == 201, answer.text
    assert answer.json()["metadata"]["label_join"] == "carried"
    assert api.put("/models/other/versions/1", json=body()).json()["metadata"]["label_join"] == "by-id"


def test_another_model_under_a_registered_version_is_409(api: TestClient) -> None:
    assert api.put(URL, json=body(seed=0)).status_code == 201
    refused = api.put(URL, json=body(seed=1))
    assert refused.status_code == 409 and "already registered in Redis as a different model" in refused.json()["detail"]


def test_writes_need_the_api_key(api: TestClient) -> None:
    assert api.put(URL, json=body(), headers={API_KEY_HEADER: ""}).status_code == 401
    assert api.put(URL, json=body(), headers={API_KEY_HEADER: "wrong"}).status_code == 403
    assert api.delete(URL, headers={API_KEY_HEADER: "wrong"}).status_code == 403
    assert api.get("/models", headers={API_KEY_HEADER: ""}).status_code == 200  # reads are open by default


@pytest.mark.parametrize(
    ("change", "loc"),
    [
        (lambda b: b["reference"]["age"].__setitem__(5, "old"), ["body", "reference", "age", 5]),
        (lambda b: b["reference"].pop("plan"), ["body", "reference", "plan"]),
        (lambda b: b["reference"]["p_true"].__setitem__(0, 2.0), ["body", "reference", "p_true", 0]),
        (lambda b: b["metadata"].__setitem__("task", "ranking"), ["body", "metadata", "task"]),
        (lambda b: b["metadata"].__setitem__("class_names", ["a", "b"]), ["body", "reference", "churned"]),
        (lambda b: b.pop("metadata"), ["body", "metadata"]),
        (lambda b: b["reference"].__setitem__("age", 7), ["body", "reference", "age"]),
        (lambda b: b["reference"]["age"].__setitem__(2, [1.0]), ["body", "reference", "age", 2]),
        (lambda b: b["reference"]["age"].__setitem__(2, 1e300), ["body", "reference", "age", 2]),
        (lambda b: b["reference"]["churned"].__setitem__(1, [True]), ["body", "reference", "churned"]),
        (lambda b: b["reference"].__setitem__("churned", [[True], [False, True]] * 200), ["body", "reference",
                                                                                           "churned"]),
        (lambda b: b["reference"]["truth"].__setitem__(1, {"a": 1}), ["body", "reference", "truth", 1]),
        (lambda b: b.__setitem__("metadata", None), ["body", "metadata"]),
        (lambda b: b["metadata"].__setitem__("feature_names", []), ["body", "metadata", "feature_names"]),
        (lambda b: b["metadata"].__setitem__("label_join", "by-time"), ["body", "metadata", "label_join"]),
        # Names past what an alert rule (256) or a logged label (1,000) can carry: a 1 MB one was taken.
        (lambda b: (b["metadata"].__setitem__("feature_names", ["a" * 257, "plan"]),
                    b["reference"].__setitem__("a" * 257, b["reference"].pop("age"))),
         ["body", "metadata", "feature_names", 0]),
        (lambda b: b["metadata"].__setitem__("class_names", ["x" * 1_001, "True"]),
         ["body", "metadata", "class_names", 0]),
        (lambda b: b["metadata"].__setitem__("sample_rows", True), ["body", "metadata", "sample_rows"]),
        (lambda b: b["metadata"].__setitem__("sample_seed", "7"), ["body", "metadata", "sample_seed"]),
    ],
)
def test_bad_registrations_are_422_naming_the_field(api: TestClient, change: Any, loc: list[Any]) -> None:
    sent = body()
    change(sent)
    refused = api.put(URL, json=sent)
    assert refused.status_code == 422, refused.text
    assert loc in locs(refused)


def test_size_caps_are_413_for_the_body_and_422_for_the_rows(api: TestClient) -> None:
    big = api.put(URL, content=b"x" * 200_001, headers={"Content-Type": "application/json"})
    assert big.status_code == 413 and "200000 bytes" in big.json()["detail"]
    rows = {"metadata": {"feature_names": ["x"]}, "reference": {"x": [0] * 50_001}}
    too_many = api.put(URL, json=rows)
    assert too_many.status_code == 422 and locs(too_many) == [["body", "reference", "x"]]
    assert "at most 50000" in too_many.json()["detail"][0]["msg"]
    # Over the app's own 50 kB limit, within the registration's: accepted on this route only.
    sample = {"metadata": {"feature_names": ["x"], "prediction_column": "y"},
              "reference": {"x": [0.5] * 20_000, "y": [0, 1] * 10_000}}
    assert api.put("/models/x/versions/1", json=sample).status_code == 201
    rules = api.put("/alerts/thresholds", content=b" " * 60_000, headers={"Content-Type": "application/json"})
    assert rules.status_code == 413


def test_other_media_types_are_415(api: TestClient) -> None:
    refused = api.put(URL, content=b"a,b\n1,2\n", headers={"Content-Type": "text/csv"})
    assert refused.status_code == 415


def test_retiring_a_version_keeps_its_metadata_and_expires_its_data(
    api: TestClient, redis_client: redis.Redis
) -> None:
    assert api.put("/models/churn/versions/1", json=body()).status_code == 201
    assert api.put("/models/churn/versions/2", json=body(seed=2)).status_code == 201
    v1, v2 = Keys("churn", "1"), Keys("churn", "2")
    for series in (v1, v2):  # what the version's windows leave in Redis
        redis_client.hset(series.drift_reports, "0", "{}")
        redis_client.zadd(series.drift_index, {"0": 0})
        redis_client.rpush(series.window_rows(0), b"row")
    retired = api.delete("/models/churn/versions/2")
    assert retired.status_code == 200, retired.text
    versions = {v["metadata"]["version"]: v for v in retired.json()["versions"]}
    assert versions["2"]["status"] == "retired" and versions["1"]["status"] == "active"
    retired_at, expires_at = (datetime.fromisoformat(versions["2"][k]) for k in ("retired_at", "expires_at"))
    assert expires_at - retired_at == timedelta(seconds=3_600)
    assert abs(retired_at - datetime.now(UTC)) < timedelta(minutes=1)
    assert retired.json()["current_version"] == "1"  # the newest still-active version
    ttl = redis_client.ttl(Keys("churn").reference("2"))
    assert 3_500 < ttl <= 3_600 and redis_client.ttl(Keys("churn").reference("1")) == -1
    for key in (v2.drift_reports, v2.drift_index, v2.window_rows(0)):
        assert 3_500 < redis_client.ttl(key) <= 3_600, key  # the version's window series expires with it
    for key in (v1.drift_reports, v1.drift_index, v1.window_rows(0)):
        assert redis_client.ttl(key) == -1, key  # the active version's stays
    # A retired name+version still means its model: another model under it is refused.
    assert api.put("/models/churn/versions/2", json=body(seed=3)).status_code == 409
    # The same model registered again is active again and its data no longer expires.
    assert api.put("/models/churn/versions/2", json=body(seed=2)).status_code == 200
    assert redis_client.ttl(Keys("churn").reference("2")) == -1
    assert api.delete("/models/churn/versions/9").status_code == 404
    assert api.delete("/models/nobody/versions/1").status_code == 404


def test_a_model_retired_here_leaves_the_overview_before_the_answer(redis_url: str) -> None:
    """The monitor that answers the ``DELETE`` of a model's last active version drops that model
    before it answers: the next ``/overview`` and ``/readyz`` no longer list it, though its
    discovery poll (300 s here) has not run since. A version retired beside an active one
    leaves the model watched."""
    settings = MonitorSettings(REDIS_URL=redis_url, DRIFTWATCH_API_KEY=SecretStr(KEY),
                               DRIFTWATCH_DISCOVERY_INTERVAL_S=300, DRIFTWATCH_READ_BLOCK_MS=50)
    with TestClient(create_app(settings), headers={API_KEY_HEADER: KEY}) as api:

        def listed() -> list[str]:
            return [m["name"] for m in api.get("/overview").json()["models"]]

        for version, seed in (("1", 0), ("2", 2)):
            assert api.put(f"/models/churn/versions/{version}", json=body(seed=seed)).status_code == 201
        api.get("/models/churn/drift")  # a read naming it watches it at once (monitor/fleet.py)
        assert listed() == ["digits-mlp", "churn"]

        assert api.delete("/models/churn/versions/2").status_code == 200
        assert listed() == ["digits-mlp", "churn"]  # version 1 is still active
        assert api.delete("/models/churn/versions/1").status_code == 200
        assert listed() == ["digits-mlp"]
        assert "churn" not in api.get("/readyz").json()["models"]
        assert api.get("/models/churn/drift").status_code == 404


RFC_3339 = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$")


def test_every_time_of_the_registry_is_rfc_3339_and_older_epoch_state_is_read(
    api: TestClient, redis_client: redis.Redis
) -> None:
    """``retired_at`` was epoch seconds beside an RFC 3339 ``created_at``. Redis keeps epoch seconds
    (what every replica, upgraded or not, reads); the API answers RFC 3339."""
    for version, seed in (("1", 0), ("2", 2)):
        assert api.put(f"/models/churn/versions/{version}", json=body(seed=seed)).status_code == 201
    assert api.delete("/models/churn/versions/2").status_code == 200
    # Version 1 retired long ago, as Redis stores it: epoch seconds.
    redis_client.hset(Keys("churn").model_info, mapping={"status:1": "retired", retired_field("1"): "1764633600"})

    (listed,) = api.get("/models").json()["models"]
    detail = api.get("/models/churn").json()
    times = [(v[k], k) for v in listed["versions"] for k in ("created_at", "retired_at", "expires_at")]
    times += [(v[k], k) for v in detail["versions"] for k in ("retired_at", "expires_at")]
    assert len(times) == 10 and all(isinstance(t, str) and RFC_3339.match(t) for t, _ in times), times
    old = next(v for v in detail["versions"] if v["metadata"]["version"] == "1")
    assert datetime.fromisoformat(old["retired_at"]) == datetime(2025, 12, 2, tzinfo=UTC)
    assert datetime.fromisoformat(old["expires_at"]) == datetime(2025, 12, 2, 1, tzinfo=UTC)
    stored = redis_client.hget(Keys("churn").model_info, retired_field("2"))
    assert stored is not None and stored.isdigit()  # still what older replicas read



async def test_the_default_model_registered_before_the_index_is_listed(
    api: TestClient, aredis: Any, redis_client: redis.Redis
) -> None:
    metadata, reference = small_model("digits-mlp", "7")
    await register_model(aredis, Keys("digits-mlp"), metadata, reference)
    redis_client.delete(MODELS_INDEX)  # as a Redis written before the index existed
    listing = api.get("/models").json()["models"]
    assert [m["name"] for m in listing] == ["digits-mlp"]
    assert await read_current_version(aredis, Keys("digits-mlp")) == "7"
