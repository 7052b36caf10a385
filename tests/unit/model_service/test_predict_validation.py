"""Request validation: every malformed body is a 4xx naming the field, never a 500.

No Redis here: the app points at a port nothing listens on, and predictions
must still be answered (the publisher keeps the events queued).
"""

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from driftwatch.local_processes import free_port
from model_service.app import create_app
from model_service.serving_settings import ModelServiceSettings

F = 64


@pytest.fixture(scope="module")
def client(model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    settings = ModelServiceSettings(
        REDIS_URL=f"redis://127.0.0.1:{free_port()}/0", DRIFTWATCH_MODEL_DIR=model_dir,
        DRIFTWATCH_SPILL_DIR=tmp_path_factory.mktemp("spill"),
        DRIFTWATCH_MAX_BATCH_ROWS=8, DRIFTWATCH_MAX_BODY_BYTES=64 * 1024,
    )
    with TestClient(create_app(settings)) as test_client:
        yield test_client


def test_one_sample_by_position(client: TestClient) -> None:
    response = client.post("/predict", json={"features": [0.0] * F})
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"prediction_id", "class", "class_name", "probabilities", "model_version"}
    assert len(body["probabilities"]) == 10
    assert abs(sum(body["probabilities"]) - 1) < 1e-5
    assert body["class_name"] == str(body["class"])


def test_one_sample_by_name_matches_by_position(client: TestClient) -> None:
    names = client.get("/model").json()["feature_names"]
    values = [float(i % 17) for i in range(F)]
    by_name = client.post("/predict", json={"features": dict(zip(names, values, strict=True))}).json()
    by_position = client.post("/predict", json={"features": values}).json()
    assert by_name["probabilities"] == by_position["probabilities"]


def test_batch(client: TestClient) -> None:
    response = client.post("/predict", json={"instances": [[1.0] * F, [2.0] * F, [3.0] * F]})
    assert response.status_code == 200
    predictions = response.json()["predictions"]
    assert len(predictions) == 3
    assert len({p["prediction_id"] for p in predictions}) == 3


@pytest.mark.parametrize(
    ("body", "loc"),
    [
        ({"features": [0.0] * (F - 1)}, ["body", "features"]),
        ({"features": [0.0] * 3 + ["x"] + [0.0] * (F - 4)}, ["body", "features", 3]),
        ({"features": {"not_a_pixel": 1.0}}, ["body", "features", "not_a_pixel"]),
        ({"features": {"pixel_0_0": 1.0}}, ["body", "features"]),
        ({"instances": [[0.0] * F, [0.0] * 2]}, ["body", "instances", 1]),
        ({"instances": [[0.0] * F] * 9}, ["body", "instances"]),
        ({"features": [1e39] + [0.0] * (F - 1)}, ["body", "features", 0]),
        ({"features": [0.0] * (F - 1) + [-1.1e30]}, ["body", "features", F - 1]),
        ({"features": [0.0] * F, "extra": 1}, ["body", "extra"]),
        ({}, ["body"]),
    ],
)
def test_bad_input_is_422_naming_the_field(client: TestClient, body: dict, loc: list) -> None:
    response = client.post("/predict", json=body)
    assert response.status_code == 422, response.text
    assert response.json()["detail"][0]["loc"] == loc


@pytest.mark.parametrize("literal", [b"NaN", b"Infinity", b"-Infinity"])
def test_non_finite_values_are_422(client: TestClient, literal: bytes) -> None:
    raw = b'{"features": [' + literal + b"," + b",".join([b"0"] * (F - 1)) + b"]}"
    response = client.post("/predict", content=raw, headers={"content-type": "application/json"})
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "features", 0]


def test_not_json_is_422(client: TestClient) -> None:
    response = client.post("/predict", content=b"{not json", headers={"content-type": "application/json"})
    assert response.status_code == 422


def test_oversized_body_is_413(client: TestClient) -> None:
    response = client.post("/predict", content=b"[" + b"0," * 40_000 + b"0]")
    assert response.status_code == 413


@pytest.mark.parametrize(
    ("body", "loc"),
    [
        ({"prediction_id": "nothex", "label": 1}, ["body", "prediction_id"]),
        ({"prediction_id": "a" * 32, "label": 10}, ["body", "label"]),
        ({"prediction_id": "a" * 32, "label": "cat"}, ["body", "label"]),
        ({"prediction_id": "a" * 32}, ["body", "label"]),
    ],
)
def test_bad_feedback_is_422(client: TestClient, body: dict, loc: list) -> None:
    response = client.post("/feedback", json=body)
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == loc


def test_feedback_by_index_or_class_name(client: TestClient) -> None:
    for label in (3, "3"):
        response = client.post("/feedback", json={"prediction_id": "b" * 32, "label": label})
        assert response.status_code == 202


def test_readyz_is_503_without_redis_but_predictions_are_answered(client: TestClient) -> None:
    assert client.post("/predict", json={"features": [0.0] * F}).status_code == 200
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["model_loaded"] is True and response.json()["redis"] is False
    publisher = response.json()["publisher"]
    assert publisher["queued"] + publisher["spill_pending"] > 0  # kept, in memory or on disk


@pytest.mark.parametrize(("label", "status"), [(6, 202), (6.0, 202), ("6", 202), (6.5, 422), (True, 422), (10, 422)])
def test_feedback_labels_as_json_numbers(client: TestClient, label: object, status: int) -> None:
    """6.0 is the integer 6 in JSON (schemathesis sends it for an ``integer``); a fraction,
    a boolean or an index past the classes is refused naming the label."""
    prediction_id = client.post("/predict", json={"features": [0.0] * F}).json()["prediction_id"]
    response = client.post("/feedback", json={"prediction_id": prediction_id, "label": label})
    assert response.status_code == status, response.text
    if status == 422:
        assert response.json()["detail"][0]["loc"][:2] == ["body", "label"]
