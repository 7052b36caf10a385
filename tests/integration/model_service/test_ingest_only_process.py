"""``driftwatch serve --ingest-only`` as a real process: it serves no model even when given one
(``/predict`` is 404 with the reason), is ready once Redis answers, and logs registered models' events."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
import redis
import redis.asyncio as aioredis

from driftwatch.local_processes import free_port, wait_for_http
from shared.keys import Keys
from tests.integration.model_service.registered import churn, churn_rows, register, wait_until

pytestmark = pytest.mark.timeout(120)


async def _register(redis_url: str) -> None:
    client = aioredis.Redis.from_url(redis_url)
    await register(client, churn())
    await client.aclose()


def test_serve_ingest_only_ignores_the_model_and_logs_events(
    model_dir: Path, redis_client: redis.Redis, redis_url: str, tmp_path: Path
) -> None:
    asyncio.run(_register(redis_url))
    port = free_port()
    env = {**os.environ, "REDIS_URL": redis_url, "DRIFTWATCH_SPILL_DIR": str(tmp_path / "spill")}
    process = subprocess.Popen(
        [sys.executable, "-m", "driftwatch.cli", "serve", "--ingest-only", "--model-dir", str(model_dir),
         "--port", str(port)], env=env,
    )  # fmt: skip
    try:
        url = f"http://127.0.0.1:{port}"
        wait_for_http(f"{url}/livez", processes=[process])
        with httpx.Client(base_url=url, timeout=10) as client:
            wait_until(lambda: client.get("/readyz").status_code == 200)
            ready = client.get("/readyz").json()
            assert ready["ingest_only"] is True and ready["model_loaded"] is False
            predict = client.post("/predict", json={"features": [0.0] * 64})
            assert predict.status_code == 404 and "--ingest-only" in predict.json()["detail"]
            assert client.get("/model").status_code == 404
            logged = client.post("/models/churn/predictions", json={"rows": churn_rows(5)})
            assert logged.status_code == 202, logged.text
        wait_until(lambda: redis_client.xlen(Keys("churn").predictions) == 5)
    finally:
        process.terminate()  # uvicorn re-raises the SIGTERM it caught once its shutdown is done
        assert process.wait(timeout=30) in (0, -signal.SIGTERM)
