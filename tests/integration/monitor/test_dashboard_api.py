"""The routes the web UI reads, against a real redis-server and the monitor's own worker:
window histograms (checked against numpy on the rows sent), the timeline, the overview
(also with Redis gone), and ETags on JSON reads."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import redis
from fastapi.testclient import TestClient

from driftwatch.local_processes import LocalRedisServer
from monitor.app import create_app
from monitor.monitor_settings import MonitorSettings
from shared.events import encode_predictions
from shared.ids import new_prediction_ids
from shared.keys import Keys
from shared.model_metadata import ModelMetadata, Reference
from shared.registry import metadata_field
from tests.integration.monitor.helpers import holdout_rows

WINDOW = 200
SHIFTED = 20  # pixel_2_4


def _register(client: redis.Redis, model_dir: Path) -> tuple[ModelMetadata, Keys]:
    metadata = ModelMetadata.load(model_dir)
    keys = Keys(metadata.name, metadata.version)
    client.set(keys.reference(metadata.version), Reference.load(model_dir).to_bytes())
    client.hset(keys.model_info, mapping={"version": metadata.version,
                                          metadata_field(metadata.version): metadata.model_dump_json()})
    return metadata, keys


def _publish(client: redis.Redis, keys: Keys, version: str, rows: np.ndarray) -> None:
    ids = new_prediction_ids(len(rows))
    classes = np.arange(len(rows)) % 10
    probabilities = np.eye(10, dtype=np.float32)[classes]
    with client.pipeline(transaction=False) as pipe:
        for entry in encode_predictions(ids, int(time.time() * 1000), keys.model, version, rows, classes,
                                        probabilities):
            pipe.xadd(keys.predictions, entry)
        pipe.execute()


def _wait_for(check, timeout_s: float = 30.0):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(0.05)
    raise AssertionError("condition not met in time")


@pytest.fixture
def monitor(redis_url: str, redis_client: redis.Redis, model_dir: Path) -> Iterator[tuple[TestClient, np.ndarray]]:
    """The monitor app with two reported windows: one as served, one with feature SHIFTED brightened."""
    metadata, keys = _register(redis_client, model_dir)
    settings = MonitorSettings(REDIS_URL=redis_url, DRIFTWATCH_WINDOW_SIZE=WINDOW, DRIFTWATCH_READ_BLOCK_MS=50)
    rows = holdout_rows(model_dir, 2 * WINDOW, seed=1)
    rows[WINDOW:, SHIFTED] = np.minimum(rows[WINDOW:, SHIFTED] + 6, 16)
    with TestClient(create_app(settings)) as client:
        _publish(redis_client, keys, metadata.version, rows)
        _wait_for(lambda: redis_client.zcard(keys.drift_index) == 2)
        yield client, rows


def test_window_histograms_are_the_counts_of_the_rows_sent_in_bins_fixed_by_the_reference(
    monitor: tuple[TestClient, np.ndarray], model_dir: Path
) -> None:
    client, rows = monitor
    reference = Reference.load(model_dir).features
    body = client.get("/drift/histograms/1").json()
    assert body["window"] == 1 and len(body["features"]) == rows.shape[1]
    report = client.get("/drift").json()
    for f, hist in enumerate(body["features"]):
        edges = np.array(hist["edges"])
        window = rows[WINDOW:, f]
        inside, _ = np.histogram(window, bins=edges)
        assert hist["window"] == [int((window < edges[0]).sum()), *inside.tolist(), int((window > edges[-1]).sum())]
        assert sum(hist["reference"]) == len(reference)
        assert hist["test"] == report["features"][f]
    shifted = body["features"][SHIFTED]
    assert shifted["test"]["drifted"] is True
    # Unit bins for pixel values 0..16: the window's mass moved up by the shift.
    centres = (np.array(shifted["edges"][:-1]) + np.array(shifted["edges"][1:])) / 2
    window_mean = np.dot(centres, shifted["window"][1:-1]) / WINDOW
    reference_mean = np.dot(centres, shifted["reference"][1:-1]) / sum(shifted["reference"])
    assert window_mean > reference_mean + 3


def test_histograms_of_one_feature_and_the_errors(monitor: tuple[TestClient, np.ndarray]) -> None:
    client, _ = monitor
    one = client.get("/drift/histograms/0", params={"feature": "pixel_2_4"}).json()
    assert [f["name"] for f in one["features"]] == ["pixel_2_4"]
    unknown = client.get("/drift/histograms/0", params={"feature": "nope"})
    assert unknown.status_code == 422 and unknown.json()["detail"][0]["loc"] == ["query", "feature"]
    assert client.get("/drift/histograms/7").status_code == 404
    assert client.get("/drift/histograms/-1").status_code == 422


def test_timeline_carries_each_windows_effect_sizes_and_drifted_features(
    monitor: tuple[TestClient, np.ndarray],
) -> None:
    client, _ = monitor
    timeline = client.get("/drift/timeline").json()
    history = client.get("/drift/history").json()["reports"][::-1]
    assert [w["window"] for w in timeline["windows"]] == [0, 1]
    assert timeline["features"] == [f["name"] for f in history[0]["features"]]
    for point, report in zip(timeline["windows"], history, strict=True):
        np.testing.assert_allclose(point["effect_size"], [f["effect_size"] for f in report["features"]], rtol=1e-3)
        assert [timeline["features"][i] for i in point["drifted"]] == report["drifted_features"]
        assert point["drifted_share"] == report["drifted_share"]
        joint = report.get("multivariate_drift")
        assert point["multivariate_drift"] == (joint["drifted"] if joint else None)
    assert timeline["windows"][1]["drifted"] == [SHIFTED]
    # Each window's estimate comes with its method, as /performance gives both (the UI names it).
    performance = {w["window"]: w for w in client.get("/performance").json()["windows"]}
    for point in timeline["windows"]:
        own = performance[point["window"]]
        assert point["estimate_method"] == own["estimate_method"] in ("agreement", "agreement-capped")
        assert point["estimated_accuracy"] == pytest.approx(own["estimated_accuracy"], rel=1e-3)
        assert point["estimated_accuracy_interval"] == own["estimated_accuracy_interval"]


def test_a_window_being_filled_changes_no_reported_windows_figures(
    monitor: tuple[TestClient, np.ndarray], redis_client: redis.Redis, model_dir: Path
) -> None:
    """The timeline read the performance of the newest ``limit`` ingest windows, which include the
    one being filled: the oldest window it showed (the dashboard's 40th) had no accuracy or estimate."""
    client, rows = monitor
    metadata = ModelMetadata.load(model_dir)
    keys = Keys(metadata.name, metadata.version)
    _publish(redis_client, keys, metadata.version, rows[:5])  # window 2, being filled
    _wait_for(lambda: client.get("/drift/window").json()["filled"] == 5)
    timeline = client.get("/drift/timeline", params={"limit": 2}).json()
    assert [w["window"] for w in timeline["windows"]] == [0, 1]
    for point in timeline["windows"]:
        assert point["estimate_method"] in ("agreement", "agreement-capped")
        assert point["estimated_accuracy"] is not None
    # The overview's estimate is its last window's (1), not that of the 5 rows of window 2 since:
    # a DoC of five confidences of 1.0 read as a perfect model beside the window's "drift".
    (model,) = client.get("/overview").json()["models"]
    assert model["last_window"] == 1
    assert model["estimated_accuracy"] == pytest.approx(timeline["windows"][1]["estimated_accuracy"], rel=1e-3)


def test_overview_lists_the_model_with_its_last_window(monitor: tuple[TestClient, np.ndarray]) -> None:
    client, _ = monitor
    (model,) = client.get("/overview").json()["models"]
    assert model["status"] == "drift" and model["last_window"] == 1
    assert model["drifted_features"] == ["pixel_2_4"]
    assert model["window_size"] == WINDOW and model["api_base"] == ""
    # The newest window's estimate, and no reason beside it, as /performance gives them.
    performance = client.get("/performance?windows=1").json()
    assert model["estimated_accuracy"] == performance["windows"][0]["estimated_accuracy"] is not None
    assert model["estimate_unavailable"] is performance["estimate_unavailable"] is None


def test_unchanged_json_reads_are_answered_304_with_their_etag(monitor: tuple[TestClient, np.ndarray]) -> None:
    client, _ = monitor
    first = client.get("/drift/timeline")
    tag = first.headers["etag"]
    assert first.headers["cache-control"] == "no-cache"
    again = client.get("/drift/timeline", headers={"If-None-Match": tag})
    assert again.status_code == 304 and again.content == b"" and again.headers["etag"] == tag
    other = client.get("/drift/timeline", params={"limit": 1}, headers={"If-None-Match": tag})
    assert other.status_code == 200 and other.headers["etag"] != tag
    assert "etag" not in client.get("/drift/histograms/9").headers  # errors are not tagged


def test_the_page_and_its_assets_ship_in_the_package(monitor: tuple[TestClient, np.ndarray]) -> None:
    client, _ = monitor
    page = client.get("/")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    assert "default-src 'self'" in page.headers["content-security-policy"]
    for asset in ("/ui/app.js", "/ui/app.css", "/ui/vendor/uPlot.iife.min.js", "/ui/vendor/uPlot.min.css"):
        assert asset in page.text
        response = client.get(asset, headers={"Accept-Encoding": "gzip"})
        assert response.status_code == 200, asset
    assert client.get("/ui/vendor/uPlot.iife.min.js", headers={"Accept-Encoding": "gzip"}).headers[
        "content-encoding"] == "gzip"
    assert "http://" not in page.text and "https://" not in page.text


def test_overview_says_error_when_redis_is_gone(model_dir: Path) -> None:
    server = LocalRedisServer()
    server.start()
    try:
        settings = MonitorSettings(REDIS_URL=server.url, DRIFTWATCH_READ_BLOCK_MS=50)
        with TestClient(create_app(settings)) as client:
            assert client.get("/overview").json()["models"][0]["status"] == "no_windows"
            server.stop()
            (model,) = client.get("/overview").json()["models"]
            assert model["status"] == "error" and model["error"].startswith("Redis unreachable")
    finally:
        server.close()
