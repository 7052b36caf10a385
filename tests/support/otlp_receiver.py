"""A real OTLP metrics receiver for tests, built on ``opentelemetry-proto``.

Tests prove export "on the wire": the SDK's real OTLP exporters (gRPC and
HTTP/protobuf) send to this receiver, which decodes the same protobuf messages
a Collector would. It stands in for the Collector in the compose e2e test too,
where no Collector image exists::

    python -m tests.support.otlp_receiver --grpc-port 4317 --http-port 4318 --dump /tmp/otlp.json

As a process it serves ``GET /names`` (received metric names), ``GET /points``
(decoded data points as JSON) and ``GET /healthz`` on the HTTP port, next to
``POST /v1/metrics``. Only ``grpcio``, ``opentelemetry-proto`` and the standard
library are needed, all of which the service image already has (the gRPC
exporter depends on them).
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import signal
import tempfile
import threading
import time
import zlib
from collections.abc import Iterable
from concurrent import futures
from dataclasses import asdict, dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

import grpc
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2, metrics_service_pb2_grpc
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.metrics.v1 import metrics_pb2


def _any_value(value: AnyValue) -> Any:
    kind = value.WhichOneof("value")
    if kind is None:
        return None
    if kind == "array_value":
        return [_any_value(v) for v in value.array_value.values]
    if kind == "kvlist_value":
        return _attrs(value.kvlist_value.values)
    if kind == "bytes_value":
        return value.bytes_value.hex()
    return getattr(value, kind)


def _attrs(kvs: Iterable[KeyValue]) -> dict[str, Any]:
    return {kv.key: _any_value(kv.value) for kv in kvs}


@dataclass
class DataPoint:
    """One decoded data point, flattened with its metric and resource."""

    name: str
    unit: str
    kind: str  # gauge | sum | histogram | exponential_histogram | summary
    attributes: dict[str, Any]
    value: float | None = None  # gauge and sum
    count: int | None = None  # histogram
    sum: float | None = None
    bucket_counts: list[int] = field(default_factory=list)
    explicit_bounds: list[float] = field(default_factory=list)
    monotonic: bool | None = None
    resource: dict[str, Any] = field(default_factory=dict)
    scope: str = ""
    transport: str = ""
    time_unix_nano: int = 0


def _number(point: metrics_pb2.NumberDataPoint) -> float:
    return float(point.as_double if point.WhichOneof("value") == "as_double" else point.as_int)


def decode(request: metrics_service_pb2.ExportMetricsServiceRequest, transport: str) -> list[DataPoint]:
    """Flatten an export request into data points."""
    out: list[DataPoint] = []
    for rm in request.resource_metrics:
        resource = _attrs(rm.resource.attributes)
        for sm in rm.scope_metrics:
            for metric in sm.metrics:
                kind = metric.WhichOneof("data") or ""
                common = {
                    "name": metric.name,
                    "unit": metric.unit,
                    "kind": kind,
                    "resource": resource,
                    "scope": sm.scope.name,
                    "transport": transport,
                }
                if kind in ("gauge", "sum"):
                    data = getattr(metric, kind)
                    mono = data.is_monotonic if kind == "sum" else None
                    for p in data.data_points:
                        out.append(
                            DataPoint(
                                attributes=_attrs(p.attributes),
                                value=_number(p),
                                monotonic=mono,
                                time_unix_nano=p.time_unix_nano,
                                **common,
                            )
                        )
                elif kind == "histogram":
                    for h in metric.histogram.data_points:
                        out.append(
                            DataPoint(
                                attributes=_attrs(h.attributes),
                                count=h.count,
                                sum=h.sum,
                                bucket_counts=list(h.bucket_counts),
                                explicit_bounds=list(h.explicit_bounds),
                                time_unix_nano=h.time_unix_nano,
                                **common,
                            )
                        )
                else:  # not produced by Driftwatch; keep the name visible
                    out.append(DataPoint(attributes={}, **common))
    return out


class _Servicer(metrics_service_pb2_grpc.MetricsServiceServicer):
    def __init__(self, receiver: OtlpReceiver) -> None:
        self._receiver = receiver

    def Export(  # name fixed by the generated gRPC servicer
        self, request: metrics_service_pb2.ExportMetricsServiceRequest, context: Any
    ) -> metrics_service_pb2.ExportMetricsServiceResponse:
        self._receiver.add(request, "grpc")
        return metrics_service_pb2.ExportMetricsServiceResponse()


def _handler_for(receiver: OtlpReceiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:  # quiet
            return

        def _send(self, status: int, body: bytes, content_type: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_POST(self) -> None:
            if self.path.rstrip("/") != "/v1/metrics":
                self._send(404, b"not found", "text/plain")
                return
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            encoding = (self.headers.get("Content-Encoding") or "").lower()
            if encoding == "gzip":
                body = gzip.decompress(body)
            elif encoding == "deflate":
                body = zlib.decompress(body)
            request = metrics_service_pb2.ExportMetricsServiceRequest()
            try:
                request.ParseFromString(body)
            except Exception:
                self._send(400, b"bad protobuf", "text/plain")
                return
            receiver.add(request, "http")
            response = metrics_service_pb2.ExportMetricsServiceResponse().SerializeToString()
            self._send(200, response, "application/x-protobuf")

        def do_GET(self) -> None:
            if self.path == "/healthz":
                self._send(200, b"ok", "text/plain")
            elif self.path == "/names":
                self._send(200, json.dumps(sorted(receiver.names())).encode(), "application/json")
            elif self.path == "/points":
                points = [asdict(p) for p in receiver.points()]
                self._send(200, json.dumps(points).encode(), "application/json")
            else:
                self._send(404, b"not found", "text/plain")

    return Handler


class OtlpReceiver:
    """gRPC (and optionally HTTP) OTLP metrics receiver on free ports.

    Port 0 means "pick a free one" (never assume 4317/4318 are free here).
    ``http_port=None`` disables the HTTP side.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        grpc_port: int | None = 0,
        http_port: int | None = 0,
        dump: str | None = None,
    ) -> None:
        self.host = host
        self._want_grpc = grpc_port
        self._want_http = http_port
        self.dump = dump
        self.grpc_port: int | None = None
        self.http_port: int | None = None
        self._requests: list[tuple[str, metrics_service_pb2.ExportMetricsServiceRequest]] = []
        self._points: list[DataPoint] = []
        self._cond = threading.Condition()
        self._grpc: grpc.Server | None = None
        self._http: ThreadingHTTPServer | None = None
        self._http_thread: threading.Thread | None = None

    # -- lifecycle -------------------------------------------------------------
    def start(self) -> OtlpReceiver:
        if self._want_grpc is not None:
            server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
            metrics_service_pb2_grpc.add_MetricsServiceServicer_to_server(_Servicer(self), server)
            self.grpc_port = server.add_insecure_port(f"{self.host}:{self._want_grpc}")
            if not self.grpc_port:
                raise RuntimeError(f"cannot bind gRPC on {self.host}:{self._want_grpc}")
            server.start()
            self._grpc = server
        if self._want_http is not None:
            httpd = ThreadingHTTPServer((self.host, self._want_http), _handler_for(self))
            httpd.daemon_threads = True
            self.http_port = int(httpd.server_address[1])
            self._http = httpd
            self._http_thread = threading.Thread(
                target=httpd.serve_forever, name="otlp-http", daemon=True
            )
            self._http_thread.start()
        return self

    def stop(self) -> None:
        if self._grpc is not None:
            self._grpc.stop(grace=None)
            self._grpc = None
        if self._http is not None:
            self._http.shutdown()
            self._http.server_close()
            self._http = None

    def __enter__(self) -> OtlpReceiver:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- endpoints -------------------------------------------------------------
    @property
    def grpc_endpoint(self) -> str:
        """For ``OTEL_EXPORTER_OTLP_ENDPOINT`` with protocol ``grpc``."""
        return f"http://{self._client_host}:{self.grpc_port}"

    @property
    def http_endpoint(self) -> str:
        """For ``OTEL_EXPORTER_OTLP_ENDPOINT`` with ``http/protobuf`` (the exporter adds
        ``/v1/metrics``)."""
        return f"http://{self._client_host}:{self.http_port}"

    @property
    def _client_host(self) -> str:
        return "127.0.0.1" if self.host in ("0.0.0.0", "") else self.host

    # -- collected data ----------------------------------------------------------
    def add(self, request: metrics_service_pb2.ExportMetricsServiceRequest, transport: str) -> None:
        points = decode(request, transport)
        with self._cond:
            self._requests.append((transport, request))
            self._points.extend(points)
            self._cond.notify_all()
        if self.dump:
            self._write_dump()

    def _write_dump(self) -> None:
        assert self.dump is not None
        with self._cond:
            data = {
                "names": sorted({p.name for p in self._points}),
                "requests": len(self._requests),
                "points": [asdict(p) for p in self._points[-2000:]],
            }
        directory = os.path.dirname(os.path.abspath(self.dump))
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=".otlp-dump-")
        with os.fdopen(fd, "w") as fh:
            json.dump(data, fh)
        os.replace(tmp, self.dump)

    @property
    def requests(self) -> list[tuple[str, metrics_service_pb2.ExportMetricsServiceRequest]]:
        with self._cond:
            return list(self._requests)

    def points(self, name: str | None = None) -> list[DataPoint]:
        with self._cond:
            return [p for p in self._points if name is None or p.name == name]

    def names(self) -> set[str]:
        with self._cond:
            return {p.name for p in self._points}

    def latest(self, name: str) -> list[DataPoint]:
        """The points of ``name`` from the most recent request that carried it."""
        with self._cond:
            stamps = [p.time_unix_nano for p in self._points if p.name == name]
            if not stamps:
                return []
            last = max(stamps)
            return [p for p in self._points if p.name == name and p.time_unix_nano == last]

    def clear(self) -> None:
        with self._cond:
            self._requests.clear()
            self._points.clear()

    def wait_for(self, names: Iterable[str], timeout: float = 10.0) -> set[str]:
        """Block until every name has arrived; returns the missing ones on timeout."""
        wanted = set(names)
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                missing = wanted - {p.name for p in self._points}
                remaining = deadline - time.monotonic()
                if not missing or remaining <= 0:
                    return missing
                self._cond.wait(remaining)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="OTLP metrics receiver (Collector stand-in)")
    parser.add_argument("--host", default="0.0.0.0")
    parser.add_argument("--grpc-port", type=int, default=4317)
    parser.add_argument("--http-port", type=int, default=4318)
    parser.add_argument("--dump", default=None, help="JSON file rewritten after each request")
    args = parser.parse_args(argv)
    receiver = OtlpReceiver(args.host, args.grpc_port, args.http_port, args.dump).start()
    print(
        f"otlp receiver: grpc {args.host}:{receiver.grpc_port} http {args.host}:{receiver.http_port}",
        flush=True,
    )
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    stop.wait()
    receiver.stop()


if __name__ == "__main__":
    main()
