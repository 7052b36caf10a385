"""The events on the Redis streams and their codec.

A prediction entry holds its features and probabilities as raw float32 bytes,
so a batch read from the stream decodes with one ``np.frombuffer`` per column
instead of per-row parsing. Field names are short because they are repeated in
every stream entry.

Schema version 1, prediction entry fields::

    v   schema version ("1")
    id  prediction id (shared.ids)
    ts  prediction time, ms since the epoch
    m   model name          mv  model version
    x   features, float32 little-endian bytes, length F; a missing value is NaN.
        A regressor's entries hold F + 1 values: the last is its numeric prediction.
    y   predicted class index (0 for a regressor)
    p   class probabilities, float32 little-endian bytes, length K; empty (zero
        bytes) for a model that gives no probabilities

Feedback entry fields: ``v``, ``id`` (the prediction id), ``label`` (class
index), ``ts`` (feedback time, ms); a label that carries its prediction also
has ``py`` (the predicted class index) and ``pts`` (the prediction's time, ms),
both or neither, and optionally ``mv`` (the model version; default: the
current one). The monitor counts such a label without any join state.
"""

from __future__ import annotations

import operator
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

SCHEMA_VERSION = b"1"
FLOAT = np.dtype("<f4")

Fields = Mapping[bytes, bytes]


class EventDecodeError(ValueError):
    """A stream entry that cannot be decoded; the monitor dead-letters it."""


@dataclass(frozen=True, slots=True)
class PredictionBatch:
    """Decoded prediction entries, one row each."""

    ids: list[str]
    timestamps_ms: npt.NDArray[np.int64]
    model_versions: list[str]
    features: npt.NDArray[np.float32]  # (n, F)
    classes: npt.NDArray[np.int64]  # (n,)
    probabilities: npt.NDArray[np.float32]  # (n, K); (n, 0) when the model gives none

    def __len__(self) -> int:
        return len(self.ids)


NOT_CARRIED = -1
"""``FeedbackBatch.predicted`` of a label that names only its prediction's id (joined by id)."""


@dataclass(frozen=True, slots=True)
class FeedbackBatch:
    """Decoded feedback entries. ``predicted`` is None when no label of the batch carries its
    prediction; else per row the predicted class (``NOT_CARRIED``: joined by id), with the
    prediction's time in ``predicted_ms`` and its version in ``versions`` ("": the current one)."""

    ids: list[str]
    labels: npt.NDArray[np.int64]
    timestamps_ms: npt.NDArray[np.int64]
    predicted: npt.NDArray[np.int64] | None = None
    predicted_ms: npt.NDArray[np.int64] | None = None
    versions: list[str] | None = None

    def __len__(self) -> int:
        return len(self.ids)

    def rows(self, mask: npt.NDArray[np.bool_]) -> FeedbackBatch:
        """The rows where ``mask`` holds (the whole batch when it holds everywhere)."""
        if mask.all():
            return self
        picked = np.flatnonzero(mask).tolist()
        return FeedbackBatch(
            [self.ids[i] for i in picked], self.labels[mask], self.timestamps_ms[mask],
            None if self.predicted is None else self.predicted[mask],
            None if self.predicted_ms is None else self.predicted_ms[mask],
            None if self.versions is None else [self.versions[i] for i in picked],
        )


# The fields of a prediction entry, in the order the model service's Lua writes
# them (it receives these names as arguments; a test checks they match encode_predictions).
PREDICTION_FIELDS = (b"v", b"id", b"ts", b"m", b"mv", b"x", b"y", b"p")


def encode_predictions(
    ids: Sequence[str],
    timestamp_ms: int | npt.NDArray[np.int64],
    model: str,
    version: str,
    features: npt.NDArray[np.float32],
    classes: npt.NDArray[np.integer],
    probabilities: npt.NDArray[np.float32],
) -> list[dict[bytes, bytes]]:
    """Stream fields for a batch of predictions: made at one instant (``timestamp_ms`` an
    int), or each at its own (an array, one per row: events logged from elsewhere)."""
    x = np.ascontiguousarray(features, dtype=FLOAT)
    p = np.ascontiguousarray(probabilities, dtype=FLOAT)
    ts = timestamp_texts(timestamp_ms, len(ids))
    m, mv = model.encode(), version.encode()
    return [
        {
            b"v": SCHEMA_VERSION,
            b"id": pid.encode(),
            b"ts": ts[i],
            b"m": m,
            b"mv": mv,
            b"x": x[i].tobytes(),
            b"y": str(int(classes[i])).encode(),
            b"p": p[i].tobytes(),
        }
        for i, pid in enumerate(ids)
    ]


def timestamp_texts(timestamp_ms: int | npt.NDArray[np.int64], n: int) -> list[bytes]:
    """The ``ts`` field of ``n`` entries: one instant for all, or one per row.

    >>> timestamp_texts(5, 2), timestamp_texts(np.array([7, 8]), 2)
    ([b'5', b'5'], [b'7', b'8'])
    """
    if isinstance(timestamp_ms, np.ndarray):
        if timestamp_ms.shape != (n,):
            raise ValueError(f"expected {n} timestamps, got shape {timestamp_ms.shape}")
        return [str(t).encode() for t in timestamp_ms.tolist()]
    return [str(int(timestamp_ms)).encode()] * n


