"""``driftwatch register`` as a user runs it: a subprocess on a CSV and a Parquet file, read back from a real
monitor process over ``GET /models/{name}`` (issue 15 part 1)."""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from driftwatch.local_processes import wait_for_http
from tests.fault.procs import Service, start, wait_live

KEY = "cli-key"
ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture
def monitor(redis_url: str, tmp_path: Path) -> Iterator[Service]:
    service = start("monitor", {"REDIS_URL": redis_url, "DRIFTWATCH_API_KEY": KEY}, tmp_path, "monitor")
    try:
        wait_live(service)
        wait_for_http(f"{service.url}/readyz", timeout_s=60, processes=[service.process])
        yield service
    finally:
        service.signal(signal.SIGTERM)
        try:
            service.wait(30)
        except subprocess.TimeoutExpired:
            service.stop()


def reference_table(n: int = 3_000) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(7)
    probs = rng.dirichlet([2, 1, 1], n)
    tenure = rng.integers(0, 60, n).astype(np.float64)
    tenure[::50] = np.nan  # missing cells
    return {
        "tenure": tenure, "spend": rng.gamma(2, 30, n), "region": rng.integers(1, 4, n).astype(np.float64),
        "label": np.array(["basic", "plus", "pro"])[probs.argmax(axis=1)],
        "p_basic": probs[:, 0], "p_plus": probs[:, 1], "p_pro": probs[:, 2],
    }


def write_csv(path: Path, table: dict[str, np.ndarray]) -> None:
    names = list(table)
    with path.open("w") as out:
        out.write(",".join(names) + "\n")
        for row in zip(*(table[n] for n in names), strict=True):
            out.write(",".join("" if isinstance(v, float) and np.isnan(v) else str(v) for v in row) + "\n")


CHILD = """
import sys
from driftwatch.cli import app
try:
    app(sys.argv[1:])
except SystemExit as exc:
    code = exc.code
print("TENSORFLOW LOADED", sorted(m for m in sys.modules if m.split(".")[0] in ("tensorflow", "keras"))[:3])
sys.exit(code)
"""


def register(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", CHILD, "register", *args], capture_output=True, text=True,
                          timeout=300, cwd=ROOT, env={"PATH": "/usr/bin:/bin", "COLUMNS": "200"})


ROLES = ["--prediction-column", "label", "--probability-columns", "p_basic,p_plus,p_pro"]


def test_register_a_csv_and_a_parquet_file_through_the_monitor(monitor: Service, tmp_path: Path) -> None:
    table = reference_table()
    csv_path, parquet_path = tmp_path / "ref.csv", tmp_path / "ref.parquet"
    write_csv(csv_path, table)
    pq.write_table(pa.table(table), parquet_path)

    done = register("--name", "plans", "--version", "1", "--reference", str(csv_path), *ROLES,
                    "--sample-rows", "1000", "--monitor-url", monitor.url, "--api-key", KEY)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Registered model plans version 1" in done.stdout
    assert "TENSORFLOW LOADED []" in done.stdout  # no TensorFlow without --keras

    done = register("--name", "plans", "--version", "2", "--reference", str(parquet_path), *ROLES,
                    "--sample-rows", "1000", "--monitor-url", monitor.url, "--api-key", KEY, "--label-join", "carried")
    assert done.returncode == 0, done.stdout + done.stderr

    answer = httpx.get(f"{monitor.url}/models/plans", timeout=30)
    assert answer.status_code == 200, answer.text
    versions = {v["metadata"]["version"]: v["metadata"] for v in answer.json()["versions"]}
    csv_meta, parquet_meta = versions["1"], versions["2"]
    assert csv_meta["feature_names"] == ["tenure", "spend", "region"]
    assert csv_meta["class_names"] == ["basic", "plus", "pro"] and csv_meta["label_kind"] == "string"
    assert csv_meta["categorical"] == [False, False, True]
    summary = csv_meta["reference_summary"]
    assert (summary["rows"], summary["sample_rows"]) == (3_000, 1_000)  # summaries of the whole file
    tenure = summary["features"][0]
    assert (tenure["count"], tenure["missing"]) == (2_940, 60)
    present = table["tenure"][~np.isnan(table["tenure"])]
    assert tenure["max"] == present.max() and tenure["quantiles"][3] == float(np.quantile(present, 0.5))
    # The same data from CSV and from Parquet is the same model (same hash and summaries).
    assert csv_meta["data"]["sha256"] == parquet_meta["data"]["sha256"]
    assert csv_meta["reference_summary"] == parquet_meta["reference_summary"]
    assert (csv_meta["label_join"], parquet_meta["label_join"]) == ("by-id", "carried")

    listed = httpx.get(f"{monitor.url}/models", timeout=30).json()["models"]
    assert [(m["name"], [v["version"] for v in m["versions"]]) for m in listed] == [("plans", ["1", "2"])]

    refused = register("--name", "plans", "--version", "1", "--reference", str(csv_path), "--prediction-column",
                       "label", "--monitor-url", monitor.url, "--api-key", KEY)  # other model, same version
    assert refused.returncode == 1 and "409" in refused.stdout


