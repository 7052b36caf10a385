"""Is it up? The checks the services, the local stack and the tests all make."""

from __future__ import annotations

import asyncio
import subprocess
import time
from collections.abc import Iterable

import httpx
import redis.asyncio as aioredis
from redis.exceptions import RedisError


async def redis_answers(client: aioredis.Redis, timeout_s: float = 0.5) -> bool:
    """PING within ``timeout_s``; any failure is "no", never an exception (readiness probes)."""
    try:
        return bool(await asyncio.wait_for(client.ping(), timeout_s))
    except (TimeoutError, OSError, RedisError):
        return False


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
