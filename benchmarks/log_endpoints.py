"""Logging benchmark: rows/s through ``POST /models/{name}/predictions`` and KServe pairs/s, beside
``/predict`` in the same run.

    .venv/bin/python benchmarks/log_endpoints.py [--model-dir DIR] [--rows 20000] [--batch 1000]
                                                 [--connections 1,4] [--rounds 2]

Starts a private ``redis-server`` and one model service the way production
does (``driftwatch serve``: uvicorn, one worker, telemetry off), serving the
digits model (trained into a temp dir when ``--model-dir`` is not given,
~10 s). The served model is registered, so the same 64-feature, 10-class
model is logged through the ingest endpoints too. Phases, each sending
``--rows`` rows in batches of ``--batch`` over ``--connections`` concurrent
connections (httpx), and each timed until every row is in the Redis stream
(the answer alone says only "queued"):

    predict            POST /predict {"instances": [...]}: scored by LiteRT, then published
    log-by-position    POST /models/{name}/predictions, features as lists, with probabilities and ids
    log-by-name        the same with features as {name: value} mappings
    predict-single     POST /predict {"features": [...]}: one row per request (``--single-rows`` rows)
    log-single         POST /models/{name}/predictions, one row per request
    kserve-pairs       POST /kserve: a V1 request and its response per inference, one row each
                       (figure: rows/s, i.e. pairs/s; each pair is two requests)

Batch phases are compared with ``predict``, single-row phases with ``predict-single``.

Bodies are encoded before the clock starts. Phases are interleaved over
``--rounds``; the best round of each is shown with its ratio to ``predict``
of the same connection count. The machine is shared: compare ratios from one
run, never absolute figures across runs.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import numpy as np
import orjson
import redis

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from driftwatch.local_processes import LocalRedisServer, free_port, wait_for_http  # noqa: E402
from shared.keys import Keys  # noqa: E402
from shared.model_metadata import ModelMetadata  # noqa: E402

Request = tuple[str, bytes, dict[str, str]]


def _train(out: Path) -> None:
    script = ("import sys\nfrom pathlib import Path\nfrom driftwatch.trainer.datasets import load_dataset\n"
              "from driftwatch.trainer.train import TrainConfig, train\n"
              "train(load_dataset('digits'), Path(sys.argv[1]), TrainConfig(epochs=15, seed=0))\n")
    subprocess.run([sys.executable, "-c", script, str(out)], check=True, cwd=ROOT)


BATCH_PHASES = ("predict", "log-by-position", "log-by-name")
SINGLE_PHASES = ("predict-single", "log-single", "kserve-pairs")


def _phase_requests(
    meta: ModelMetadata, rows: int, batch: int, single_rows: int, seed: int
) -> dict[str, tuple[int, list[Request]]]:
    """Each phase's rows and requests, encoded beforehand."""
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 17, size=(rows, meta.n_features)).astype(float)
    p = rng.dirichlet(np.ones(meta.n_classes), rows).round(6)
    y = p.argmax(axis=1)
    json_h = {"content-type": "application/json"}
    out: dict[str, list[Request]] = {name: [] for name in (*BATCH_PHASES, *SINGLE_PHASES)}
    path = f"/models/{meta.name}/predictions"
    names = meta.feature_names
    for start in range(0, rows, batch):
        part = slice(start, min(start + batch, rows))
        out["predict"].append(("/predict", orjson.dumps({"instances": x[part].tolist()}), json_h))
        by_position = [{"id": f"b{seed}-{i}", "features": x[i].tolist(), "prediction": str(y[i]),
                        "probabilities": p[i].tolist()} for i in range(part.start, part.stop)]
        out["log-by-position"].append((path, orjson.dumps({"rows": by_position}), json_h))
        by_name = [{**r, "id": f"n{seed}-{r['id']}", "features": dict(zip(names, r["features"], strict=True))}
                   for r in by_position]
        out["log-by-name"].append((path, orjson.dumps({"rows": by_name}), json_h))
    for i in range(single_rows):
        out["predict-single"].append(("/predict", orjson.dumps({"features": x[i].tolist()}), json_h))
        row = {"id": f"s{seed}-{i}", "features": x[i].tolist(), "prediction": str(y[i]), "probabilities": p[i].tolist()}
        out["log-single"].append((path, orjson.dumps({"rows": [row]}), json_h))
    ce = {"ce-specversion": "1.0", "ce-source": "http://localhost:9081/", "ce-inferenceservicename": meta.name,
          "ce-namespace": "default", "ce-component": "predictor", "content-type": "application/json"}
    for i in range(single_rows):
        ce_id = {"ce-id": f"k{seed}-{i}", "ce-time": "2026-01-30T10:45:00Z"}
        out["kserve-pairs"].append(("/kserve", orjson.dumps({"instances": [x[i].tolist()]}),
                                    {**ce, **ce_id, "ce-type": "org.kubeflow.serving.inference.request"}))
        out["kserve-pairs"].append(("/kserve", orjson.dumps({"predictions": [p[i].tolist()]}),
                                    {**ce, **ce_id, "ce-type": "org.kubeflow.serving.inference.response"}))
    return {name: (single_rows if name in SINGLE_PHASES else rows, requests) for name, requests in out.items()}


