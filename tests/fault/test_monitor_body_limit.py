"""The monitor refuses oversized bodies (DRIFTWATCH_MAX_BODY_BYTES) with 413, with or without a
Content-Length, as a real uvicorn process behind its real HTTP parser; what it refused changed nothing."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from driftwatch.local_processes import LocalRedisServer
from tests.fault.procs import start, wait_live

pytestmark = [pytest.mark.fault, pytest.mark.timeout(120)]
LIMIT = 2_048


def rule(name: str, summary: str) -> dict:
    return {"name": name, "metric": "dataset_drift_share", "op": ">", "value": 0.3,
            "labels": {"severity": "warning"}, "annotations": {"summary": summary}}


def test_oversized_bodies_get_413_and_change_nothing(tmp_path: Path) -> None:
    with LocalRedisServer() as server:
        monitor = start("monitor", {"REDIS_URL": server.url, "DRIFTWATCH_MAX_BODY_BYTES": str(LIMIT)},
                        tmp_path, "monitor")
        try:
            wait_live(monitor)
            with httpx.Client(base_url=monitor.url, timeout=10) as client:
                before = client.get("/alerts/thresholds").json()
                small = client.put("/alerts/thresholds/Small", json=rule("Small", "fits"))
                assert small.status_code == 201, small.text

                big = json.dumps([rule(f"R{i}", "x" * 100) for i in range(30)]).encode()
                assert len(big) > LIMIT
                declared = client.put("/alerts/thresholds", content=big,
                                      headers={"content-type": "application/json"})
                assert declared.status_code == 413
                assert declared.json() == {"detail": f"request body larger than {LIMIT} bytes"}

                def chunks() -> Iterator[bytes]:  # no Content-Length: Transfer-Encoding: chunked
                    for i in range(0, len(big), 512):
                        yield big[i : i + 512]

                streamed = client.put("/alerts/thresholds", content=chunks(),
                                      headers={"content-type": "application/json"})
                assert streamed.status_code == 413
                assert "content-length" not in {k.lower() for k in streamed.request.headers}

                after = {r["name"] for r in client.get("/alerts/thresholds").json()}
                assert after == {r["name"] for r in before} | {"Small"}  # the refused bodies changed nothing
                assert client.get("/livez").status_code == 200
        finally:
            monitor.stop()
