"""Waiting for a condition in async tests: poll it, never sleep a fixed time to synchronise."""

from __future__ import annotations

import asyncio
from collections.abc import Callable


async def until(check: Callable[[], object], timeout_s: float = 30.0, what: str = "condition") -> None:
    """Return once ``check()`` is truthy; fail the test after ``timeout_s``."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not check():
        assert asyncio.get_running_loop().time() < deadline, f"{what} not met within {timeout_s} s"
        await asyncio.sleep(0.05)