def encode_feedback(
    prediction_id: str, label: int, timestamp_ms: int,
    predicted: int | None = None, predicted_ms: int | None = None, version: str | None = None,
) -> dict[bytes, bytes]:
    """A feedback entry; with ``predicted`` and ``predicted_ms`` (both or neither) one that carries
    its prediction, counted by the monitor without join state (``version``: its model version)."""
    if (predicted is None) != (predicted_ms is None):
        raise ValueError("a label carries its prediction's class and time together, or neither")
    entry = {
        b"v": SCHEMA_VERSION,
        b"id": prediction_id.encode(),
        b"label": str(label).encode(),
        b"ts": str(timestamp_ms).encode(),
    }
    if predicted is not None:
        entry[b"py"] = str(predicted).encode()
        entry[b"pts"] = str(predicted_ms).encode()
        if version:
            entry[b"mv"] = version.encode()
    return entry


_VERSION = operator.itemgetter(b"v")


def _column(entries: Sequence[Fields], name: bytes) -> list[bytes]:
    try:
        return [e[name] for e in entries]
    except KeyError as exc:
        raise EventDecodeError(f"missing field {name.decode()!r}") from exc


def _matrix(blobs: list[bytes], what: str, *, may_be_empty: bool = False) -> npt.NDArray[np.float32]:
    """Rows of float32 bytes as an (n, width) matrix; ``may_be_empty``: every row empty is (n, 0)."""
    width = len(blobs[0])
    if (width == 0 and not may_be_empty) or width % FLOAT.itemsize or set(map(len, blobs)) != {width}:
        raise EventDecodeError(f"field {what!r} has inconsistent or invalid byte lengths")  # map/set: C loops
    if width == 0:
        return np.zeros((len(blobs), 0), dtype=FLOAT)
    return np.frombuffer(b"".join(blobs), dtype=FLOAT).reshape(len(blobs), -1)


def _ints(values: list[bytes], what: str) -> npt.NDArray[np.int64]:
    try:
        return np.array(values, dtype=np.int64)
    except ValueError as exc:
        raise EventDecodeError(f"field {what!r} is not an integer") from exc


def _check_batch(entries: Sequence[Fields]) -> None:
    if not entries:
        raise EventDecodeError("empty batch")
    try:
        versions = set(map(_VERSION, entries))  # C loops: this runs on every batch
    except KeyError:
        raise EventDecodeError("missing field 'v'") from None
    if versions != {SCHEMA_VERSION}:
        raise EventDecodeError("unsupported schema version")


def decode_predictions(entries: Sequence[Fields]) -> PredictionBatch:
    """Decode entries that all share one feature and class count.

    Raises ``EventDecodeError`` if any entry is malformed; callers that must
    isolate a bad entry decode one by one after a batch failure.
    """
    _check_batch(entries)
    return PredictionBatch(
        ids=[i.decode() for i in _column(entries, b"id")],
        timestamps_ms=_ints(_column(entries, b"ts"), "ts"),
        model_versions=[v.decode() for v in _column(entries, b"mv")],
        features=_matrix(_column(entries, b"x"), "x"),
        classes=_ints(_column(entries, b"y"), "y"),
        probabilities=_matrix(_column(entries, b"p"), "p", may_be_empty=True),
    )


_PREDICTED, _PREDICTED_TS, _MODEL_VERSION = (operator.methodcaller("get", f) for f in (b"py", b"pts", b"mv"))
_ABSENT = b"-1"


def decode_feedback(entries: Sequence[Fields]) -> FeedbackBatch:
    """Decode feedback entries; labels that carry their prediction (``py``, ``pts``) beside ones
    that do not. Raises ``EventDecodeError`` for one of the two fields without the other."""
    _check_batch(entries)
    ids = [i.decode() for i in _column(entries, b"id")]
    labels = _ints(_column(entries, b"label"), "label")
    timestamps = _ints(_column(entries, b"ts"), "ts")
    predicted_raw = list(map(_PREDICTED, entries))  # map: C loops, as in _check_batch
    times_raw = list(map(_PREDICTED_TS, entries))
    if predicted_raw.count(None) == len(entries) and times_raw.count(None) == len(entries):
        return FeedbackBatch(ids, labels, timestamps)
    predicted = _ints([_ABSENT if p is None else p for p in predicted_raw], "py")
    times = _ints([_ABSENT if t is None else t for t in times_raw], "pts")
    if ((predicted == NOT_CARRIED) != (times == NOT_CARRIED)).any():
        raise EventDecodeError("fields 'py' and 'pts' come together (a label carries its prediction's class and time)")
    if (predicted < NOT_CARRIED).any() or (times < NOT_CARRIED).any():
        raise EventDecodeError("field 'py' or 'pts' is negative")
    versions = [b"" if v is None else v for v in map(_MODEL_VERSION, entries)]
    return FeedbackBatch(ids, labels, timestamps, predicted, times, [v.decode() for v in versions])
