"""Prediction ids: time-ordered, unique, and carrying their own timestamp.

An id is 32 hex digits: 12 for the milliseconds since the epoch (as in UUIDv7)
and 20 random. Because the prediction time can be read back from the id, the
monitor files join state by time bucket without a lookup, and late feedback
finds its prediction's bucket from the id alone.

Ids from elsewhere (a caller's own request id, a KServe ``ce-id``) are mapped
to this form by :func:`internal_prediction_id`: the prediction's own time as
the stamp, and 20 hex digits of a hash of the foreign id instead of random
ones. The mapping needs no stored state: feedback that carries the foreign id
and its prediction's time maps to the same id.
"""

from __future__ import annotations

import hashlib
import os
import re
import time
from collections.abc import Sequence

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


def prediction_ids_at(stamps_ms: Sequence[int]) -> list[str]:
    """Fresh ids, one per timestamp (rows logged from elsewhere, each made at its own time).

    >>> [prediction_time_ms(i) for i in prediction_ids_at([5, 7])]
    [5, 7]
    """
    noise = os.urandom(_RANDOM_HEX // 2 * len(stamps_ms)).hex()
    return [f"{t:0{_STAMP_HEX}x}{noise[i * _RANDOM_HEX : (i + 1) * _RANDOM_HEX]}" for i, t in enumerate(stamps_ms)]


def is_prediction_id(value: str) -> bool:
    return bool(_ID_PATTERN.match(value))


# A stamp is 12 hex digits: milliseconds below 16**12 (the year 10889).
MAX_STAMP_MS = 16**_STAMP_HEX - 1
# The latest time an event may carry (the year 4821): the monitor files a prediction's time in 14
# decimal digits offset by 10**13 (monitor/window_state.py), so a later one could be accepted by
# the model service and then fail in the monitor on every delivery.
MAX_EVENT_MS = 9 * 10**13 - 1


def internal_prediction_id(external_id: str, prediction_ms: int) -> str:
    """The Driftwatch id of a prediction known elsewhere by ``external_id``, made at ``prediction_ms``.

    The stamp of ``prediction_ms`` and the first 10 bytes of the foreign id's
    BLAKE2b hash: the same pair always gives the same id (so a retried batch
    dedupes, and feedback finds its prediction), and the id still carries its
    time. ``prediction_ms`` must fit the stamp (0 to ``MAX_STAMP_MS``).

    >>> internal_prediction_id("req-42", 1_700_000_000_123)[:12]
    '018bcfe5687b'
    >>> internal_prediction_id("req-42", 1) == internal_prediction_id("req-42", 1)
    True
    """
    if not 0 <= prediction_ms <= MAX_STAMP_MS:
        raise ValueError(f"prediction time {prediction_ms} ms is outside 0..{MAX_STAMP_MS}")
    digest = hashlib.blake2b(external_id.encode("utf-8", "surrogatepass")).digest()[: _RANDOM_HEX // 2]
    return f"{prediction_ms:0{_STAMP_HEX}x}{digest.hex()}"


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
