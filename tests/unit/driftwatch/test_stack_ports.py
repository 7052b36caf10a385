"""``driftwatch up`` on a port something already listens on says so and starts nothing.

Before, its services failed to bind while ``up`` waited for their ``/livez`` and got the
other process's answer: it printed "Stack is up" with URLs that were not its own, then that
the model service "failed at start-up", and left the monitor logging its way down.
"""

from __future__ import annotations

import io
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from rich.console import Console

from driftwatch.cli.stack import LocalStack
from driftwatch.local_processes import free_port, port_in_use


class _Live(BaseHTTPRequestHandler):
    """Another stack's service: answers ``/livez`` 200, as a running monitor does."""

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def other_stack() -> Iterator[int]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Live)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield int(server.server_address[1])
    server.shutdown()
    server.server_close()


def test_port_in_use_tells_a_listener_from_a_free_port(other_stack: int) -> None:
    assert port_in_use("127.0.0.1", other_stack)
    assert not port_in_use("127.0.0.1", free_port())


def test_up_on_a_taken_port_starts_nothing_and_names_the_option(
    other_stack: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # a private redis-server would keep its data under var/ here
    monkeypatch.delenv("DRIFTWATCH_HOST", raising=False)
    out = io.StringIO()
    stack = LocalStack(None, free_port(), other_stack, None, None, Console(file=out, width=300))
    try:
        assert stack.run_until_interrupted() == 1
    finally:
        stack.stop()
    text = out.getvalue()
    assert f"port {other_stack} on 127.0.0.1 is already in use" in text and "--monitor-port" in text
    assert "Stack is up" not in text and "redis-server" not in text
    assert stack._children == [] and not (tmp_path / "var").exists()
