"""``GET /models`` on a monitor with many registered versions: metadata decoded once per version
(``monitor.registry_reads``) against decoded on every request (the old path, ``shared.registry.read_models``).

    .venv/bin/python benchmarks/registry_reads.py [--models 20] [--versions 3] [--features 64]
        [--sequential 50] [--concurrency 200] [--rounds 5]

One private redis-server (a free port); ``--models`` x ``--versions`` versions of ``--features``
float features registered through the monitor's own registration route (``PUT
/models/{name}/versions/{version}``, 400 reference rows each). Then, for each path in turn (old
first, then new; ``--repeat`` alternates them again), a fresh real monitor process (uvicorn, one
worker, telemetry off, no default model) is started on that Redis, left to discover every model,
and timed from this process:

- sequential: ``--sequential`` requests one after another, after one warm-up request; median
  and p90 latency;
- concurrent: ``--rounds`` bursts of ``--concurrency`` requests sent at once (one new connection
  each); requests answered per second, p50 / p99 latency, and the answers that were not 200 (a
  503 is the pool's timeout). The load generator shares the machine's cores with the monitor.

Every answer of both paths must be the same JSON (checked); compare the ratios printed, measured
in one run, not absolute figures across runs.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from driftwatch.local_processes import LocalRedisServer, free_port, wait_for_http

ROOT = Path(__file__).resolve().parents[1]

# The monitor with the old read path: every read decodes every version's metadata (shared.registry.read_models).
LAUNCH = """
import sys
import uvicorn
sys.path.insert(0, {root!r})
import monitor.app
from monitor.registry_reads import RegistryReader
from shared.registry import read_model, read_models

class DecodedEveryRead(RegistryReader):
    async def models(self, names):
        return await read_models(self.client, list(names))

    async def model(self, name):
        return await read_model(self.client, name)

if sys.argv[1] == "old":
    monitor.app.RegistryReader = DecodedEveryRead
