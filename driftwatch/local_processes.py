"""Local processes: a private ``redis-server`` on a free port, and waiting for a service to answer.

Used by ``driftwatch up`` (its own redis-server when ``REDIS_URL`` is unset),
by the benchmarks and by the test suite, which must never assume the standard
port is free (or even that it is ours).
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterable
from pathlib import Path
from types import TracebackType

import httpx


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def port_in_use(host: str, port: int) -> bool:
    """Whether something already listens on ``host:port``.

    A bind with ``SO_REUSEADDR``, as uvicorn's own: a port that only has
    connections closing (TIME_WAIT, right after a stop) is free, a listener is not.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return True
    return False


class LocalRedisServer:
    """A ``redis-server`` child process that can be stopped and restarted on the same port.

    Restarting keeps the port (so clients reconnect to the same URL) and, with
    ``appendonly=True``, the data: fault tests rely on both.
    """

    def __init__(
        self,
        port: int | None = None,
        data_dir: Path | None = None,
        *,
        appendonly: bool = False,
        executable: str | None = None,
    ) -> None:
        found = executable or shutil.which("redis-server")
        if found is None:
            raise RuntimeError("redis-server not found on PATH; install it (apt-get install redis-server)")
        self.executable = found
        self.port = port or free_port()
        self._own_dir = data_dir is None
        self.data_dir = data_dir or Path(tempfile.mkdtemp(prefix="driftwatch-redis-"))
        self.appendonly = appendonly
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    @property
    def pid(self) -> int | None:
        """The redis-server's process id while it runs (a fault test may SIGSTOP it)."""
        process = self._process
        return process.pid if process is not None and process.poll() is None else None

    def start(self, timeout_s: float = 10.0) -> None:
        args = [
            self.executable,
            "--port", str(self.port),
            "--bind", "127.0.0.1",
            "--dir", str(self.data_dir),
            "--save", "",
            "--appendonly", "yes" if self.appendonly else "no",
            "--appendfsync", "always",
            "--protected-mode", "yes",
            "--loglevel", "warning",
        ]  # fmt: skip
        # Its own session: a terminal's Ctrl-C reaches whoever started it, which stops it when
        # nothing writes to it any more (``driftwatch up``: last).
        self._process = subprocess.Popen(
            args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True
        )
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                err = self._process.stderr.read().decode() if self._process.stderr else ""
                raise RuntimeError(f"redis-server exited at start: {err.strip()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2) as sock:
                    sock.sendall(b"PING\r\n")
                    if sock.recv(16).startswith(b"+PONG"):
                        return
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"redis-server did not answer on port {self.port}")

    def stop(self) -> None:
        if self._process is None:
            return
        if self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        if self._process.stderr:
            self._process.stderr.close()
        self._process = None

    def close(self) -> None:
        self.stop()
        if self._own_dir:
            shutil.rmtree(self.data_dir, ignore_errors=True)

    def __enter__(self) -> LocalRedisServer:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def wait_for_http(
    url: str,
    timeout_s: float = 60.0,
    processes: Iterable[subprocess.Popen[bytes]] = (),
    interval_s: float = 0.2,
) -> None:
    """Wait until ``url`` answers 200; fail early if one of ``processes`` exits.

    Raises ``RuntimeError`` naming the cause (a process's exit code, or the timeout).
    """
    watched = list(processes)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        for process in watched:
            if process.poll() is not None:
                raise RuntimeError(f"{process.args!r} exited with code {process.returncode} before {url} answered")
        try:
            if httpx.get(url, timeout=1.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(interval_s)
    raise RuntimeError(f"{url} did not answer 200 within {timeout_s:.0f}s")
