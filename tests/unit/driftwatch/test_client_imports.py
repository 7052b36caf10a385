"""``import driftwatch`` and ``from driftwatch import Client`` load neither TensorFlow, FastAPI nor uvicorn.

Checked in a fresh interpreter: a team logging from its own service gets numpy,
httpx and orjson, not the monitor's web stack or the trainer's TensorFlow.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

CHILD = """
import sys
import driftwatch
assert "driftwatch.client" not in sys.modules, "import driftwatch must load nothing"
from driftwatch import Client
client = Client("http://127.0.0.1:9", flush_on_exit=False)
client.log("m", [[1.0, 2.0]], ["a"])
client.close(timeout=0)
heavy = ("tensorflow", "keras", "fastapi", "uvicorn", "starlette", "redis", "sklearn", "pandas")
print("LOADED", sorted({m.split(".")[0] for m in sys.modules} & set(heavy)))
"""


def test_client_import_loads_no_tensorflow_fastapi_or_uvicorn() -> None:
    out = subprocess.run(
        [sys.executable, "-c", CHILD], capture_output=True, text=True, timeout=120,
        env={"PATH": "/usr/bin:/bin"}, cwd=Path(__file__).resolve().parents[3],
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert "LOADED []" in out.stdout, out.stdout[-2000:]
