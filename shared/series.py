"""Version ordinals: a small integer per (model, version) window series.

Why: a prediction's join value (monitor/window_state.py) must say which series
it belongs to, because feedback carries no model version, and a small integer
costs a byte or two of join memory where the version string would cost its
length. An ordinal is allocated once, atomically (``series_ordinal.lua``), the
first time anything (the consumer on a version's first event, or the registry)
asks for it; every replica and restart gets the same one. Ordinals start at 1
and are never reused. The hash (``Keys.series``) also lists every version that
has (or had) a series, which the reporter walks.
"""

from __future__ import annotations

import redis.asyncio as aioredis

from shared.keys import SERIES_COUNTER_FIELD, SERIES_ORDINAL_FIELD, SERIES_VERSION_FIELD, Keys
from shared.redis_scripts import register_script


class SeriesOrdinals:
    """Ordinals of one model's versions, cached in process (they never change)."""

    def __init__(self, client: aioredis.Redis, keys: Keys) -> None:
        self.client = client
        self.keys = keys
        self._ordinal: dict[str, int] = {}
        self._version: dict[int, str] = {}
        self._allocate = register_script(client, "shared", "series_ordinal.lua")

    def _remember(self, version: str, ordinal: int) -> None:
        self._ordinal[version] = ordinal
        self._version[ordinal] = version

    async def ordinal(self, version: str) -> int:
        """The version's ordinal, allocated now if it has none."""
        if version not in self._ordinal:
            ordinal = int(await self._allocate(
                keys=[self.keys.series],
                args=[SERIES_VERSION_FIELD + version, SERIES_COUNTER_FIELD, SERIES_ORDINAL_FIELD, version],
            ))
            self._remember(version, ordinal)
        return self._ordinal[version]

    async def version(self, ordinal: int) -> str | None:
        """The version an ordinal was allocated to; None if none was."""
        if ordinal not in self._version:
            raw = await self.client.hget(self.keys.series, f"{SERIES_ORDINAL_FIELD}{ordinal}")
            if raw is None:
                return None
            self._remember(raw.decode(), ordinal)
        return self._version[ordinal]

    async def versions(self) -> dict[str, int]:
        """Every version with a series, and its ordinal (one read)."""
        raw = await self.client.hgetall(self.keys.series)
        found = {
            k.decode()[len(SERIES_VERSION_FIELD):]: int(v)
            for k, v in raw.items() if k.decode().startswith(SERIES_VERSION_FIELD)
        }
        for version, ordinal in found.items():
            self._remember(version, ordinal)
        return found


async def series_ordinal(client: aioredis.Redis, keys: Keys, version: str) -> int:
    """One version's ordinal (allocated if new): what registration may call so a
    registered version has its ordinal before its first event."""
    return await SeriesOrdinals(client, keys).ordinal(version)
