"""``driftwatch up``: the compose stack as local processes.

Each service is the same command a container runs (``driftwatch serve``,
``driftwatch monitor``), so what works here works in compose. Stop order on
Ctrl-C matters: the model service first (it flushes its queued events), then
the monitor, then the private redis-server.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from rich.console import Console

from driftwatch.local_processes import LocalRedisServer, wait_for_http

VAR_DIR = Path("var")


class LocalStack:
    def __init__(
        self,
        model_dir: Path,
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
        self._children: list[tuple[str, subprocess.Popen[bytes]]] = []

    def _spawn(self, name: str, args: list[str], env: dict[str, str]) -> None:
        process = subprocess.Popen([sys.executable, "-m", "driftwatch.cli", *args], env=env)
        self._children.append((name, process))

    def _wait_live(self, url: str) -> None:
        wait_for_http(f"{url}/livez", processes=[process for _, process in self._children])

    def start(self) -> None:
        if self.redis_url is None:
            data_dir = VAR_DIR / "redis"
            data_dir.mkdir(parents=True, exist_ok=True)
            self._redis = LocalRedisServer(data_dir=data_dir.resolve(), appendonly=True)
            self._redis.start()
            self.redis_url = self._redis.url
            self.console.print(f"redis-server     {self.redis_url} (data in {data_dir})")
        env = {**os.environ, "REDIS_URL": self.redis_url}
        if self.window_size is not None:
            env["DRIFTWATCH_WINDOW_SIZE"] = str(self.window_size)
        self._spawn("monitor", ["monitor", "--port", str(self.monitor_port)], env)
        self._spawn("model service", ["serve", "--model-dir", str(self.model_dir), "--port", str(self.model_port)], env)
        self._wait_live(f"http://127.0.0.1:{self.monitor_port}")
        self._wait_live(f"http://127.0.0.1:{self.model_port}")
        self.console.print(f"model service    http://127.0.0.1:{self.model_port}  (docs: /docs)")
        self.console.print(f"monitor          http://127.0.0.1:{self.monitor_port}  (docs: /docs)")

    def stop(self) -> None:
        for name, process in reversed(self._children):  # model service first
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    self.console.print(f"{name} did not stop in 20 s: killing it")
                    process.kill()
                    process.wait()
        self._children.clear()
        if self._redis is not None:
            self._redis.stop()
            self._redis = None

    def run_until_interrupted(self) -> None:
        signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt))
        try:
            self.start()
            self.console.print("Stack is up. Ctrl-C stops it.")
            while all(p.poll() is None for _, p in self._children):
                time.sleep(0.5)
            self.console.print("[red]a service exited; stopping the stack[/]")
        except KeyboardInterrupt:
            self.console.print("stopping...")
        finally:
            self.stop()
