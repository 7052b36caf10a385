"""``driftwatch up``: the compose stack as local processes, each one supervised.

``driftwatch up --ingest-only`` runs the same stack with a model service that
serves no model (no TensorFlow, no training): it only logs the events of
registered models (``POST /models/{name}/predictions``), for teams that
bring their own model and the Python client. Its monitor has no default model
(``DRIFTWATCH_NO_DEFAULT_MODEL``, unless ``DRIFTWATCH_MODEL_NAME`` names one): it
watches the registered models alone, rather than a ``digits-mlp`` nobody logs.

Each service is the same command a container runs (``driftwatch serve``,
``driftwatch monitor``), so what works here works in compose. Like compose's
``restart: unless-stopped``, a child that exits on its own (a crash, an OOM
kill, a SIGKILL) is logged with its exit code and started again after a
backoff that doubles up to 30 s and resets once it has stayed up for a
minute; the other children keep running, so serving never stops because the
monitor died, nor the other way round. A child that fails at start-up
(uvicorn's exit code 3: a missing model directory, a name+version Redis holds
as another model) is not restarted: the cause needs a person, and restarting
would only repeat the same error every 30 s. Its log says why. Stop order on Ctrl-C or SIGTERM
matters: the model service first (it flushes its queued events), then the
monitor, then the private redis-server.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from rich.console import Console

from driftwatch.local_processes import LocalRedisServer, port_in_use, wait_for_http
from shared.model_metadata import ModelMetadata

VAR_DIR = Path("var")
BACKOFF_INITIAL_S = 0.5
BACKOFF_MAX_S = 30.0
STABLE_AFTER_S = 60.0
POLL_S = 0.2
# uvicorn's exit code when the application's start-up (its lifespan) raised.
STARTUP_FAILURE = 3


class PortTaken(RuntimeError):
    """A port the stack would listen on is in use: nothing was started."""


@dataclass
class Child:
    """One supervised service: how to start it, and its restart bookkeeping."""

    name: str
    args: list[str]
    env: dict[str, str]
    process: subprocess.Popen[bytes] | None = None
    started_at: float = 0.0
    restarts: int = 0
    backoff_s: float = BACKOFF_INITIAL_S
    restart_at: float | None = None  # set while it waits out its backoff
    exit_codes: list[int] = field(default_factory=list)
    given_up: bool = False  # failed at start-up: left stopped

    def spawn(self) -> None:
        # Its own session, as Redis's: a terminal's Ctrl-C (SIGINT to the foreground group) reaches
        # ``up`` alone, which stops the children one by one, model service first, Redis last. A
        # service that got the terminal's SIGINT and then ``up``'s SIGTERM logged a traceback.
        self.process = subprocess.Popen(
            [sys.executable, "-m", "driftwatch.cli", *self.args], env=self.env, start_new_session=True
        )
        self.started_at = time.monotonic()
        self.restart_at = None


class LocalStack:
    def __init__(
        self,
        model_dir: Path | None,
        model_port: int,
        monitor_port: int,
        redis_url: str | None,
        window_size: int | None,
        console: Console,
    ) -> None:
        self.model_dir = model_dir
        self.model_port = model_port
        self.monitor_port = monitor_port
        self.redis_url = redis_url
        self.window_size = window_size
        self.console = console
        self._redis: LocalRedisServer | None = None
        self._children: list[Child] = []

    def _spawn(self, name: str, args: list[str], env: dict[str, str]) -> Child:
        child = Child(name, args, env)
        child.spawn()
        self._children.append(child)
        return child

    def _wait_live(self, child: Child, port: int) -> None:
        """Wait until ``child`` answers on ``port``, or exits.

        A child that exits here is left to the supervision loop, as one that dies later
        is: restarted after its backoff, or (a start-up failure) left stopped with the
        reason. Before, ``up`` itself died with a traceback when a child was killed
        while it still waited, and took the other services down with it.
        """
        assert child.process is not None
        try:
            wait_for_http(f"http://127.0.0.1:{port}/livez", processes=[child.process])
        except RuntimeError:
            if child.process.poll() is None:
                raise  # running but not answering within the timeout: a fault to report

    def check_ports(self) -> None:
        """Refuse to start on a port something already listens on.

        Before, the children failed to bind while ``up`` waited for ``/livez`` and got
        the other process's answer: it said "Stack is up" with the other stack's URLs,
        then that its model service "failed at start-up" and left its monitor shutting down.
        """
        host = os.environ.get("DRIFTWATCH_HOST", "127.0.0.1")
        for name, port, option in (
            ("model service", self.model_port, "--model-port"),
            ("monitor", self.monitor_port, "--monitor-port"),
        ):
            if port and port_in_use(host, port):
                raise PortTaken(
                    f"port {port} on {host} is already in use (another `driftwatch up`?), so the {name} "
                    f"cannot listen there: stop what listens on it, or pick a free port with {option}"
                )

    def start(self) -> None:
        self.check_ports()
        if self.redis_url is None:
            data_dir = VAR_DIR / "redis"
            data_dir.mkdir(parents=True, exist_ok=True)
            self._redis = LocalRedisServer(data_dir=data_dir.resolve(), appendonly=True)
            self._redis.start()
            self.redis_url = self._redis.url
            self.console.print(f"redis-server     {self.redis_url} (data in {data_dir})")
        env = {**os.environ, "REDIS_URL": self.redis_url}
        if self.model_dir is not None:
            # The default model of the monitor's unprefixed reads is the one this stack serves (a CSV
            # model is not digits-mlp); every registered model is watched either way.
            env["DRIFTWATCH_MODEL_NAME"] = ModelMetadata.load(self.model_dir).name
        elif not env.get("DRIFTWATCH_MODEL_NAME"):
            # Nothing is served, so no model is the default: the monitor watches registered models only.
            env.setdefault("DRIFTWATCH_NO_DEFAULT_MODEL", "true")
        if self.window_size is not None:
            env["DRIFTWATCH_WINDOW_SIZE"] = str(self.window_size)
        monitor = self._spawn("monitor", ["monitor", "--port", str(self.monitor_port)], env)
        serve = ["--ingest-only"] if self.model_dir is None else ["--model-dir", str(self.model_dir)]
        model_service = self._spawn("model service", ["serve", *serve, "--port", str(self.model_port)], env)
        self._wait_live(monitor, self.monitor_port)
        self._wait_live(model_service, self.model_port)
        logging_only = "  logging only: POST /models/{name}/predictions" if self.model_dir is None else ""
        for child, line in (
            (model_service, f"model service    http://127.0.0.1:{self.model_port}  (docs: /docs){logging_only}"),
            (monitor, f"monitor          http://127.0.0.1:{self.monitor_port}  (docs: /docs)"),
        ):
            # A child whose start-up was refused while up waited (its log says why) gets no URL:
            # "Stack is up" with the URL of a service that is not there read as success. One that
            # exited otherwise (killed) is restarted by the supervision loop, URL and all.
            refused = child in self.refused_at_start
            self.console.print(f"[red]{child.name} exited at start-up[/]" if refused else line)

    @property
    def refused_at_start(self) -> list[Child]:
        """The services that exited with uvicorn's start-up failure code (not restarted)."""
        return [c for c in self._children if c.process is not None and c.process.poll() == STARTUP_FAILURE]

    def supervise_once(self) -> None:
        """One round of supervision: note the children that exited, restart those whose backoff is over."""
        now = time.monotonic()
        if self._redis is not None and not self._redis.running:
            self.console.print("[red]redis-server exited; restarting it (same port, same data)[/]")
            self._redis.start()
        for child in self._children:
            assert child.process is not None
            code = child.process.poll()
            if code is None:
                if now - child.started_at >= STABLE_AFTER_S:
                    child.backoff_s = BACKOFF_INITIAL_S
                continue
            if child.given_up:
                continue
            if code == STARTUP_FAILURE:
                child.exit_codes.append(code)
                child.given_up = True
                self.console.print(
                    f"[red]{child.name} failed at start-up (exit code {code}); not restarting it: its log above "
                    "says why. Fix that and run `driftwatch up` again.[/] (the other services keep running)"
                )
                continue
            if child.restart_at is None:
                child.exit_codes.append(code)
                child.restart_at = now + child.backoff_s
                self.console.print(
                    f"[red]{child.name} exited with code {code} after {now - child.started_at:.1f} s; "
                    f"restarting it in {child.backoff_s:.1f} s[/] (the other services keep running)"
                )
                child.backoff_s = min(child.backoff_s * 2, BACKOFF_MAX_S)
            elif now >= child.restart_at:
                child.restarts += 1
                child.spawn()
                self.console.print(f"{child.name} restarted (restart {child.restarts})")

    def stop(self) -> None:
        for child in reversed(self._children):  # model service first
            process = child.process
            if process is not None and process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    self.console.print(f"{child.name} did not stop in 20 s: killing it")
                    process.kill()
                    process.wait()
        self._children.clear()
        if self._redis is not None:
            self._redis.stop()
            self._redis = None

    def run_until_interrupted(self) -> int:
        """Run until Ctrl-C, SIGTERM or SIGHUP; 0, or 1 when a port is taken (nothing started)."""
        # SIGTERM, and SIGHUP (the terminal closed: the children, in their own sessions, get none),
        # stop the stack as Ctrl-C does. SIGINT too: a shell starts `driftwatch up &` with SIGINT
        # ignored, and Python leaves it so, which made `kill -INT` do nothing.
        for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(signum, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt))
        try:
            self.start()
            if not self.refused_at_start:
                self.console.print("Stack is up. Ctrl-C stops it.")
            else:
                self.console.print(
                    "[red]Stack is partly up[/]: a service exited at start-up (its log above says "
                    "why). Ctrl-C stops the rest."
                )
            while True:
                self.supervise_once()
                time.sleep(POLL_S)  # the supervisor's own polling interval
        except PortTaken as exc:
            self.console.print(f"[red]{exc}[/]")
            return 1
        except KeyboardInterrupt:
            self.console.print("stopping...")
        finally:
            self.stop()
        return 0
