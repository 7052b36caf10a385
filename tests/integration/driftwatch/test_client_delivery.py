"""The client's queue, batches and retries against a real local HTTP server.

The server (tests/support/ingest_stub.py) answers as the ingest contract does,
and on cue as a service in trouble does: 503 then 202, refused connections
until it starts, a hang, 413, a partial 422, 404.
"""

from __future__ import annotations

import logging
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from driftwatch import Client
from tests.support.ingest_stub import IngestStub, Received, free_port

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture
def stub() -> Iterator[IngestStub]:
    server = IngestStub()
    yield server
    server.close()


def _wait(check: object, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():  # type: ignore[operator]
            return
        time.sleep(0.01)
    raise AssertionError("condition not met in time")


def _log(client: Client, n: int, model: str = "m") -> list[str]:
    return client.log(model, np.random.default_rng(n).normal(size=(n, 3)), np.arange(n) % 2)


def test_503s_then_202s_every_row_arrives_and_the_failure_is_said_once(
    stub: IngestStub, caplog: pytest.LogCaptureFixture
) -> None:
    stub.script = [503, 503, 503]
    caplog.set_level(logging.WARNING, logger="driftwatch.client")
    with Client(stub.url, backoff_s=0.01, flush_on_exit=False) as client:
        ids = [i for _ in range(4) for i in _log(client, 300)]
        assert client.flush(60)
        stats = client.stats
    assert sorted(stub.accepted_ids()) == sorted(ids)  # every row once, in the batches that got 202
    assert stats.sent_rows == 1200 and stats.retries == 3 and stats.failures == {"http 503": 3}
    assert stats.rejected_rows == stats.dropped_rows == stats.queued_rows == 0
    assert len([r for r in caplog.records if "http 503" in r.getMessage()]) == 1


def test_rows_wait_through_refused_connections_until_the_service_starts() -> None:
    port = free_port()
    client = Client(f"http://127.0.0.1:{port}", backoff_s=0.01, max_backoff_s=0.05, flush_on_exit=False)
    ids = _log(client, 50)
    _wait(lambda: client.stats.retries >= 3)
    assert client.stats.failures.get("connection", 0) >= 3 and client.stats.sent_rows == 0
    server = IngestStub(port=port)
    try:
        assert client.flush(60)
        assert sorted(server.accepted_ids()) == sorted(ids)
    finally:
        client.close()
        server.close()


def test_log_never_waits_for_a_hung_service_and_drops_when_the_queue_is_full(
    stub: IngestStub, caplog: pytest.LogCaptureFixture
) -> None:
    stub.hold = threading.Event()  # every request hangs until set
    caplog.set_level(logging.WARNING, logger="driftwatch.client")
    client = Client(stub.url, max_queue_rows=100, linger_s=0, flush_on_exit=False)
    try:
        slowest = 0.0
        for _ in range(10):
            start = time.perf_counter()
            _log(client, 30)
            slowest = max(slowest, time.perf_counter() - start)
        stats = client.stats
        assert stats.logged_rows == 90 and stats.dropped_rows == 210  # 3 calls fit, 7 dropped whole
        assert stats.failures == {"queue full": 7}
        assert slowest < 0.5  # no network wait (generous: the machine is shared)
        assert len([r for r in caplog.records if "queue full" in r.getMessage()]) == 1
        stub.hold.set()
        assert client.flush(60)
        assert client.stats.sent_rows == 90
    finally:
        client.close()


def test_a_partial_422_keeps_what_was_accepted_and_retries_nothing(stub: IngestStub) -> None:
    def refuse_last(request: Received) -> tuple[int, dict[str, object], dict[str, str]]:
        n = len(request.items)
        detail = [{"type": "too_long", "loc": ["body", "rows", n - 1, "features"], "msg": "3 values, expected 2"}]
        return 422, {"detail": detail, "accepted": n - 1, "accepted_ids": []}, {}

    stub.rule = refuse_last
    with Client(stub.url, flush_on_exit=False) as client:
        _log(client, 40)
        assert client.flush(30)
        stats = client.stats
    assert len(stub.received) == 1 and stats.retries == 0
    assert stats.sent_rows == 39 and stats.rejected_rows == 1 and stats.failures == {"rows refused for m": 1}


def test_an_unknown_model_is_refused_for_good_and_said_once(
    stub: IngestStub, caplog: pytest.LogCaptureFixture
) -> None:
    stub.rule = lambda request: (404, {"detail": "model 'nope' is not registered"}, {})
    caplog.set_level(logging.WARNING, logger="driftwatch.client")
    with Client(stub.url, batch_rows=10, flush_on_exit=False) as client:
        _log(client, 35, model="nope")
        assert client.flush(30)
        stats = client.stats
    assert len(stub.received) == 4 and stats.rejected_rows == 35 and stats.retries == 0
    said = [r.getMessage() for r in caplog.records if "unknown model nope" in r.getMessage()]
    assert len(said) == 1 and "driftwatch register" in said[0]


def test_a_body_too_large_is_split(stub: IngestStub) -> None:
    stub.rule = lambda request: (413, {"detail": "too large"}, {}) if len(request.items) > 60 else None
    with Client(stub.url, flush_on_exit=False) as client:
        ids = _log(client, 400)
        assert client.flush(30)
    assert stub.accepted_ids() == ids  # halves in order: 400 -> 200 -> 100 -> 50
    assert {len(r.items) for r in stub.received if r.status == 202} == {50}


def test_blocks_join_into_batches_per_model_in_order(stub: IngestStub) -> None:
    with Client(stub.url, batch_rows=100, linger_s=0.5, flush_on_exit=False) as client:
        first = [i for _ in range(9) for i in _log(client, 30)]
        other = _log(client, 5, model="other")
        assert client.flush(30)
    by_path: dict[str, list[str]] = {}
    for r in stub.received:
        assert len(r.items) <= 100
        by_path.setdefault(r.path, []).extend(str(item["id"]) for item in r.items)
    assert by_path == {"/models/m/predictions": first, "/models/other/predictions": other}
    assert len(stub.received) <= 5  # 275 rows joined into batches of up to 100, not 10 requests


def test_feedback_and_the_api_key(stub: IngestStub) -> None:
    with Client(stub.url, api_key="s3cret", flush_on_exit=False) as client:
        ids = _log(client, 3)
        assert client.feedback("m", ids, [1, 0, 1]) == 3
        assert client.flush(30)
    paths = [r.path for r in stub.received]
    assert paths == ["/models/m/predictions", "/models/m/feedback"]
    assert all(r.headers["x-api-key"] == "s3cret" for r in stub.received)
    assert [item["label"] for item in stub.received[1].items] == [1, 0, 1]


def test_close_gives_up_at_its_timeout_and_counts_what_was_left(stub: IngestStub) -> None:
    stub.rule = lambda request: (503, {"detail": "redis away"}, {"Retry-After": "1"})
    client = Client(stub.url, backoff_s=0.01, flush_on_exit=False)
    _log(client, 20)
    _wait(lambda: client.stats.retries >= 1)
    start = time.monotonic()
    assert client.close(timeout=0.5) is False
    assert time.monotonic() - start < 5
    stats = client.stats
    assert stats.abandoned_rows == 20 and stats.sent_rows == 0
    _log(client, 5)  # after close: dropped, counted
    assert client.stats.dropped_rows == 5 and client.stats.failures["closed"] == 1


def test_rows_logged_before_exit_are_sent_at_exit(stub: IngestStub) -> None:
    child = f"""
import numpy as np
from driftwatch import Client
client = Client({stub.url!r}, linger_s=5.0)  # would wait 5 s for a fuller batch; exit flushes at once
print(",".join(client.log("m", np.zeros((7, 2)), [0] * 7)))
"""
    out = subprocess.run([sys.executable, "-c", child], capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert out.returncode == 0, out.stderr[-2000:]
    assert stub.accepted_ids() == out.stdout.strip().split(",")


def test_a_forked_child_sends_its_own_rows(stub: IngestStub) -> None:
    """A pre-forking server (gunicorn --preload) makes the client before forking its workers."""
    child = f"""
import os
import numpy as np
from driftwatch import Client
client = Client({stub.url!r})
client.log("m", np.zeros((2, 2)), [0, 0])
pid = os.fork()
if pid == 0:
    client.log("child", np.zeros((3, 2)), [1, 1, 1])
    client.close()
    os._exit(0)
assert os.waitpid(pid, 0)[1] == 0
client.close()
"""
    out = subprocess.run([sys.executable, "-c", child], capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert out.returncode == 0, out.stderr[-2000:]
    counts: dict[str, int] = {}
    for r in stub.received:
        counts[r.path] = counts.get(r.path, 0) + len(r.items)
    assert counts == {"/models/m/predictions": 2, "/models/child/predictions": 3}


def test_blocks_that_would_change_in_a_join_are_sent_apart(stub: IngestStub) -> None:
    """Rows of another width, or labels of another JSON type, are never concatenated."""
    with Client(stub.url, linger_s=0.5, flush_on_exit=False) as client:
        client.log("m", np.zeros((2, 3)), np.array([1, 0]))
        client.log("m", np.zeros((2, 4)), np.array([1, 0]))  # a wrong width: the server says so
        client.log("m", np.zeros((2, 3)), np.array(["yes", "no"]))
        client.log("m", np.zeros((2, 3)), np.array([True, False]))
        assert client.flush(30)
        assert client.stats.sent_rows == 8
    sent = [([len(item["features"]) for item in r.items], [item["prediction"] for item in r.items])  # type: ignore[arg-type]
            for r in stub.received]
    assert sent == [([3, 3], [1, 0]), ([4, 4], [1, 0]), ([3, 3], ["yes", "no"]), ([3, 3], [True, False])]
