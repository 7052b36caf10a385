"""README, "Watch your own model", step by step, as a user without TensorFlow runs it.

Every command is a real process: ``driftwatch up --ingest-only`` (its own redis-server,
a model service that only logs, the monitor), ``driftwatch register --monitor-url``, and
the user's own script (a scikit-learn model, ``driftwatch.Client``). TensorFlow and Keras
are made unimportable for all of them (a package of that name that raises ImportError comes
first on their path), so the section works where TensorFlow is not installed. The stack
serves no model, so its monitor has none by default: it lists and logs the registered model
alone, never a ``digits-mlp`` nobody logs.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import httpx
import pytest

from driftwatch.local_processes import free_port, wait_for_http

pytestmark = pytest.mark.timeout(600)

ROOT = Path(__file__).resolve().parents[2]
WINDOW = 200

# The user's model and data: what "your own code" stands for in the README.
USER_MODEL = """
import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression

def data(n, seed, income_shift=0.0):
    rng = np.random.default_rng(seed)
    x = pd.DataFrame({"age": rng.normal(40, 10, n), "income": rng.normal(50, 15, n) + income_shift,
                      "tenure": rng.exponential(3, n), "visits": rng.poisson(4, n).astype(float)})
    y = np.where(x["tenure"] + rng.normal(0, 1, n) > 3, "stay", "leave")
    return x, y

x_train, y_train = data(3000, 0)
model = LogisticRegression(max_iter=1000).fit(x_train, y_train)
"""

WRITE_REFERENCE = USER_MODEL + """
x_test, y_test = data(2000, 1)
reference = x_test.assign(prediction=model.predict(x_test), label=y_test)
reference[["p_leave", "p_stay"]] = model.predict_proba(x_test)
reference.to_csv("reference.csv", index=False)
"""

LOG_TRAFFIC = USER_MODEL + """
import sys
from driftwatch import Client

client = Client(sys.argv[1])
for seed, shift in ((2, 0.0), (3, 0.0), (4, 25.0)):  # two windows as in training, then income moves
    x, _ = data(200, seed, income_shift=shift)
    client.log("churn", x, model.predict(x), probabilities=model.predict_proba(x))
assert client.flush(60), client.stats
client.close()
print(client.stats)
"""


def _no_tensorflow(tmp: Path) -> dict[str, str]:
    blocked = tmp / "no-tensorflow"
    for name in ("tensorflow", "keras"):
        (blocked / name).mkdir(parents=True)
        (blocked / name / "__init__.py").write_text(f"raise ImportError('{name} is not installed here')\n")
    env = {k: v for k, v in os.environ.items() if k != "REDIS_URL"}
    return {**env, "PYTHONPATH": os.pathsep.join([str(blocked), str(ROOT)]), "OTEL_SDK_DISABLED": "true"}


def _run(args: list[str], env: dict[str, str], cwd: Path) -> str:
    done = subprocess.run(args, env=env, cwd=cwd, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    return done.stdout


def test_register_serve_and_log_your_own_model_then_see_its_drift(tmp_path: Path) -> None:
    env = _no_tensorflow(tmp_path)
    model_port, monitor_port = free_port(), free_port()
    log = (tmp_path / "up.log").open("w")  # the stack's and its services' output
    stack = subprocess.Popen(
        [sys.executable, "-m", "driftwatch.cli", "up", "--ingest-only", "--model-port", str(model_port),
         "--monitor-port", str(monitor_port), "--window-size", str(WINDOW)],
        env=env, cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    service, monitor = f"http://127.0.0.1:{model_port}", f"http://127.0.0.1:{monitor_port}"
    try:
        wait_for_http(f"{service}/readyz", timeout_s=120, processes=[stack])
        wait_for_http(f"{monitor}/readyz", timeout_s=120, processes=[stack])
        assert httpx.get(f"{monitor}/overview", timeout=30).json()["models"] == []  # no phantom default model
        unprefixed = httpx.get(f"{monitor}/drift", timeout=30)
        assert unprefixed.status_code == 404 and "/models/{name}/" in unprefixed.json()["detail"]
        _run([sys.executable, "-c", textwrap.dedent(WRITE_REFERENCE)], env, tmp_path)
        _run([sys.executable, "-m", "driftwatch.cli", "register", "--name", "churn", "--version", "1",
              "--reference", "reference.csv", "--prediction-column", "prediction",
              "--probability-columns", "p_leave,p_stay", "--label-column", "label",
              "--monitor-url", monitor], env, tmp_path)  # fmt: skip
        printed = _run([sys.executable, "-c", textwrap.dedent(LOG_TRAFFIC), service], env, tmp_path)
        assert "sent_rows=600" in printed and "dropped_rows=0" in printed, printed

        deadline = time.monotonic() + 180
        reports: list[dict[str, object]] = []
        while len(reports) < 3 and time.monotonic() < deadline:
            answer = httpx.get(f"{monitor}/models/churn/drift/history", params={"limit": 3}, timeout=30)
            reports = answer.json()["reports"] if answer.status_code == 200 else []
            time.sleep(0.5)
        assert len(reports) == 3, reports
        steady, moved = reports[1:], reports[0]  # newest first
        assert all("income" not in r["drifted_features"] for r in steady)  # type: ignore[operator]
        assert "income" in moved["drifted_features"]  # type: ignore[operator]
        latest = httpx.get(f"{monitor}/models/churn/drift", timeout=30).json()
        assert latest["window"] == moved["window"] and latest["model"] == "churn"
        assert [m["name"] for m in httpx.get(f"{monitor}/overview", timeout=30).json()["models"]] == ["churn"]
        assert list(httpx.get(f"{monitor}/readyz", timeout=30).json()["models"]) == ["churn"]
    finally:
        stack.send_signal(signal.SIGINT)
        code = stack.wait(timeout=60)
        log.close()
    printed = (tmp_path / "up.log").read_text()
    assert code == 0, printed[-3000:]
    assert "watching model 'churn' (1 watched)" in printed and "digits-mlp" not in printed, printed[-3000:]
