"""Missing values and models without probabilities through the real monitor: NaN
features from the stream to the window report and its histograms, and K = 0
probabilities through the ingest script and the performance report."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import numpy as np
import pytest
import redis.asyncio as aioredis

from monitor.assembly import MonitorParts, assemble_monitor
from monitor.calibrations import NEITHER_METHOD, CalibrationCatalog
from monitor.histograms import HistogramStore
from monitor.monitor_settings import MonitorSettings
from monitor.performance_report import performance_report
from monitor.window_state import WindowState
from monitor.windows import WindowIndex, WindowPolicy
from shared.events import PredictionBatch, encode_predictions
from shared.ids import new_prediction_ids
from shared.keys import Keys
from shared.model_metadata import Reference
from shared.registry import register_model
from tests.integration.monitor.helpers import eventually, small_model

WINDOW = 400


@pytest.fixture
async def worker(aredis: aioredis.Redis, redis_url: str) -> AsyncIterator[MonitorParts]:
    metadata, reference = small_model("nulls", "1")
    await register_model(aredis, Keys("nulls"), metadata, reference)
    settings = MonitorSettings(
        REDIS_URL=redis_url, DRIFTWATCH_MODEL_NAME="nulls", DRIFTWATCH_WINDOW_SIZE=WINDOW,
        DRIFTWATCH_READ_BLOCK_MS=50,
    )
    monitor = assemble_monitor(aredis, settings, "nulls-test")
    monitor.start()
    yield monitor
    await monitor.stop()


async def test_nan_features_reach_the_report_as_missing_values_never_as_numbers(
    worker: MonitorParts, aredis: aioredis.Redis
) -> None:
    keys = worker.keys.for_version("1")
    _, reference = small_model("nulls", "1")
    rng = np.random.default_rng(2)
    x = rng.normal(size=(WINDOW, 4)).astype(np.float32)
    x[: WINDOW // 4, 1] = np.nan  # b: a quarter of the rows logged null
    x[:, 2] = np.nan  # c: null in every row
    classes = rng.integers(0, 2, WINDOW)
    probabilities = np.eye(2, dtype=np.float32)[classes]
    entries = encode_predictions(new_prediction_ids(WINDOW), int(time.time() * 1000), "nulls", "1", x, classes,
                                 probabilities)
    async with aredis.pipeline(transaction=False) as pipe:
        for entry in entries:
            pipe.xadd(keys.predictions, entry)
        await pipe.execute()

    await eventually(lambda: aredis.zcard(keys.drift_index), timeout_s=60)
    (report,) = await worker.reports.history(1)
    by_name = {f.name: f for f in report.features}
    assert report.status == "drift" and report.drifted_features == ["b", "c"]
    assert by_name["b"].missing is not None and by_name["b"].missing.window == WINDOW // 4
    assert by_name["b"].missing.drifted and by_name["b"].statistic is not None  # its present values tested
    assert by_name["c"].insufficient_data and by_name["c"].statistic is None
    assert by_name["c"].missing is not None and by_name["c"].missing.window_share == 1.0
    assert by_name["a"].missing is not None and by_name["a"].missing.window == 0 and not by_name["a"].drifted
    assert report.n_tests == 4 + 2

    histograms = await HistogramStore(aredis, keys).read(report.window)
    assert histograms is not None
    b, c = histograms.features[1], histograms.features[2]
    assert (b.window_missing, sum(b.window)) == (WINDOW // 4, WINDOW - WINDOW // 4)
    assert (c.window_missing, sum(c.window)) == (WINDOW, 0)
    assert b.reference_missing == 0 and sum(b.reference) == len(reference.features)


async def test_predictions_without_probabilities_keep_no_confidence_and_say_why(aredis: aioredis.Redis) -> None:
    metadata, reference = small_model("noprob", "1")
    no_probabilities = Reference(
        features=reference.features, predicted_classes=reference.predicted_classes,
        probabilities=np.zeros((len(reference.predicted_classes), 0), dtype=np.float32), labels=reference.labels,
    )
    keys = Keys("noprob", "1")  # model keys, and version 1's series keys
    await register_model(aredis, keys, metadata, no_probabilities)
    n = 20
    now = int(time.time() * 1000)
    x = np.random.default_rng(3).normal(size=(n, 4)).astype(np.float32)
    batch = PredictionBatch(
        ids=new_prediction_ids(n, now), timestamps_ms=np.full(n, now, dtype=np.int64), model_versions=["1"] * n,
        features=x, classes=np.arange(n, dtype=np.int64) % 2, probabilities=np.zeros((n, 0), dtype=np.float32),
    )
    policy = WindowPolicy(step=100, size=100)
    state = WindowState(aredis, keys, policy, retention_s=600)
    result = await state.ingest_predictions(batch, [row.tobytes() for row in x])
    assert result.new == n
    assert await aredis.hgetall(keys.window_classes(0)) == {b"0": b"10", b"1": b"10"}
    assert not await aredis.exists(keys.window_confidence(0))  # no confidence histogram at all

    calibrations = CalibrationCatalog(aredis, keys)
    assert await calibrations.get("1") is None
    assert calibrations.unavailable("1") == NEITHER_METHOD  # no labelled rows' features: no agreement either

    report = await performance_report(
        aredis, keys, metadata.class_names, WindowIndex(aredis, keys, policy), calibration=None, model_version="1",
        estimate_unavailable=calibrations.unavailable("1"),
    )
    assert report.estimate_unavailable == "unavailable: no probabilities (doc), no labelled reference rows with " \
        "features (agreement)"
    assert report.predictions == n and all(w.estimated_accuracy is None for w in report.windows)


async def test_a_model_without_probabilities_through_the_worker(aredis: aioredis.Redis, redis_url: str) -> None:
    """Events with empty probabilities (K = 0) from the stream: counted, windows reported with
    prediction drift, no confidence kept, and the performance report says why there is no estimate."""
    metadata, reference = small_model("noprob-worker", "1")
    metadata = metadata.model_copy(update={"has_probabilities": False})
    n_ref = len(reference.predicted_classes)
    await register_model(aredis, Keys("noprob-worker"), metadata, Reference(
        features=reference.features, predicted_classes=reference.predicted_classes,
        probabilities=np.zeros((n_ref, 0), dtype=np.float32), labels=reference.labels,
    ))  # fmt: skip
    settings = MonitorSettings(REDIS_URL=redis_url, DRIFTWATCH_MODEL_NAME="noprob-worker",
                               DRIFTWATCH_WINDOW_SIZE=100, DRIFTWATCH_READ_BLOCK_MS=50)
    monitor = assemble_monitor(aredis, settings, "noprob-test")
    monitor.start()
    try:
        keys = monitor.keys.for_version("1")
        rng = np.random.default_rng(4)
        x = rng.normal(size=(100, 4)).astype(np.float32)
        classes = rng.integers(0, 2, 100)
        entries = encode_predictions(new_prediction_ids(100), int(time.time() * 1000), "noprob-worker", "1", x,
                                     classes, np.zeros((100, 0), dtype=np.float32))
        assert all(e[b"p"] == b"" for e in entries)
        async with aredis.pipeline(transaction=False) as pipe:
            for entry in entries:
                pipe.xadd(keys.predictions, entry)
            await pipe.execute()
        await eventually(lambda: aredis.zcard(keys.drift_index), timeout_s=60)
        (report,) = await monitor.reports.history(1)
        assert report.prediction_drift is not None and report.window_size == 100
        assert not await aredis.exists(keys.window_confidence(report.window))
        performance = await monitor.performance.report(10)
        assert performance is not None and performance.predictions == 100
        assert performance.estimate_unavailable == NEITHER_METHOD
        assert all(w.estimated_accuracy is None for w in performance.windows)
    finally:
        await monitor.stop()