async def _send(url: str, requests: list[Request], connections: int, ordered_pairs: bool) -> None:
    """Post every request over ``connections`` concurrent connections (a pair's halves in order on one)."""
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=60) as client:
        step = 2 if ordered_pairs else 1
        units = [requests[i : i + step] for i in range(0, len(requests), step)]

        async def worker(k: int) -> None:
            for unit in units[k::connections]:
                for path, body, headers in unit:
                    response = await client.post(path, content=body, headers=headers)
                    if response.status_code not in (200, 202):
                        raise RuntimeError(f"{path}: {response.status_code} {response.text[:300]}")

        await asyncio.gather(*(worker(k) for k in range(connections)))


def _timed(run: Callable[[], None], stream_len: Callable[[], int], target: int) -> float:
    started = time.perf_counter()
    run()
    while stream_len() < target:
        time.sleep(0.002)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model-dir", type=Path)
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--batch", type=int, default=1_000)
    parser.add_argument("--single-rows", type=int, default=2_000)
    parser.add_argument("--connections", default="1,4")
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    connection_counts = [int(c) for c in args.connections.split(",")]

    with tempfile.TemporaryDirectory() as tmp, LocalRedisServer() as server:
        model_dir = args.model_dir
        if model_dir is None:
            model_dir = Path(tmp) / "model"
            _train(model_dir)
        meta = ModelMetadata.load(model_dir)
        port = free_port()
        env = {**os.environ, "REDIS_URL": server.url, "OTEL_SDK_DISABLED": "true",
               "DRIFTWATCH_SPILL_DIR": str(Path(tmp) / "spill"), "DRIFTWATCH_STREAM_MAXLEN": "100000000"}
        log = (Path(tmp) / "service.log").open("wb")
        service = subprocess.Popen(
            [sys.executable, "-m", "driftwatch.cli", "serve", "--model-dir", str(model_dir), "--port", str(port),
             "--log-level", "warning"], env=env, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT,
        )  # fmt: skip
        url = f"http://127.0.0.1:{port}"
        try:
            wait_for_http(f"{url}/readyz", processes=[service])
            r = redis.Redis.from_url(server.url)
            stream = Keys(meta.name).predictions
            best: dict[tuple[str, int], float] = {}
            for round_ in range(args.rounds):
                for connections in connection_counts:
                    phases = _phase_requests(meta, args.rows, args.batch, args.single_rows,
                                             seed=1_000 * round_ + connections)
                    for name, (rows, requests) in phases.items():
                        r.delete(stream)

                        def send(requests: list[Request] = requests, pairs: bool = name == "kserve-pairs",
                                 connections: int = connections) -> None:
                            asyncio.run(_send(url, requests, connections, ordered_pairs=pairs))

                        rate = rows / _timed(send, lambda: int(r.xlen(stream)), rows)
                        best[name, connections] = max(best.get((name, connections), 0.0), rate)
                        print(f"round {round_} conns {connections} {name:16s} {rate:10,.0f} rows/s", flush=True)
            print()
            print(f"{args.rows} rows in batches of {args.batch}, {args.single_rows} rows one per request "
                  f"({meta.n_features} features, {meta.n_classes} classes), best of {args.rounds} rounds, timed "
                  "until every row is in the stream")
            print("| phase | " + " | ".join(f"{c} conn: rows/s (ratio)" for c in connection_counts) + " |")
            print("| --- | " + " | ".join("---:" for _ in connection_counts) + " |")
            for name in (*BATCH_PHASES, *SINGLE_PHASES):
                base = "predict" if name in BATCH_PHASES else "predict-single"
                cells = [f"{best[name, c]:,.0f} ({best[name, c] / best[base, c]:.2f}x)" for c in connection_counts]
                print(f"| {name} | " + " | ".join(cells) + " |")
            print(json.dumps({f"{n}@{c}": round(v) for (n, c), v in best.items()}))
        finally:
            service.terminate()
            service.wait(timeout=30)
            log.close()


if __name__ == "__main__":
    main()
