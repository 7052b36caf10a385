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
   without parsing, in its own process (so the client is what is measured), and with ``--url``
   also a running model service (``POST /models/{name}/predictions`` of a
   registered model with ``--features`` features and classes "no"/"yes"),
   whose own ingest then sets the pace.
"""

from __future__ import annotations

import argparse
import socket
import statistics
import subprocess
import sys
import time
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


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--features", type=int, default=30)
    ap.add_argument("--url", help="a running model service, for the throughput against the real ingest")
    ap.add_argument("--model", default="bench", help="a model registered there with --features features")
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
    finally:
        server.kill()
        server.wait()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
