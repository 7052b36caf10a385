"""Real service processes for the fault tests: start, wait, signal, and a steady /predict load."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import numpy as np
import redis

from driftwatch.local_processes import free_port, wait_for_http


@dataclass
class Service:
    process: subprocess.Popen[bytes]
    url: str
    log: Path

    def signal(self, sig: int) -> None:
        self.process.send_signal(sig)

    def wait(self, timeout_s: float) -> int:
        return self.process.wait(timeout=timeout_s)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=10)

    def tail(self, n: int = 40) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""


def start(command: str, env: dict[str, str], log_dir: Path, name: str, *args: str) -> Service:
    port = free_port()
    log = log_dir / f"{name}.log"
    full_env = {**os.environ, "OTEL_SDK_DISABLED": "true", **env}
    with log.open("ab") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "driftwatch.cli", command, "--port", str(port), "--log-level", "warning", *args],
            env=full_env, stdout=out, stderr=subprocess.STDOUT,
        )
    return Service(process, f"http://127.0.0.1:{port}", log)


def wait_live(service: Service, timeout_s: float = 60.0) -> None:
    try:
        wait_for_http(f"{service.url}/livez", timeout_s, processes=[service.process], interval_s=0.1)
    except RuntimeError as exc:
        raise AssertionError(f"{exc}:\n{service.tail()}") from None


@dataclass
class Load:
    """Threads posting single-sample /predict requests until stopped."""

    url: str
    rows: np.ndarray
    threads: int = 2
    answered: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)  # while the server was meant to be up
    latencies: list[float] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _tolerate: threading.Event = field(default_factory=threading.Event)
    _workers: list[threading.Thread] = field(default_factory=list)

    def start(self) -> None:
        for i in range(self.threads):
            t = threading.Thread(target=self._loop, args=(i,), daemon=True)
            t.start()
            self._workers.append(t)

    def tolerate_failures(self) -> None:
        """From now on the server is going away: failures are expected, not counted."""
        self._tolerate.set()

    def stop(self) -> None:
        self._stop.set()
        for t in self._workers:
            t.join(timeout=10)

    def _loop(self, seed: int) -> None:
        rng = np.random.default_rng(seed)
        with httpx.Client(timeout=5.0) as client:
            while not self._stop.is_set():
                row = self.rows[rng.integers(0, len(self.rows))].tolist()
                started = time.perf_counter()
                try:
                    r = client.post(f"{self.url}/predict", json={"features": row})
                    ok = r.status_code == 200
                    detail = "" if ok else f"HTTP {r.status_code}"
                except httpx.HTTPError as exc:
                    ok, detail = False, repr(exc)
                elapsed = time.perf_counter() - started
                if ok:  # list.append is atomic: the threads share the lists without a lock
                    self.answered.append(r.json()["prediction_id"])
                    self.latencies.append(elapsed)
                elif not self._tolerate.is_set():
                    self.failed.append(detail)
                if not ok and self._tolerate.is_set():
                    time.sleep(0.05)


def stream_ids(client: redis.Redis, stream: str) -> list[str]:
    ids: list[str] = []
    last = "-"
    while True:
        chunk = client.xrange(stream, min=last, count=5_000)
        if last != "-":
            chunk = chunk[1:]
        if not chunk:
            return ids
        ids += [fields[b"id"].decode() for _, fields in chunk]
        last = chunk[-1][0].decode()


def wait_stream_has(client: redis.Redis, stream: str, ids: list[str], timeout_s: float) -> list[str]:
    """Until every id is on the stream (or the time is up); returns the stream's ids."""
    wanted = set(ids)
    deadline = time.monotonic() + timeout_s
    while True:
        on_stream = stream_ids(client, stream)
        if wanted <= set(on_stream) or time.monotonic() > deadline:
            return on_stream
        time.sleep(0.2)


def loss_and_duplicates(answered: list[str], on_stream: list[str]) -> tuple[int, int]:
    return len(set(answered) - set(on_stream)), len(on_stream) - len(set(on_stream))
