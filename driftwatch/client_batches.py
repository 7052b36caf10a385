"""What :class:`driftwatch.Client` queues: a caller's arrays checked once, then JSON bodies.

Why two steps: ``Client.log`` runs on the caller's thread and must cost
little, so it only checks and converts what it was given into numpy arrays
(a :class:`Block`, any number of rows) and returns. The sender thread later
cuts blocks into batches and encodes each as the body of
``POST /models/{name}/predictions`` or ``/feedback`` (CONTRACTS.md), with
orjson, which writes numpy rows directly and NaN as ``null`` (a missing
value: never turned into a number). Infinite values are refused here,
since JSON has no infinity and ``null`` would misreport them as missing.
Features and probabilities travel as float32, the precision the stream
keeps them at: the shortest decimal form of a float32 reads back as the
same float32, in ~40% fewer bytes than float64's.

pandas is optional and duck-typed: anything with ``columns`` and
``to_numpy`` is a DataFrame (rows are then sent by feature name, so column
order does not matter), anything else with ``to_numpy`` a Series.
"""

from __future__ import annotations

import datetime as dt
import os
import time
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import orjson

from shared.ids import is_prediction_id, new_prediction_ids

__all__ = ["Block", "encode", "feedback_block", "prediction_block"]

Kind = Literal["predictions", "feedback"]
_OPTIONS = orjson.OPT_SERIALIZE_NUMPY


@dataclass(frozen=True, slots=True)
class Block:
    """Rows of one kind for one model, as arrays (sliced, never copied, when batched)."""

    kind: Kind
    model: str
    ids: list[str]
    timestamps_ms: npt.NDArray[np.int64]
    values: npt.NDArray[Any]  # predictions: the (n, F) features; feedback: the (n,) labels
    predictions: npt.NDArray[Any] | None = None  # feedback: the predicted classes the labels carry, if they do
    probabilities: npt.NDArray[np.float32] | None = None
    prediction_timestamps_ms: npt.NDArray[np.int64] | None = None
    feature_names: tuple[str, ...] | None = None
    version: str | None = None  # feedback carrying its predictions: the model version that made them

    def __len__(self) -> int:
        return len(self.ids)

    def join_key(self) -> tuple[object, ...]:
        """Blocks with equal keys can be sent as one batch: same endpoint, and arrays that
        concatenate without changing a value's JSON type (an int label next to a string one
        would become a string) or a row's width."""
        def shape(a: npt.NDArray[Any] | None) -> object:
            return None if a is None else (a.shape[1:], a.dtype.kind)

        return (self.kind, self.model, self.feature_names, shape(self.values), shape(self.predictions),
                shape(self.probabilities), self.prediction_timestamps_ms is None, self.version)

    def split(self, n: int) -> tuple[Block, Block]:
        """The first ``n`` rows and the rest (views of the same arrays)."""

        def part(a: Any, first: bool) -> Any:
            return None if a is None else (a[:n] if first else a[n:])

        def side(first: bool) -> Block:
            return Block(
                self.kind, self.model, part(self.ids, first), part(self.timestamps_ms, first),
                part(self.values, first), part(self.predictions, first), part(self.probabilities, first),
                part(self.prediction_timestamps_ms, first), self.feature_names, self.version,
            )

        return side(True), side(False)


def _is_frame(x: object) -> bool:
    return hasattr(x, "columns") and hasattr(x, "to_numpy")


def _column(x: object, name: str) -> npt.NDArray[Any]:
    """A 1-D array from a list, numpy array or pandas Series/Index."""
    arr = x.to_numpy() if hasattr(x, "to_numpy") else np.asarray(x)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {arr.shape}")
    return arr


