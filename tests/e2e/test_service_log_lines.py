"""Every line each service logs names it, uvicorn's own lines included.

``driftwatch up`` runs the model service and the monitor on one terminal. Our
lines named their logger ("monitor.fleet: ..."), but uvicorn's ("Started server
process [pid]", "Uvicorn running on ...") came in uvicorn's own format and
named neither. The stack is started as the README's "Watch your own model"
starts it (``driftwatch up --ingest-only --window-size 200``, on free ports),
stopped with SIGTERM, and its stderr (the children's) read line by line.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from driftwatch.local_processes import free_port, wait_for_http

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]

# LOG_FORMAT's start: the time, then the service, the level and the logger.
LINE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} (?P<service>\S+) (?P<level>[A-Z]+) (?P<logger>[\w.]+): ")
UVICORN_LINES = ("Started server process [", "Application startup complete.", "Uvicorn running on http://",
                 "Finished server process [")


def test_every_line_of_each_service_names_it_uvicorns_too(tmp_path: Path) -> None:
    model_port, monitor_port = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if k != "REDIS_URL"}  # its own redis-server, as the README's
    env["OTEL_SDK_DISABLED"] = "true"
    stderr = tmp_path / "stderr.log"
    with stderr.open("wb") as err:
        up = subprocess.Popen(
            [str(Path(sys.executable).parent / "driftwatch"), "up", "--ingest-only", "--window-size", "200",
             "--model-port", str(model_port), "--monitor-port", str(monitor_port)],
            cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=err,
        )
    try:
        for port in (model_port, monitor_port):
            wait_for_http(f"http://127.0.0.1:{port}/readyz", timeout_s=90, processes=[up])
    finally:
        up.send_signal(signal.SIGTERM)
        assert up.wait(timeout=60) == 0
    lines = stderr.read_text().splitlines()

    logged = [(line, m) for line, m in zip(lines, map(LINE.match, lines), strict=True) if m is not None]
    for service in ("model_service", "monitor"):
        uvicorns = [line for line, m in logged if m["service"] == service and m["logger"] == "uvicorn"]
        for text in UVICORN_LINES:
            assert any(text in line for line in uvicorns), (service, text, lines)
    assert {m["service"] for _, m in logged} == {"model_service", "monitor"}, lines
    assert {m["logger"].split(".")[0] for _, m in logged if m["service"] == "monitor"} >= {"monitor", "uvicorn"}
    # No line in uvicorn's own format ("INFO:     Started server process [...]") is left.
    assert not [line for line in lines if re.match(r"^[A-Z]+: +", line)], lines
