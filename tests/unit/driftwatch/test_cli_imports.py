"""``driftwatch --help``, ``serve`` and ``monitor`` never import TensorFlow: only ``train`` needs it.

Checked in a fresh interpreter (this test session imports TensorFlow to train
its fixture model). Building both apps is what ``serve`` and ``monitor`` do
before uvicorn starts.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

CHILD = """
import sys
from driftwatch.cli import app
for args in (["--help"], ["serve", "--help"], ["monitor", "--help"], ["up", "--help"], ["register", "--help"]):
    try:
        app(args)
    except SystemExit as exc:
        assert exc.code == 0, (args, exc.code)
from model_service.app import create_app as serving_app
from model_service.serving_settings import ModelServiceSettings
from monitor.app import create_app as monitor_app
from monitor.monitor_settings import MonitorSettings
serving_app(ModelServiceSettings())
monitor_app(MonitorSettings())
print("LOADED", sorted(m for m in sys.modules if m.split(".")[0] in ("tensorflow", "keras", "sklearn"))[:5])
"""


def test_cli_help_serve_and_monitor_do_not_import_tensorflow() -> None:
    out = subprocess.run(
        [sys.executable, "-c", CHILD], capture_output=True, text=True, timeout=120,
        env={"OTEL_SDK_DISABLED": "true", "PATH": "/usr/bin:/bin", "COLUMNS": "120"},
        cwd=Path(__file__).resolve().parents[3],
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert "LOADED []" in out.stdout, out.stdout[-2000:]
