"""Prediction ids: time-ordered, unique, and carrying their own timestamp.

An id is 32 hex digits: 12 for the milliseconds since the epoch (as in UUIDv7)
and 20 random. Because the prediction time can be read back from the id, the
monitor files join state by time bucket without a lookup, and late feedback
finds its prediction's bucket from the id alone.
"""

from __future__ import annotations

import os
import re
import time

_STAMP_HEX = 12
_RANDOM_HEX = 20
ID_LENGTH = _STAMP_HEX + _RANDOM_HEX
_ID_PATTERN = re.compile(rf"^[0-9a-f]{{{ID_LENGTH}}}$")


def new_prediction_ids(count: int, now_ms: int | None = None) -> list[str]:
    """Return ``count`` fresh ids sharing one timestamp (one request, one instant)."""
    stamp = f"{(now_ms if now_ms is not None else time.time_ns() // 1_000_000):0{_STAMP_HEX}x}"
    noise = os.urandom(_RANDOM_HEX // 2 * count).hex()
    return [stamp + noise[i * _RANDOM_HEX : (i + 1) * _RANDOM_HEX] for i in range(count)]


def is_prediction_id(value: str) -> bool:
    return bool(_ID_PATTERN.match(value))


def prediction_time_ms(prediction_id: str) -> int:
    """The millisecond timestamp embedded in a prediction id."""
    return int(prediction_id[:12], 16)
