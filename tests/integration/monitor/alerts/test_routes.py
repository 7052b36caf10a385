"""The alerting HTTP API on a minimal app that mounts the router, as the monitor does."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import redis.asyncio as aioredis
from fastapi import FastAPI
from pydantic import SecretStr

from monitor.alerts.routes import router
from monitor.alerts.rules import (
    MAX_ANNOTATION_CHARS,
    MAX_LABEL_NAME_CHARS,
    MAX_LABEL_VALUE_CHARS,
    MAX_LABELS,
    MAX_MIN_SAMPLES,
    MAX_RULES,
    default_rules,
)
from monitor.alerts.snapshot import MetricSnapshot
from monitor.alerts.store import AlertStore
from shared.api_auth import API_KEY_HEADER
from shared.keys import Keys

KEY = "s3cret"
RULE: dict[str, Any] = {
    "name": "Drift",
    "metric": "dataset_drift_share",
    "op": ">",
    "value": 0.2,
    "for": {"windows": 2},
    "labels": {"severity": "warning"},
}


def make_app(store: AlertStore | None, api_key: str | None = None) -> FastAPI:
    app = FastAPI()
    app.include_router(router)
    app.state.alert_store = store
    app.state.api_key = SecretStr(api_key) if api_key else None
    return app


@pytest.fixture
async def store(aredis: aioredis.Redis) -> AlertStore:
    return AlertStore(aredis, Keys("digits-mlp"))


@pytest.fixture
async def client(store: AlertStore) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(make_app(store, KEY))
    async with httpx.AsyncClient(transport=transport, base_url="http://t", headers={API_KEY_HEADER: KEY}) as c:
        yield c


def error_locs(response: httpx.Response) -> list[list[str | int]]:
    assert response.status_code == 422, response.text
    return [e["loc"] for e in response.json()["detail"]]


async def test_rule_crud(client: httpx.AsyncClient) -> None:
    assert (await client.get("/alerts/thresholds")).json() == []
    created = await client.put("/alerts/thresholds/Drift", json={k: v for k, v in RULE.items() if k != "name"})
    assert created.status_code == 201, created.text
    assert created.json() == {**RULE, "annotations": {}}
    replaced = await client.put("/alerts/thresholds/Drift", json={**RULE, "value": 0.3})
    assert replaced.status_code == 200 and replaced.json()["value"] == 0.3
    got = await client.get("/alerts/thresholds/Drift")
    assert got.status_code == 200 and got.json()["for"] == {"windows": 2}
    assert [r["name"] for r in (await client.get("/alerts/thresholds")).json()] == ["Drift"]
    assert (await client.delete("/alerts/thresholds/Drift")).status_code == 204
    assert (await client.get("/alerts/thresholds")).json() == []


async def test_unknown_rule_is_404(client: httpx.AsyncClient) -> None:
    for method in ("GET", "DELETE"):
        response = await client.request(method, "/alerts/thresholds/Nope")
        assert response.status_code == 404 and "Nope" in response.json()["detail"]


@pytest.mark.parametrize(
    ("body", "loc"),
    [
        ({**RULE, "metric": "cpu"}, ["body", "metric"]),
        ({**RULE, "value": 7}, ["body", "value"]),
        ({**RULE, "for": {"windows": 1, "seconds": 1}}, ["body", "for"]),
        ({**RULE, "metric": "feature_effect_size"}, ["body", "feature"]),
        ({**RULE, "labels": {"alertname": "x"}}, ["body", "labels"]),
        ({**RULE, "extra": 1}, ["body", "extra"]),
        ({**RULE, "name": "Other"}, ["body", "name"]),
    ],
)
async def test_bad_rule_is_422_naming_the_field(
    client: httpx.AsyncClient, body: dict[str, Any], loc: list[str]
) -> None:
    assert loc in error_locs(await client.put("/alerts/thresholds/Drift", json=body))
    assert (await client.get("/alerts/thresholds/Drift")).status_code == 404


async def test_bad_name_in_path_is_422(client: httpx.AsyncClient) -> None:
    assert ["path", "name"] in error_locs(await client.put("/alerts/thresholds/bad%20name", json=RULE))


async def test_replace_all_rules(client: httpx.AsyncClient) -> None:
    rules = [r.model_dump(mode="json", by_alias=True, exclude_none=True) for r in default_rules()]
    response = await client.put("/alerts/thresholds", json=rules)
    assert response.status_code == 200
    assert sorted(r["name"] for r in response.json()) == sorted(r["name"] for r in rules)
    assert len((await client.get("/alerts/thresholds")).json()) == len(rules)
    # All or nothing: one bad rule rejects the set and leaves the stored one alone.
    bad = [*rules[:2], {**RULE, "op": "~"}]
    assert ["body", 2, "op"] in error_locs(await client.put("/alerts/thresholds", json=bad))
    assert ["body", 1, "name"] in error_locs(await client.put("/alerts/thresholds", json=[RULE, RULE]))
    assert len((await client.get("/alerts/thresholds")).json()) == len(rules)
    assert (await client.put("/alerts/thresholds", json=[])).json() == []


async def test_write_endpoints_need_the_api_key(store: AlertStore) -> None:
    transport = httpx.ASGITransport(make_app(store, KEY))
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as anon:
        writes = [
            ("PUT", "/alerts/thresholds", [RULE]),
            ("PUT", "/alerts/thresholds/Drift", RULE),
            ("DELETE", "/alerts/thresholds/Drift", None),
        ]
        for method, url, body in writes:
            assert (await anon.request(method, url, json=body)).status_code == 401
            wrong = await anon.request(method, url, json=body, headers={API_KEY_HEADER: "nope"})
            assert wrong.status_code == 403
        # Reads stay open.
        assert (await anon.get("/alerts")).status_code == 200
        assert (await anon.get("/alerts/thresholds")).status_code == 200
    assert await store.rules() == []


async def test_no_api_key_configured_lets_writes_through(store: AlertStore) -> None:
    transport = httpx.ASGITransport(make_app(store))
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as anon:
        assert (await anon.put("/alerts/thresholds/Drift", json=RULE)).status_code == 201


async def test_alerts_and_history(client: httpx.AsyncClient, store: AlertStore) -> None:
    await client.put("/alerts/thresholds/Drift", json=RULE)
    for window in (1, 2):
        await store.apply(MetricSnapshot(window=window, at=100.0 * window, dataset_drift_share=0.5))
    alerts = (await client.get("/alerts")).json()["alerts"]
    assert [(a["rule"], a["state"], a["active_at"], a["starts_at"]) for a in alerts] == [
        ("Drift", "firing", 100.0, 200.0)
    ]
    assert (await client.get("/alerts", params={"state": "pending"})).json()["alerts"] == []
    history = (await client.get("/alerts/history", params={"limit": 1})).json()["transitions"]
    assert [(h["from_state"], h["to_state"], h["window"]) for h in history] == [("pending", "firing", 2)]
    assert len((await client.get("/alerts/history")).json()["transitions"]) == 2
    assert ["query", "limit"] in error_locs(await client.get("/alerts/history", params={"limit": 0}))


async def test_unconfigured_app_answers_503() -> None:
    transport = httpx.ASGITransport(make_app(None))
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
        assert (await c.get("/alerts")).status_code == 503


async def test_openapi_has_examples(client: httpx.AsyncClient) -> None:
    spec = (await client.get("/openapi.json")).json()
    put_one = spec["paths"]["/alerts/thresholds/{name}"]["put"]
    assert "any_feature" in put_one["requestBody"]["content"]["application/json"]["examples"]
    assert spec["components"]["schemas"]["AlertRule"]["examples"]


async def test_a_rule_on_the_multivariate_p_value_is_set_over_http_and_fires(
    client: httpx.AsyncClient, store: AlertStore
) -> None:
    rule = {"name": "Joint", "metric": "multivariate_drift_p_value", "op": "<", "value": 0.01}
    assert (await client.put("/alerts/thresholds/Joint", json=rule)).status_code == 201
    bad = {**rule, "value": 2.0}  # a p-value threshold outside [0, 1]
    assert ["body", "value"] in error_locs(await client.put("/alerts/thresholds/Joint", json=bad))
    await store.apply(MetricSnapshot(window=1, at=100.0, multivariate_drift_p_value=0.3))
    assert (await client.get("/alerts")).json()["alerts"] == []
    await store.apply(MetricSnapshot(window=2, at=200.0, multivariate_drift_p_value=0.001))
    alerts = (await client.get("/alerts")).json()["alerts"]
    assert [(a["rule"], a["state"], a["value"]) for a in alerts] == [("Joint", "firing", 0.001)]


@pytest.fixture
async def checked_client(store: AlertStore) -> AsyncIterator[httpx.AsyncClient]:
    """A client of an app that knows the model's features, as the monitor does once a model is registered."""
    app = make_app(store, KEY)

    async def feature_names(model: str | None) -> list[str]:
        return ["age", "income"]

    app.state.alert_feature_names = feature_names
    transport = httpx.ASGITransport(app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t", headers={API_KEY_HEADER: KEY}) as c:
        yield c


def lag_rule(name: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "metric": "stream_lag", "op": ">", "value": 10, **extra}


async def test_the_number_of_rules_is_bounded(client: httpx.AsyncClient) -> None:
    too_many = [lag_rule(f"Lag{i}") for i in range(MAX_RULES + 1)]
    assert error_locs(await client.put("/alerts/thresholds", json=too_many)) == [["body"]]
    assert (await client.put("/alerts/thresholds", json=too_many[:MAX_RULES])).status_code == 200
    # One more by name is refused; replacing one that exists is fine.
    assert error_locs(await client.put("/alerts/thresholds/Extra", json=lag_rule("Extra"))) == [["path", "name"]]
    assert (await client.put("/alerts/thresholds/Lag0", json=lag_rule("Lag0", value=20))).status_code == 200
    assert len((await client.get("/alerts/thresholds")).json()) == MAX_RULES


@pytest.mark.parametrize(
    ("extra", "field"),
    [
        ({"labels": {f"l{i}": "x" for i in range(MAX_LABELS + 1)}}, "labels"),
        ({"labels": {"team": "x" * (MAX_LABEL_VALUE_CHARS + 1)}}, "labels"),
        ({"labels": {"t" * (MAX_LABEL_NAME_CHARS + 1): "x"}}, "labels"),
        ({"annotations": {f"a{i}": "x" for i in range(MAX_LABELS + 1)}}, "annotations"),
        ({"annotations": {"summary": "x" * (MAX_ANNOTATION_CHARS + 1)}}, "annotations"),
        ({"min_samples": MAX_MIN_SAMPLES + 1}, "min_samples"),
    ],
    ids=["labels", "label-value", "label-name", "annotations", "annotation-text", "min-samples"],
)
async def test_sizes_past_the_limits_are_422(client: httpx.AsyncClient, extra: dict[str, Any], field: str) -> None:
    locs = error_locs(await client.put("/alerts/thresholds/Lag", json=lag_rule("Lag", **extra)))
    assert locs[0][:2] == ["body", field]


async def test_sizes_at_the_limits_are_taken(client: httpx.AsyncClient) -> None:
    rule = lag_rule(
        "Lag",
        labels={f"l{i}": "x" * MAX_LABEL_VALUE_CHARS for i in range(MAX_LABELS - 1)}
        | {"t" * MAX_LABEL_NAME_CHARS: "x"},
        annotations={f"a{i}": "x" * MAX_ANNOTATION_CHARS for i in range(MAX_LABELS)},
        min_samples=MAX_MIN_SAMPLES,
    )
    assert (await client.put("/alerts/thresholds/Lag", json=rule)).status_code == 201


async def test_a_feature_rule_names_a_feature_of_the_model(checked_client: httpx.AsyncClient) -> None:
    rule = {"metric": "feature_effect_size", "op": ">", "value": 0.5}
    response = await checked_client.put("/alerts/thresholds/Big", json={**rule, "feature": "agee"})
    assert error_locs(response) == [["body", "feature"]]
    assert "'*' or one of: age, income" in response.json()["detail"][0]["msg"]
    listed = [{**rule, "name": "Big", "feature": "age"}, {**rule, "name": "Typo", "feature": "incme"}]
    assert error_locs(await checked_client.put("/alerts/thresholds", json=listed)) == [["body", 1, "feature"]]
    for feature in ("age", "*"):
        assert (await checked_client.put("/alerts/thresholds/Big", json={**rule, "feature": feature})).is_success