def test_register_straight_into_redis(monitor: Service, redis_url: str, tmp_path: Path) -> None:
    csv_path = tmp_path / "ref.csv"
    write_csv(csv_path, reference_table(500))
    done = register("--name", "direct", "--version", "1", "--reference", str(csv_path), *ROLES,
                    "--redis-url", redis_url)
    assert done.returncode == 0, done.stdout + done.stderr
    metadata = httpx.get(f"{monitor.url}/models/direct", timeout=30).json()["versions"][0]["metadata"]
    assert metadata["reference_summary"]["rows"] == 500 and metadata["has_probabilities"]
    assert "Warning" not in done.stdout


def test_probability_columns_out_of_class_order_are_warned_about(redis_url: str, tmp_path: Path) -> None:
    """Swapped columns register without any error, and the label-free accuracy estimate is then
    computed on the wrong classes (a new user's churn model: accuracy 1.0, estimate 0.0)."""
    csv_path = tmp_path / "ref.csv"
    write_csv(csv_path, reference_table(500))
    done = register("--name", "swapped", "--version", "1", "--reference", str(csv_path), "--prediction-column",
                    "label", "--probability-columns", "p_pro,p_plus,p_basic", "--redis-url", redis_url)
    assert done.returncode == 0, done.stdout + done.stderr  # a warning, not a refusal: it may be meant
    assert "Warning: the prediction is the most probable class in only" in done.stdout
    assert "in the classes' order (basic, plus, pro)" in done.stdout


def test_bad_files_are_named_without_a_traceback(tmp_path: Path, redis_url: str) -> None:
    csv_path = tmp_path / "bad.csv"
    csv_path.write_text("a,b,y\n1,2,x\n3,oops,y\n")
    done = register("--name", "bad", "--version", "1", "--reference", str(csv_path), "--prediction-column", "y",
                    "--redis-url", redis_url)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "oops" in done.stdout
    done = register("--name", "bad", "--version", "1", "--reference", str(csv_path), "--prediction-column", "z",
                    "--redis-url", redis_url)
    assert done.returncode == 2 and "reference.z: no such column" in done.stdout
    # Options that do not go together: the reason alone, not pydantic's dump of every argument.
    done = register("--name", "bad", "--version", "1", "--reference", str(csv_path), "--prediction-column", "a",
                    "--label-column", "y", "--task", "regression", "--redis-url", redis_url)
    assert done.returncode == 2 and "label_column: a regressor's true values are not used" in done.stdout
    assert "input_value" not in done.stdout and "errors.pydantic.dev" not in done.stdout


def test_a_monitor_without_parquet_gets_json(redis_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A monitor whose environment lacks pyarrow answers Parquet with 415; the CLI sends JSON instead."""
    import threading

    import uvicorn
    from typer.testing import CliRunner

    import monitor.routes.models as routes
    from driftwatch.cli import app
    from driftwatch.local_processes import free_port
    from monitor.app import create_app
    from monitor.monitor_settings import MonitorSettings

    monkeypatch.setattr(routes, "reads_parquet", lambda: False)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(MonitorSettings(REDIS_URL=redis_url)), port=port,
                                           log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        wait_for_http(f"http://127.0.0.1:{port}/livez", timeout_s=60)
        csv_path = tmp_path / "ref.csv"
        write_csv(csv_path, reference_table(300))
        result = CliRunner().invoke(app, ["register", "--name", "json", "--version", "1", "--reference",
                                          str(csv_path), *ROLES, "--monitor-url", f"http://127.0.0.1:{port}"])
        assert result.exit_code == 0, result.output
        answer = httpx.get(f"http://127.0.0.1:{port}/models/json", timeout=30).json()
        assert answer["versions"][0]["metadata"]["reference_summary"]["rows"] == 300
    finally:
        server.should_exit = True
        thread.join(30)
