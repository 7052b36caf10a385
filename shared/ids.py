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

import numpy as np
import numpy.typing as npt

_STAMP_HEX = 12
_RANDOM_HEX = 20
ID_LENGTH = _STAMP_HEX + _RANDOM_HEX
ID_BYTES = ID_LENGTH // 2
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


_HEX_VALUE = np.full(256, -1, dtype=np.int64)
_HEX_VALUE[np.frombuffer(b"0123456789abcdef", dtype=np.uint8)] = np.arange(16)
_STAMP_WEIGHTS = 16 ** np.arange(_STAMP_HEX - 1, -1, -1, dtype=np.int64)


def prediction_times_ms(prediction_ids: list[str]) -> npt.NDArray[np.int64]:
    """The timestamps embedded in many ids at once (vectorised: no per-id Python).

    >>> prediction_times_ms(new_prediction_ids(2, now_ms=1_700_000_000_123)).tolist()
    [1700000000123, 1700000000123]
    """
    raw = np.frombuffer("".join(prediction_ids).encode("ascii"), dtype=np.uint8)
    if raw.size != ID_LENGTH * len(prediction_ids):
        raise ValueError(f"prediction ids must be {ID_LENGTH} characters")
    digits = _HEX_VALUE[raw.reshape(len(prediction_ids), ID_LENGTH)[:, :_STAMP_HEX]]
    if (digits < 0).any():
        raise ValueError("prediction ids must be lowercase hex")
    return digits @ _STAMP_WEIGHTS


def prediction_id_bytes(prediction_ids: list[str]) -> npt.NDArray[np.uint8]:
    """Many ids as rows of their 16 bytes (vectorised): 6 of millisecond stamp, 10 random.

    >>> prediction_id_bytes(["0000000000ff" + "00" * 9 + "0a"])[0].tolist()
    [0, 0, 0, 0, 0, 255, 0, 0, 0, 0, 0, 0, 0, 0, 0, 10]
    """
    text = "".join(prediction_ids)
    if len(text) != ID_LENGTH * len(prediction_ids):
        raise ValueError(f"prediction ids must be {ID_LENGTH} characters")
    try:
        raw = bytes.fromhex(text)
    except ValueError:
        raise ValueError("prediction ids must be lowercase hex") from None
    return np.frombuffer(raw, dtype=np.uint8).reshape(len(prediction_ids), ID_BYTES)