uvicorn.run(monitor.app.create_app(), host="127.0.0.1", port=int(sys.argv[2]), log_level="warning")
"""


def registration(features: int, seed: int, rows: int = 400) -> dict[str, Any]:
    rng = np.random.default_rng(seed)
    probs = rng.dirichlet([1, 1], rows)
    reference: dict[str, Any] = {f"f{j}": rng.normal(size=rows).round(4).tolist() for j in range(features)}
    reference.update(pred=(probs[:, 1] > 0.5).astype(int).tolist(), p0=probs[:, 0].tolist(), p1=probs[:, 1].tolist())
    return {
        "metadata": {
            "feature_names": [f"f{j}" for j in range(features)],
            "prediction_column": "pred",
            "probability_columns": ["p0", "p1"],
        },
        "reference": reference,
    }


@dataclass
class PathResult:
    path: str
    sequential_ms: list[float] = field(default_factory=list)
    latencies_ms: list[float] = field(default_factory=list)
    answered_per_s: list[float] = field(default_factory=list)
    statuses: Counter[int] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)  # requests with no answer, by exception
    first_ms: float = 0.0
    body: bytes = b""


def start_monitor(redis_url: str, path: str, workdir: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    env = os.environ | {
        "REDIS_URL": redis_url,
        "DRIFTWATCH_NO_DEFAULT_MODEL": "true",
        "OTEL_SDK_DISABLED": "true",
        "DRIFTWATCH_CONSUMER_NAME": f"bench-{path}",
        "DRIFTWATCH_MAX_REGISTRATION_BYTES": str(50_000_000),
    }
    log = (workdir / f"monitor-{path}-{port}.log").open("ab")
    process = subprocess.Popen(
        [sys.executable, "-c", LAUNCH.format(root=str(ROOT)), path, str(port)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=ROOT,
    )
    url = f"http://127.0.0.1:{port}"
    wait_for_http(f"{url}/readyz", 120, processes=[process])
    return process, url


def stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


async def register_all(url: str, models: int, versions: int, features: int) -> None:
    async with httpx.AsyncClient(base_url=url, timeout=120) as http:
        for m in range(models):
            for v in range(versions):
                answer = await http.put(f"/models/m{m:03d}/versions/{v + 1}", json=registration(features, m * 100 + v))
                answer.raise_for_status()


async def wait_watching(url: str, models: int) -> None:
    """Until the monitor's fleet watches every model: its workers' start-up is not timed."""
    async with httpx.AsyncClient(base_url=url, timeout=60) as http:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            if len((await http.get("/readyz")).json().get("models", {})) >= models:
                return
            await asyncio.sleep(0.2)
    raise RuntimeError(f"the monitor does not watch {models} models")


async def measure(url: str, result: PathResult, sequential: int, concurrency: int, rounds: int) -> None:
    async with httpx.AsyncClient(base_url=url, timeout=120) as http:
        started = time.perf_counter()
        first = await http.get("/models")
        result.first_ms = (time.perf_counter() - started) * 1000
        first.raise_for_status()
        result.body = first.content
        for _ in range(sequential):
            started = time.perf_counter()
            answer = await http.get("/models")
            result.sequential_ms.append((time.perf_counter() - started) * 1000)
            if answer.content != result.body:
                raise RuntimeError("GET /models changed between two reads of the same registry")
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)

    async def one(http: httpx.AsyncClient) -> None:
        started = time.perf_counter()
        try:
            answer = await http.get("/models")
            result.statuses[answer.status_code] += 1
        except httpx.HTTPError as exc:
            result.errors[type(exc).__name__] += 1
            return
        result.latencies_ms.append((time.perf_counter() - started) * 1000)

    for _ in range(rounds):
        # New connections each round: one kept from the last round may meet uvicorn's keep-alive close.
        async with httpx.AsyncClient(base_url=url, timeout=120, limits=limits) as http:
            started = time.perf_counter()
            await asyncio.gather(*(one(http) for _ in range(concurrency)))
            result.answered_per_s.append(concurrency / (time.perf_counter() - started))


def quantile(values: list[float], q: float) -> float:
    return float(np.quantile(values, q)) if values else float("nan")


def table(old: PathResult, new: PathResult) -> str:
    def row(label: str, a: float, b: float, higher_is_better: bool = False) -> str:
        shown = f"{(b / a if higher_is_better else a / b):.1f}x" if a and b else ""
        return f"| {label} | {a:.1f} | {b:.1f} | {shown} |"

    lines = [
        "| GET /models | decoded every read (old) | decoded once a version (new) | new is faster by |",
        "| --- | --- | --- | --- |",
        row("first request after start (ms)", old.first_ms, new.first_ms),
        row("sequential, median (ms)", statistics.median(old.sequential_ms), statistics.median(new.sequential_ms)),
        row("sequential, p90 (ms)", quantile(old.sequential_ms, 0.9), quantile(new.sequential_ms, 0.9)),
        row("concurrent, p50 (ms)", quantile(old.latencies_ms, 0.5), quantile(new.latencies_ms, 0.5)),
        row("concurrent, p99 (ms)", quantile(old.latencies_ms, 0.99), quantile(new.latencies_ms, 0.99)),
        row(
            "concurrent, answered per s (median round)",
            statistics.median(old.answered_per_s),
            statistics.median(new.answered_per_s),
            higher_is_better=True,
        ),
    ]
    for path in (old, new):
        lines.append(
            f"\n{path.path}: answers by status {dict(sorted(path.statuses.items()))}, "
            f"no answer {dict(path.errors) or 0}"
        )
    return "\n".join(lines)


async def run(args: argparse.Namespace) -> None:
    with LocalRedisServer() as redis_server, tempfile.TemporaryDirectory(prefix="bench-registry-") as tmp:
        workdir = Path(tmp)
        results: dict[str, list[PathResult]] = {"old": [], "new": []}
        registered = False
        for _ in range(args.repeat):
            for path in ("old", "new"):
                process, url = start_monitor(redis_server.url, path, workdir)
                try:
                    if not registered:
                        await register_all(url, args.models, args.versions, args.features)
                        registered = True
                    await wait_watching(url, args.models)
                    result = PathResult(path)
                    await measure(url, result, args.sequential, args.concurrency, args.rounds)
                    results[path].append(result)
                finally:
                    stop(process)
        old, new = results["old"][-1], results["new"][-1]
        if old.body != new.body:
            raise RuntimeError("the two paths answered GET /models differently")
        print(
            f"{args.models} models x {args.versions} versions x {args.features} features; "
            f"GET /models answer {len(new.body):,} bytes, identical on both paths. "
            f"Concurrent: {args.rounds} rounds of {args.concurrency} requests at once. "
            f"Last of {args.repeat} pair(s):"
        )
        print(table(old, new))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--models", type=int, default=20)
    parser.add_argument("--versions", type=int, default=3)
    parser.add_argument("--features", type=int, default=64)
    parser.add_argument("--sequential", type=int, default=50)
    parser.add_argument("--concurrency", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--repeat", type=int, default=1, help="old/new pairs to run (the last pair is printed)")
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
