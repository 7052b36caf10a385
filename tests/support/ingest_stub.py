"""A real HTTP server speaking the ingest contract's answers, scripted per request.

Why not the model service itself: these tests exercise the client's queue and
retry logic (503s, refused connections, 413, partial 422s), answers the real
service gives only under faults. The server is a real one on a local port,
reached over real sockets; the client is not touched. The client's tests
against the real model service live in ``tests/integration/driftwatch``.
"""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

__all__ = ["IngestStub", "Received", "free_port"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: dict[str, object]
    status: int = 0

    @property
    def items(self) -> list[dict[str, object]]:
        key = "rows" if "rows" in self.body else "labels"
        return self.body[key]  # type: ignore[return-value]


# A rule sees the request and answers (status, body, headers), or None for the default 202.
Rule = Callable[[Received], "tuple[int, dict[str, object], dict[str, str]] | None"]


@dataclass
class IngestStub:
    """Answers 202 as the contract says, unless ``script`` (consumed in order) or ``rule`` says otherwise."""

    port: int = 0
    script: list[int] = field(default_factory=list)
    rule: Rule | None = None
    hold: threading.Event | None = None  # while set... cleared: requests wait (a hung server)
    received: list[Received] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("content-length", 0)))
                request = Received(self.path, {k.lower(): v for k, v in self.headers.items()}, json.loads(raw))
                if stub.hold is not None:
                    stub.hold.wait()
                status, body, headers = stub.answer(request)
                request.status = status
                payload = json.dumps(body).encode()
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.server.daemon_threads = True
        self.port = int(self.server.server_address[1])
        self.url = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def answer(self, request: Received) -> tuple[int, dict[str, object], dict[str, str]]:
        with self._lock:
            self.received.append(request)
            scripted = self.script.pop(0) if self.script else None
        if scripted is not None and scripted != 202:
            return scripted, {"detail": f"scripted {scripted}"}, {"Retry-After": "0"}
        if self.rule is not None:
            ruled = self.rule(request)
            if ruled is not None:
                return ruled
        n = len(request.items)
        if "rows" in request.body:
            return 202, {"ids": [r["id"] for r in request.items], "accepted": n}, {}
        return 202, {"accepted": n}, {}

    def accepted_ids(self) -> list[str]:
        """Ids of rows in requests answered 202, in arrival order."""
        with self._lock:
            return [str(item["id"]) for r in self.received if r.status == 202 for item in r.items]

    def close(self) -> None:
        if self.hold is not None:
            self.hold.set()
        self.server.shutdown()
        self.server.server_close()
