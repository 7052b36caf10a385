"""2,000 concurrent reads on each endpoint of both services, as real processes.

Before: 200 concurrent ``GET /performance`` gave 58 500s (redis-py's pool
failed at once when its connections were busy) and 1,000 concurrent
``/readyz`` said ``redis: false`` with Redis fine. Now a read waits for a
pooled connection; one that cannot get one in time is a 503 with
``Retry-After``, never a 500.

The client is raw asyncio sockets (one connection per request, as 2,000
separate clients would): httpx would spend more CPU than the servers.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from urllib.parse import urlsplit

import pytest

from shared.api_auth import API_KEY_HEADER
from tests.e2e.conftest import KeyedServices

pytestmark = pytest.mark.e2e

CONCURRENCY = 2_000


async def _get(url: str, path: str, key: str) -> tuple[int, bool]:
    """(status, whether a Retry-After header came with it); status 0 when the connection failed."""
    parts = urlsplit(url)
    try:
        reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
    except OSError:
        return 0, False
    try:
        request = f"GET {path} HTTP/1.1\r\nHost: {parts.netloc}\r\n{API_KEY_HEADER}: {key}\r\nConnection: close\r\n\r\n"
        writer.write(request.encode())
        head = await reader.readuntil(b"\r\n\r\n")
        await reader.read()
        return int(head.split(b" ", 2)[1]), b"\r\nretry-after:" in head.lower()
    except (OSError, asyncio.IncompleteReadError):
        return 0, False
    finally:
        writer.close()


async def _burst(url: str, path: str, key: str) -> Counter[str]:
    results = await asyncio.gather(*(_get(url, path, key) for _ in range(CONCURRENCY)))
    outcome: Counter[str] = Counter()
    for status, retry_after in results:
        outcome[f"{status}{'+retry-after' if status == 503 and retry_after else ''}"] += 1
    return outcome


def _load(url: str, paths: list[str], key: str) -> dict[str, Counter[str]]:
    async def run() -> dict[str, Counter[str]]:
        return {path: await _burst(url, path, key) for path in paths}

    outcomes = asyncio.run(run())
    print({path: dict(outcome) for path, outcome in outcomes.items()})  # the figures, with -s
    return outcomes


def _never_a_server_error(outcomes: dict[str, Counter[str]]) -> None:
    for path, outcome in outcomes.items():
        assert sum(outcome.values()) == CONCURRENCY
        refused = {status: n for status, n in outcome.items() if status not in ("200", "503+retry-after")}
        assert refused == {}, f"{path}: {dict(outcome)}"


def test_monitor_reads_under_2000_concurrent_requests(keyed_services: KeyedServices) -> None:
    outcomes = _load(keyed_services.monitor_url, ["/performance", "/drift", "/alerts"], keyed_services.key)
    _never_a_server_error(outcomes)


def test_model_service_reads_under_2000_concurrent_requests(keyed_services: KeyedServices) -> None:
    outcomes = _load(keyed_services.model_url, ["/readyz", "/model"], keyed_services.key)
    _never_a_server_error(outcomes)
    # Readiness under load tells the truth: Redis is fine, so every probe says so.
    assert outcomes["/readyz"] == Counter({"200": CONCURRENCY})
