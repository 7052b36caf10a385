"""Models of every kind through the real monitor (issue 15 part 1): a regressor's numeric prediction tested with
KS as a column named "prediction", a classifier with string labels and no probabilities still gets prediction
drift, and a reference without predictions gets its features tested and no prediction test."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import numpy as np
import redis.asyncio as aioredis
from scipy import stats

from monitor.alerts.rules import AlertRule
from monitor.alerts.service import AlertService
from monitor.assembly import MonitorParts, assemble_monitor
from monitor.monitor_settings import MonitorSettings
from monitor.reports import WindowDriftReport
from shared.events import encode_predictions
from shared.ids import new_prediction_ids
from shared.keys import Keys
from shared.model_metadata import ModelMetadata, Reference
from shared.registration import ReferenceBuilder, RegistrationSpec
from shared.registry import register_model
from tests.integration.monitor.helpers import eventually

WINDOW = 400


async def registered(client: aioredis.Redis, spec: RegistrationSpec, name: str,
                     columns: dict[str, np.ndarray]) -> tuple[ModelMetadata, Reference]:
    """Registered as ``driftwatch register`` and ``PUT /models/...`` do: through the reference builder."""
    builder = ReferenceBuilder(spec)
    builder.add(columns)
    metadata, reference = builder.finish(name, "1")
    await register_model(client, Keys(name), metadata, reference)
    return metadata, reference


@asynccontextmanager
async def monitor(client: aioredis.Redis, redis_url: str, name: str, alerts: AlertService | None = None,
                  **extra: object) -> AsyncIterator[MonitorParts]:
    settings = MonitorSettings(REDIS_URL=redis_url, DRIFTWATCH_MODEL_NAME=name, DRIFTWATCH_WINDOW_SIZE=WINDOW,
                               DRIFTWATCH_READ_BLOCK_MS=50, **extra)
    parts = assemble_monitor(client, settings, f"{name}-test", alerts=alerts)
    parts.start()
    try:
        yield parts
    finally:
        await parts.stop()


async def one_window(client: aioredis.Redis, parts: MonitorParts, name: str, x: np.ndarray,
                     classes: np.ndarray) -> WindowDriftReport:
    """Publish a window of predictions without probabilities (K = 0) and wait for its report."""
    entries = encode_predictions(new_prediction_ids(len(x)), int(time.time() * 1000), name, "1",
                                 x.astype(np.float32), classes, np.zeros((len(x), 0), np.float32))
    async with client.pipeline(transaction=False) as pipe:
        for entry in entries:
            pipe.xadd(Keys(name).predictions, entry)
        await pipe.execute()
    before = await client.zcard(Keys(name, "1").drift_index)

    async def reported() -> bool:
        return await client.zcard(Keys(name, "1").drift_index) > before

    await eventually(reported, timeout_s=60)
    (report,) = await parts.reports.history(1)
    return report


async def test_a_regressors_prediction_is_tested_with_ks_as_a_column(aredis: aioredis.Redis, redis_url: str) -> None:
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=3_000), rng.normal(size=3_000)
    spec = RegistrationSpec(feature_names=["a", "b"], prediction_column="price", task="regression",
                            sample_rows=3_000)
    _, reference = await registered(aredis, spec, "price", {"a": a, "b": b, "price": 10 + 2 * a})
    async with monitor(aredis, redis_url, "price") as parts:
        wa, wb = rng.normal(size=WINDOW), rng.normal(size=WINDOW)
        shifted = 10 + 2 * wa + 1.5  # the model's output moved; its inputs did not
        report = await one_window(aredis, parts, "price", np.column_stack([wa, wb, shifted]),
                                  np.zeros(WINDOW, np.int64))
    by_name = {f.name: f for f in report.features}
    assert list(by_name) == ["a", "b", "prediction"]
    assert report.drifted_features == ["prediction"] and report.prediction_drift is None
    expected = stats.ks_2samp(reference.predicted_values, shifted.astype(np.float32))
    assert by_name["prediction"].statistic == expected.statistic


async def test_a_regressor_against_its_first_production_window(aredis: aioredis.Redis, redis_url: str) -> None:
    rng = np.random.default_rng(3)
    a = rng.normal(size=1_000)
    spec = RegistrationSpec(feature_names=["a"], prediction_column="price", task="regression")
    await registered(aredis, spec, "prod", {"a": a, "price": 3 * a})
    async with monitor(aredis, redis_url, "prod", DRIFTWATCH_REFERENCE="production",
                       DRIFTWATCH_REFERENCE_SIZE=WINDOW) as parts:
        first = rng.normal(size=WINDOW)
        window = np.column_stack([first, 3 * first])
        entries = encode_predictions(new_prediction_ids(WINDOW), int(time.time() * 1000), "prod", "1",
                                     window.astype(np.float32), np.zeros(WINDOW, np.int64),
                                     np.zeros((WINDOW, 0), np.float32))
        async with aredis.pipeline(transaction=False) as pipe:
            for entry in entries:
                pipe.xadd(Keys("prod").predictions, entry)
            await pipe.execute()
        later = rng.normal(size=WINDOW)
        report = await one_window(aredis, parts, "prod", np.column_stack([later, 3 * later - 2]),
                                  np.zeros(WINDOW, np.int64))
    assert report.reference_source == "production" and report.drifted_features == ["prediction"]
    assert report.prediction_drift is None


async def test_a_classifier_with_string_labels_and_no_probabilities_gets_prediction_drift(
    aredis: aioredis.Redis, redis_url: str
) -> None:
    rng = np.random.default_rng(1)
    n = 3_000
    labels = rng.choice(np.array(["cat", "dog", "eel"]), n, p=[0.5, 0.3, 0.2])
    spec = RegistrationSpec(feature_names=["x"], prediction_column="animal", sample_rows=n)
    metadata, reference = await registered(aredis, spec, "pets", {"x": rng.normal(size=n), "animal": labels})
    assert metadata.class_names == ["cat", "dog", "eel"] and not metadata.has_probabilities
    async with monitor(aredis, redis_url, "pets") as parts:
        classes = rng.choice(3, WINDOW, p=[0.2, 0.3, 0.5])  # eels took over
        report = await one_window(aredis, parts, "pets", rng.normal(size=(WINDOW, 1)), classes)
    drift = report.prediction_drift
    assert drift is not None and drift.drifted and not report.dataset_drift
    ref_counts = np.bincount(reference.predicted_classes, minlength=3)
    expected = stats.chi2_contingency([ref_counts, np.bincount(classes, minlength=3)], correction=False)
    assert drift.statistic is not None and np.isclose(drift.statistic, expected.statistic, rtol=1e-9)


async def test_a_reference_without_predictions_gets_its_features_tested_only(
    aredis: aioredis.Redis, redis_url: str
) -> None:
    rng = np.random.default_rng(2)
    spec = RegistrationSpec(feature_names=["x", "y"], class_names=["no", "yes"], sample_rows=2_000)
    _, reference = await registered(aredis, spec, "bare", {"x": rng.normal(size=2_000), "y": rng.normal(size=2_000)})
    assert reference.predicted_classes.size == 0
    async with monitor(aredis, redis_url, "bare") as parts:
        x = np.column_stack([rng.normal(size=WINDOW) + 1, rng.normal(size=WINDOW)])
        report = await one_window(aredis, parts, "bare", x, rng.integers(0, 2, WINDOW))
    assert report.drifted_features == ["x"] and report.prediction_drift is None


async def test_a_registered_regressor_logged_over_http_is_tested(aredis: aioredis.Redis, redis_url: str) -> None:
    """From registration to report across the parts: a regressor registered from its reference, its predictions
    logged with POST /models/{name}/predictions on the model service, its prediction tested by the monitor."""
    from fastapi.testclient import TestClient

    from model_service.app import create_app
    from model_service.serving_settings import ModelServiceSettings

    rng = np.random.default_rng(4)
    a = rng.normal(size=2_000)
    spec = RegistrationSpec(feature_names=["a"], prediction_column="price", task="regression")
    await registered(aredis, spec, "logged", {"a": a, "price": 5 * a})

    def log() -> list[int]:
        settings = ModelServiceSettings(REDIS_URL=redis_url, DRIFTWATCH_INGEST_ONLY=True)
        later = rng.normal(size=WINDOW)
        rows = [{"features": {"a": float(x)}, "prediction": float(5 * x + 3)} for x in later]
        with TestClient(create_app(settings)) as client:
            return [client.post("/models/logged/predictions", json={"rows": rows[i : i + 100]}).status_code
                    for i in range(0, WINDOW, 100)]

    alerts = AlertService.create(aredis, Keys("logged"), MonitorSettings(REDIS_URL=redis_url).alerts)
    await alerts.start(install_defaults=False)
    drift = {"name": "Drift", "metric": "dataset_drift_share", "op": ">", "value": 0.0}
    coverage = {"name": "Coverage", "metric": "label_coverage", "op": "<", "value": 0.05}  # a regressor has none
    await alerts.store.replace_rules([AlertRule.model_validate(r) for r in (drift, coverage)])
    async with monitor(aredis, redis_url, "logged", alerts=alerts) as parts:
        assert await asyncio.to_thread(log) == [202] * 4

        async def reported() -> int:
            return int(await aredis.zcard(Keys("logged", "1").drift_index))

        await eventually(reported, timeout_s=60)
        (report,) = await parts.reports.history(1)

        async def alerted() -> bool:
            # The report reaches the alert rules: a regressor's empty confusion matrix once broke
            # their evaluation (a traceback per window, no drift alert ever raised for a regressor).
            return await aredis.xlen(Keys("logged").alert_history) > 0

        await eventually(alerted, timeout_s=30)
        # Its labels are never taken (feedback is for classifiers): no coverage to alert on.
        assert {t.alertname for t in await alerts.store.history()} == {"Drift"}
    await alerts.stop()
    assert [f.name for f in report.features] == ["a", "prediction"] and report.drifted_features == ["prediction"]