def _features(features: object) -> tuple[npt.NDArray[np.float32], tuple[str, ...] | None]:
    """(n, F) float32 (NaN: missing) and the column names of a DataFrame."""
    names: tuple[str, ...] | None = None
    try:
        if _is_frame(features):
            names = tuple(str(c) for c in features.columns)  # type: ignore[attr-defined]
            arr = np.asarray(features.to_numpy(dtype=np.float64, na_value=np.nan))  # type: ignore[attr-defined]
        else:
            arr = np.asarray(features, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"features must be numbers (NaN or None for a missing value): {exc}") from None
    if arr.ndim == 1:
        arr = arr[None, :]
    if arr.ndim != 2:
        raise ValueError(f"features must be a 2-D array (rows, features), got shape {arr.shape}")
    if np.isinf(arr).any():
        raise ValueError("features contain infinite values (NaN or None is a missing value)")
    # float32, as events carry them: its shortest decimal form round-trips to the same value the
    # stream keeps, in ~40% fewer bytes than float64's. Row-major, since orjson writes only C-contiguous
    # numpy rows (a DataFrame's ``to_numpy()`` is column-major).
    with np.errstate(over="ignore"):
        single = np.ascontiguousarray(arr, dtype=np.float32)
    if np.isinf(single).any():
        raise ValueError("features contain values beyond float32's range (about 3.4e38)")
    return single, names


def _timestamps_ms(timestamps: object, n: int, name: str) -> npt.NDArray[np.int64]:
    """Epoch milliseconds from ints (ms), numpy datetime64, pandas datetimes or aware datetimes."""
    if isinstance(timestamps, (int, float, dt.datetime, np.datetime64)):
        timestamps = [timestamps] * n
    arr = _column(timestamps, name)
    if len(arr) != n:
        raise ValueError(f"{name} has {len(arr)} entries for {n} rows")
    if arr.dtype.kind == "M":
        return arr.astype("datetime64[ms]").astype(np.int64)
    if arr.dtype.kind in "iu":
        return arr.astype(np.int64)
    if arr.dtype.kind == "f":
        if not np.isfinite(arr).all():
            raise ValueError(f"{name} must be finite epoch milliseconds")
        return arr.astype(np.int64)
    out = np.empty(n, dtype=np.int64)
    for i, value in enumerate(arr.tolist()):  # datetime objects: no vectorised form
        if not isinstance(value, dt.datetime) or value.tzinfo is None:
            raise ValueError(f"{name} must be epoch ms, datetime64 or timezone-aware datetimes, got {value!r}")
        out[i] = round(value.timestamp() * 1000)
    return out


def _ids_at(times_ms: npt.NDArray[np.int64]) -> list[str]:
    """Driftwatch ids (12 hex ms stamp + 20 random hex) stamped with each row's time."""
    noise = os.urandom(10 * len(times_ms)).hex()
    return [f"{t:012x}{noise[20 * i : 20 * i + 20]}" for i, t in enumerate(times_ms.tolist())]


def _ids(ids: object, n: int) -> list[str]:
    out = [str(i) for i in _column(ids, "ids").tolist()]
    if len(out) != n:
        raise ValueError(f"ids has {len(out)} entries for {n} rows")
    if any(not i for i in out):
        raise ValueError("ids must not be empty strings")
    return out


def prediction_block(
    model: str,
    features: object,
    predictions: object,
    probabilities: object | None = None,
    ids: object | None = None,
    timestamps: object | None = None,
) -> Block:
    """Check and convert one ``Client.log`` call; ids are made here when not given."""
    x, names = _features(features)
    n = x.shape[0]
    preds = _column(predictions, "predictions")
    if len(preds) != n:
        raise ValueError(f"predictions has {len(preds)} entries for {n} rows of features")
    if preds.dtype.kind == "f" and not np.isfinite(preds).all():
        raise ValueError("predictions must be finite")
    probs: npt.NDArray[np.float32] | None = None
    if probabilities is not None:
        p = probabilities.to_numpy() if hasattr(probabilities, "to_numpy") else probabilities
        probs = np.ascontiguousarray(p, dtype=np.float32)  # row-major: orjson writes only those
        if probs.ndim == 1 and n == 1:
            probs = probs[None, :]
        if probs.ndim != 2 or probs.shape[0] != n:
            raise ValueError(f"probabilities must have shape ({n}, K), got {probs.shape}")
        if not np.isfinite(probs).all():
            raise ValueError("probabilities must be finite")
    now = time.time_ns() // 1_000_000
    times = np.full(n, now, dtype=np.int64) if timestamps is None else _timestamps_ms(timestamps, n, "timestamps")
    if ids is not None:
        id_list = _ids(ids, n)
    elif timestamps is None:
        id_list = new_prediction_ids(n, now)
    else:
        id_list = _ids_at(times)
    return Block("predictions", model, id_list, times, x, preds, probs, feature_names=names)


