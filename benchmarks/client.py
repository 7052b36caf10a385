"""Client benchmark: what ``driftwatch.Client.log`` costs the caller, and the rows/s it delivers.

    .venv/bin/python benchmarks/client.py [--rows 100000] [--features 30] [--url URL --model NAME]

Two measurements, each against a baseline from the same run:

1. Overhead on the caller's thread: the median time of one ``log`` call
   (1 row, and 100 rows; 30 features with 2 class probabilities, ids made by
   the client), beside a scikit-learn ``predict_proba`` of the same rows
   (a logistic regression: about the cheapest model a caller runs). The
   ratio is what logging adds to serving one request.
2. Throughput: rows/s from ``log`` calls (100 rows each) to the server's 202
   answers (``log`` everything, then ``flush``), beside raw httpx posting the
   same bodies, encoded beforehand, one after another to the same server:
   the HTTP path's ceiling. The ratio is what the client's queue, batching and
   JSON encoding cost. The server is a local HTTP server that answers 202
   without parsing, in its own process (so the client is what is measured), and
   the real model service: ``driftwatch serve --ingest-only`` with a private
   redis-server and a model registered with ``--features`` features and
   classes "no"/"yes", whose own ingest (validation, publishing) then sets the
   pace (``--url``/``--model``: a service already running instead;
   ``--no-service``: the null server only).
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from driftwatch import Client
from driftwatch.client_batches import encode, prediction_block

CALL_ROWS = 100


class _Null(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the model service (uvicorn) does
    disable_nagle_algorithm = True  # else each answer waits ~40 ms for a delayed ACK

    def log_message(self, *args: object) -> None:
        pass

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("content-length", 0)))
        body = b'{"accepted": 0}'
        self.send_response(202)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def serve_null(port: int) -> None:
    """The null server, in its own process (in this one it would share the GIL with the client)."""
    server = ThreadingHTTPServer(("127.0.0.1", port), _Null)
    server.daemon_threads = True
    server.serve_forever()


def null_server() -> tuple[subprocess.Popen[bytes], str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    process = subprocess.Popen([sys.executable, __file__, "--serve-null", str(port)])
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            httpx.post(f"{url}/ping", content=b"")
            return process, url
        except httpx.TransportError:
            time.sleep(0.05)
    process.kill()
    raise RuntimeError("the null server did not start")


def per_call(fn: object, repeat: int) -> float:
    """Median seconds of ``fn()`` over ``repeat`` calls."""
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()  # type: ignore[operator]
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def overhead(url: str, features: int) -> None:
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(0)
    x_train = rng.normal(size=(2000, features))
    model = LogisticRegression().fit(x_train, (x_train[:, 0] > 0).astype(int))
    classes = np.array(["no", "yes"])
    print(f"\nOverhead on the caller's thread ({features} features, median of many calls)")
    with Client(url, flush_on_exit=False, max_queue_rows=10_000_000) as client:
        for rows in (1, CALL_ROWS):
            x = rng.normal(size=(rows, features))
            probabilities = model.predict_proba(x)
            predicted = classes[probabilities.argmax(axis=1)]
            t_predict = per_call(lambda x=x: model.predict_proba(x), 2000)
            t_log = per_call(lambda x=x, p=predicted, q=probabilities: client.log("bench", x, p, q), 2000)
            print(f"    {rows:>4} row(s): log {t_log * 1e6:8.1f} us   predict_proba {t_predict * 1e6:8.1f} us   "
                  f"log / predict {t_log / t_predict:5.2f}x   ({t_log / rows * 1e6:.2f} us a row)")
        client.flush(120)


def throughput(url: str, model: str, rows: int, features: int, label: str) -> None:
    rng = np.random.default_rng(1)
    x = rng.normal(size=(rows, features))
    probabilities = rng.dirichlet([1, 1], size=rows)
    predicted = np.array(["no", "yes"])[probabilities.argmax(axis=1)]

    with Client(url, flush_on_exit=False, max_queue_rows=rows + 1) as client:
        t0 = time.perf_counter()
        for s in range(0, rows, CALL_ROWS):
            client.log(model, x[s : s + CALL_ROWS], predicted[s : s + CALL_ROWS], probabilities[s : s + CALL_ROWS])
        t_logged = time.perf_counter() - t0
        assert client.flush(600), "the client did not drain in 10 minutes"
        t_client = time.perf_counter() - t0
        stats = client.stats
    if stats.sent_rows != rows and label != "null server":
        print(f"    (sent {stats.sent_rows} of {rows}; rejected {stats.rejected_rows}; failures {stats.failures})")

    batch = 500  # the client's default batch
    bodies = [encode(prediction_block(model, x[s : s + batch], predicted[s : s + batch],
                                      probabilities[s : s + batch])) for s in range(0, rows, batch)]
    headers = {"content-type": "application/json"}
    with httpx.Client(base_url=url, timeout=60) as http:
        t0 = time.perf_counter()
        for body in bodies:
            http.post(f"/models/{model}/predictions", content=body, headers=headers).raise_for_status()
        t_raw = time.perf_counter() - t0
    print(f"    {label}: client {rows / t_client:>9,.0f} rows/s (log calls returned after {t_logged:.2f} s, "
          f"flushed after {t_client:.2f} s)   raw httpx {rows / t_raw:>9,.0f} rows/s   "
          f"client / raw {t_raw / t_client:.2f}x")


@contextmanager
def model_service(features: int) -> Iterator[str]:
    """A private redis-server and ``driftwatch serve --ingest-only``, with model "bench" registered."""
    import asyncio

    import redis.asyncio as aioredis

    from driftwatch.local_processes import LocalRedisServer, free_port, wait_for_http
    from shared.keys import Keys
    from shared.model_metadata import DataSummary, ModelMetadata, Reference
    from shared.registry import register_model

    metadata = ModelMetadata(
        name="bench", version="1", feature_names=[f"f{i}" for i in range(features)], class_names=["no", "yes"],
        categorical=[False] * features, label_kind="string",
        data=DataSummary(source="bench", sha256="0" * 64), created_at="2026-01-01T00:00:00Z",
    )
    rng = np.random.default_rng(2)
    classes = rng.integers(0, 2, 1000)
    reference = Reference(
        features=rng.normal(size=(1000, features)).astype(np.float32), predicted_classes=classes,
        probabilities=np.eye(2, dtype=np.float32)[classes], labels=np.zeros(0, np.int64),
    )

    async def register(url: str) -> None:
        client = aioredis.Redis.from_url(url)
        await register_model(client, Keys("bench"), metadata, reference)
        await client.aclose()

    with LocalRedisServer() as redis_server, tempfile.TemporaryDirectory() as spill:
        asyncio.run(register(redis_server.url))
        port = free_port()
        env = {**os.environ, "REDIS_URL": redis_server.url, "DRIFTWATCH_SPILL_DIR": spill,
               "OTEL_SDK_DISABLED": "true", "DRIFTWATCH_STREAM_MAXLEN": "10000000"}
        process = subprocess.Popen(
            [sys.executable, "-m", "driftwatch.cli", "serve", "--ingest-only", "--port", str(port),
             "--log-level", "warning"], env=env,
        )
        try:
            url = f"http://127.0.0.1:{port}"
            wait_for_http(f"{url}/readyz", timeout_s=60, processes=[process])
            yield url
        finally:
            process.terminate()
            process.wait(timeout=30)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--features", type=int, default=30)
    ap.add_argument("--url", help="a running model service, for the throughput against the real ingest")
    ap.add_argument("--model", default="bench", help="a model registered there with --features features")
    ap.add_argument("--no-service", action="store_true", help="only the null server")
    ap.add_argument("--serve-null", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.serve_null:
        serve_null(args.serve_null)
        return 0

    server, null_url = null_server()
    try:
        overhead(null_url, args.features)
        print(f"\nThroughput, {args.rows:,} rows of {args.features} features in log calls of {CALL_ROWS} rows")
        throughput(null_url, "bench", args.rows, args.features, "null server")
        if args.url:
            throughput(args.url, args.model, args.rows, args.features, f"model service {args.url}")
        elif not args.no_service:
            with model_service(args.features) as url:
                throughput(url, "bench", args.rows, args.features, "model service")
    finally:
        server.kill()
        server.wait()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
