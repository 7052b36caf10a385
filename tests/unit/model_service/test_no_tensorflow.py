"""The serving process never imports TensorFlow (or Keras): LiteRT serves the model.

Checked in a fresh interpreter, because this test session imports TensorFlow
itself to train the fixture model.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from driftwatch.local_processes import free_port

CHILD = """
import sys
from fastapi.testclient import TestClient
from model_service.app import create_app
from model_service.serving_settings import ModelServiceSettings

settings = ModelServiceSettings(
    REDIS_URL=sys.argv[1], DRIFTWATCH_MODEL_DIR=sys.argv[2], DRIFTWATCH_SPILL_DIR=sys.argv[3],
    DRIFTWATCH_PUBLISH_CLOSE_TIMEOUT_S=0.5,
)
app = create_app(settings)
after_create = sorted(m for m in sys.modules if m.split(".")[0] in ("tensorflow", "keras", "tf_keras"))
with TestClient(app) as client:  # the lifespan loads the model
    assert client.post("/predict", json={"features": [0.0] * 64}).status_code == 200
after_predict = sorted(m for m in sys.modules if m.split(".")[0] in ("tensorflow", "keras", "tf_keras"))
print("CREATE", after_create[:5])
print("PREDICT", after_predict[:5])
"""


def test_serving_does_not_import_tensorflow(model_dir: Path, tmp_path: Path) -> None:
    redis_url = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens: predictions are still answered
    out = subprocess.run(
        [sys.executable, "-c", CHILD, redis_url, str(model_dir), str(tmp_path / "spill")],
        capture_output=True, text=True, timeout=120, env={"OTEL_SDK_DISABLED": "true", "PATH": "/usr/bin:/bin"},
        cwd=Path(__file__).resolve().parents[3],
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert "CREATE []" in out.stdout, out.stdout
    assert "PREDICT []" in out.stdout, out.stdout


INGEST_ONLY_CHILD = """
import sys
from fastapi.testclient import TestClient
from model_service.app import create_app
from model_service.serving_settings import ModelServiceSettings

settings = ModelServiceSettings(REDIS_URL=sys.argv[1], DRIFTWATCH_SPILL_DIR=sys.argv[2],
                                DRIFTWATCH_PUBLISH_CLOSE_TIMEOUT_S=0.5)
with TestClient(create_app(settings)) as client:  # no model directory: nothing to load
    answer = client.post("/predict", json={"features": [0.0]})
    print("PREDICT", answer.status_code, answer.json()["detail"][:40])
    print("READY", client.get("/readyz").json()["ingest_only"])
print("LOADED", sorted(m for m in sys.modules if m.split(".")[0] in ("tensorflow", "keras", "ai_edge_litert"))[:5])
"""


def test_an_ingest_only_service_loads_no_model_runtime(tmp_path: Path) -> None:
    redis_url = f"redis://127.0.0.1:{free_port()}/0"
    out = subprocess.run(
        [sys.executable, "-c", INGEST_ONLY_CHILD, redis_url, str(tmp_path / "spill")],
        capture_output=True, text=True, timeout=120, env={"OTEL_SDK_DISABLED": "true", "PATH": "/usr/bin:/bin"},
        cwd=Path(__file__).resolve().parents[3],
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert "PREDICT 404 this model service runs without a model" in out.stdout, out.stdout
    assert "READY True" in out.stdout and "LOADED []" in out.stdout, out.stdout