def feedback_block(
    model: str,
    ids: object,
    labels: object,
    timestamps: object | None = None,
    prediction_timestamps: object | None = None,
    predictions: object | None = None,
    version: str | None = None,
) -> Block:
    """Check and convert one ``Client.feedback`` call.

    An id Driftwatch did not make needs its prediction's time (the model
    service rebuilds the prediction's id from both, CONTRACTS.md): refused
    here at once rather than by the server later. So do ``predictions`` (the
    classes predicted: the labels then carry their prediction, counted without
    state kept per prediction), and ``version`` only comes with them.
    """
    values = _column(labels, "labels")
    n = len(values)
    id_list = _ids(ids, n)
    now = time.time_ns() // 1_000_000
    times = np.full(n, now, dtype=np.int64) if timestamps is None else _timestamps_ms(timestamps, n, "timestamps")
    predicted = None
    if prediction_timestamps is not None:
        predicted = _timestamps_ms(prediction_timestamps, n, "prediction_timestamps")
    elif not all(map(is_prediction_id, id_list)):
        raise ValueError("ids not made by Driftwatch need prediction_timestamps (when each prediction was logged)")
    carried = None
    if predictions is not None:
        if predicted is None:
            raise ValueError("predictions need prediction_timestamps (a label carries its prediction's class and time)")
        carried = _column(predictions, "predictions")
        if len(carried) != n:
            raise ValueError(f"predictions has {len(carried)} entries for {n} labels")
    elif version is not None:
        raise ValueError("version comes with predictions (the version of the predictions the labels carry)")
    return Block("feedback", model, id_list, times, values, carried, prediction_timestamps_ms=predicted,
                 version=version)


def encode(block: Block) -> bytes:
    """The JSON body of one batch (CONTRACTS.md: ``{"rows": [...]}`` or ``{"labels": [...]}``)."""
    ts = block.timestamps_ms.tolist()
    if block.kind == "feedback":
        labels = block.values.tolist()
        if block.prediction_timestamps_ms is None:
            items = [{"id": i, "label": v, "timestamp": t} for i, v, t in zip(block.ids, labels, ts, strict=True)]
        else:
            items = [
                {"id": i, "label": v, "timestamp": t, "prediction_timestamp": p}
                for i, v, t, p in zip(block.ids, labels, ts, block.prediction_timestamps_ms.tolist(), strict=True)
            ]
            if block.predictions is not None:
                for item, predicted in zip(items, block.predictions.tolist(), strict=True):
                    item["prediction"] = predicted
                    if block.version is not None:
                        item["version"] = block.version
        return orjson.dumps({"labels": items}, option=_OPTIONS)
    assert block.predictions is not None
    predictions = block.predictions.tolist()
    x = block.values
    if block.feature_names is not None:
        names = block.feature_names
        features: list[Any] = [dict(zip(names, row, strict=True)) for row in x.tolist()]
    else:
        features = list(x)  # numpy rows: orjson writes them (NaN as null) without Python floats
    rows = [
        {"id": i, "timestamp": t, "features": f, "prediction": p}
        for i, t, f, p in zip(block.ids, ts, features, predictions, strict=True)
    ]
    if block.probabilities is not None:
        for row, probs in zip(rows, block.probabilities, strict=True):
            row["probabilities"] = probs
    return orjson.dumps({"rows": rows}, option=_OPTIONS)
