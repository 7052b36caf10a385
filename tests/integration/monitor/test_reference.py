"""The production reference (first N predictions per model version) against a real redis-server."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import redis.asyncio as aioredis

from monitor.assembly import assemble_monitor
from monitor.drift import DriftConfig
from monitor.monitor_settings import MonitorSettings
from monitor.reports import DriftReporter, ModelCatalog, ReferencePolicy
from monitor.windows import WindowPolicy
from shared.events import FLOAT
from tests.integration.monitor.helpers import eventually, holdout_rows, publish_predictions, register

STEP = 100


async def test_first_windows_become_the_reference_and_later_ones_are_tested_against_it(
    aredis: aioredis.Redis, redis_url: str, model_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DRIFTWATCH_WINDOW_SIZE", str(STEP))
    monkeypatch.setenv("DRIFTWATCH_REFERENCE", "production")
    monkeypatch.setenv("DRIFTWATCH_REFERENCE_SIZE", "150")  # rounded up to two whole windows
    metadata, keys = await register(aredis, model_dir)
    settings = MonitorSettings(REDIS_URL=redis_url, DRIFTWATCH_WINDOW_SIZE=STEP, DRIFTWATCH_READ_BLOCK_MS=50)
    worker = assemble_monitor(aredis, settings, "test-consumer")
    worker.start()
    try:
        # Production traffic is brighter than training: tested against the
        # training sample it would all drift; against itself it does not.
        x = np.clip(holdout_rows(model_dir, 5 * STEP) * 1.5 + 2.0, 0, 40).astype(np.float32)
        x[400:] = holdout_rows(model_dir, STEP, seed=9)  # window 4: back to the training look
        classes = np.arange(len(x)) % 10
        await publish_predictions(aredis, keys, x, classes)

        async def three_reports() -> bool:
            return bool(await aredis.zcard(keys.drift_index) == 3)

        await eventually(three_reports)
        reports = list(reversed(await worker.reports.history(10)))
    finally:
        await worker.stop()
    assert [r.window for r in reports] == [2, 3, 4]  # windows 0 and 1 are the reference
    assert {r.reference_source for r in reports} == {"production"}
    assert {r.reference_size for r in reports} == {2 * STEP}
    assert reports[2].dataset_drift  # the window that looks like training drifted from production
    stored = await aredis.hgetall(worker.catalog.production_key(metadata.version))
    assert sorted(stored) == [b"0", b"0:classes", b"1", b"1:classes"]
    assert stored[b"0"] == x[:STEP].astype(FLOAT).tobytes()
    assert [await aredis.llen(keys.window_rows(w)) for w in range(5)] == [0] * 5

    # The stored reference is what the detector uses: same numbers from a fresh catalog.
    catalog = ModelCatalog(aredis, keys, DriftConfig(min_window_size=30), ReferencePolicy("production", 150))
    entry = await catalog.get(metadata.version)
    assert entry is not None
    _, detector = entry
    expected = detector.test(x[300:400], classes[300:400])
    assert [f.statistic for f in reports[1].features] == [f.statistic for f in expected.features]
    assert reports[1].prediction_drift == expected.prediction_drift
    # The multivariate test runs beside them, stored with the report (what /drift serves).
    assert reports[1].multivariate_drift is not None
    assert reports[1].multivariate_drift == expected.multivariate_drift


async def test_reference_is_per_version_and_windows_wait_for_it(aredis: aioredis.Redis, model_dir: Path) -> None:
    metadata, keys = await register(aredis, model_dir)
    catalog = ModelCatalog(aredis, keys, DriftConfig(), ReferencePolicy("production", 150))
    reporter = DriftReporter(aredis, keys, catalog, 100, windows=WindowPolicy("count", step=STEP, size=STEP))
    assert await catalog.get(metadata.version) is None  # nothing served yet
    assert await catalog.n_features(metadata.version) == metadata.n_features  # ingest still validates
    x = holdout_rows(model_dir, STEP)
    # Offering the same window twice (a retry, another replica) stores it once.
    for _ in range(2):
        assert await catalog.add_reference_window(
            metadata.version, 0, [r.tobytes() for r in x], {b"3": str(STEP).encode()}
        )
    assert await catalog.get(metadata.version) is None  # 100 < 150 rows
    assert await catalog.add_reference_window(metadata.version, 1, [r.tobytes() for r in x], {b"3": b"100"})
    assert not await catalog.add_reference_window(metadata.version, 2, [r.tobytes() for r in x], {b"3": b"100"})
    entry = await catalog.get(metadata.version)
    assert entry is not None and entry[1].reference_size == 2 * STEP
    assert catalog.reference_windows[metadata.version] == {0, 1}
    assert await aredis.hlen(catalog.production_key("other-version")) == 0
    assert reporter.windows.span == 1
