"""Rows that passed their body's schema, turned into stream events, or refused one by one.

What pydantic cannot check without the registered model's lookups is checked
here, with each refused row's error located in the body
(``["body", "rows", 3, "features", "age"]``): an unknown feature name, a value
beyond ``MAX_FEATURE_ABS``, a label that is no class of the model,
probabilities for a model registered without them, a timestamp outside the
range events carry (``MAX_EVENT_MS``), feedback for an id from elsewhere without its
prediction's time, a label's ``prediction`` without its ``prediction_timestamp``
(or, for a model registered with ``label_join: carried``, without both), a
``version`` the model was never registered under. The
other rows are kept: the caller publishes them and answers 422 naming the rest
(the contract of the ingest endpoints).

Missing values (``null``, ``NaN``, a name left out of a mapping) stay NaN in
the event and are counted per feature; they are never replaced by a number.
The matrix work is numpy over the whole batch; what stays per row is reading
pydantic's row objects and the label lookup.
"""

from __future__ import annotations

import operator
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import numpy.typing as npt

from model_service.registered_models import IngestSchema
from model_service.schemas import MAX_FEATURE_ABS
from shared.ids import MAX_EVENT_MS, internal_prediction_id, is_prediction_id, prediction_ids_at

Loc = tuple[str | int, ...]
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MS = timedelta(milliseconds=1)


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def error(loc: Loc, msg: str, value: object = None) -> dict[str, Any]:
    """One refused row's error, in FastAPI's shape."""
    return {"type": "value_error", "loc": ("body", *loc), "msg": msg, "input": value}


def epoch_ms(value: int | datetime | None, default: int) -> int | None:
    """A timestamp as epoch milliseconds (``default`` when absent); None past what events carry."""
    if value is None:
        return default
    ms = value if isinstance(value, int) else (value - _EPOCH) // _MS
    return ms if 0 <= ms <= MAX_EVENT_MS else None


_STAMP_RANGE = f"a time from 1970 on, in epoch milliseconds up to {MAX_EVENT_MS} or RFC 3339 with an offset"


@dataclass(slots=True)
class LoggedPredictions:
    """The accepted rows as event columns, and the errors of the others."""

    index: list[int]  # each accepted row's position in the body
    ids: list[str]
    timestamps_ms: npt.NDArray[np.int64]
    features: npt.NDArray[np.float32]  # (n, F), or (n, F + 1) for a regressor: its prediction last
    classes: npt.NDArray[np.int64]
    probabilities: npt.NDArray[np.float32]  # (n, K) or (n, 0)
    missing: dict[str, int]  # missing values among the accepted rows, by feature
    errors: list[dict[str, Any]]


class _Refusals:
    """The first error of each refused row, by its position in the validated list."""

    def __init__(self, item: str, index: Sequence[int]) -> None:
        self.item = item
        self.index = index
        self.by_row: dict[int, dict[str, Any]] = {}

    def add(self, row: int, loc: Loc, msg: str, value: object = None) -> None:
        if row not in self.by_row:
            self.by_row[row] = error((self.item, self.index[row], *loc), msg, value)

    def keep(self, n: int) -> npt.NDArray[np.bool_]:
        mask = np.ones(n, dtype=bool)
        mask[list(self.by_row)] = False
        return mask


def _feature_matrix(schema: IngestSchema, rows: Sequence[Any], refused: _Refusals) -> npt.NDArray[np.float64]:
    """(n, F) float64 with NaN for missing values; unknown names and values beyond range refused."""
    names = schema.metadata.feature_names
    n, f = len(rows), len(names)
    matrix = np.full((n, f), np.nan)
    by_position = [i for i, r in enumerate(rows) if isinstance(r.features, list)]
    if by_position:
        matrix[by_position] = np.array([rows[i].features for i in by_position], dtype=np.float64)
    if len(by_position) < n:
        every = operator.itemgetter(*names)
        known = schema.feature_index.keys()
        for i, row in enumerate(rows):
            values = row.features
            if isinstance(values, list):
                continue
            if len(values) == f and values.keys() == known:  # the usual case: every name, in C
                matrix[i] = every(values) if f > 1 else [every(values)]
                continue
            unknown = values.keys() - known
            if unknown:
                name = min(unknown)
                refused.add(i, ("features", name), f"unknown feature {name!r} (model {schema.name!r})")
                continue
            matrix[i] = [values.get(name) for name in names]
    beyond = np.abs(matrix) > MAX_FEATURE_ABS  # NaN compares False: missing is not out of range
    for i in np.flatnonzero(beyond.any(axis=1)).tolist():
        column = int(np.argmax(beyond[i]))
        where: str | int = column if isinstance(rows[i].features, list) else names[column]
        refused.add(i, ("features", where), f"must be finite and at most {MAX_FEATURE_ABS:g} in magnitude")
    return matrix


def _classes(schema: IngestSchema, rows: Sequence[Any], refused: _Refusals) -> npt.NDArray[np.int64]:
    classes = [schema.class_of(r.prediction) for r in rows]
    for i, cls in enumerate(classes):
        if cls is None:
            shown = ", ".join(schema.metadata.class_names[:10])
            refused.add(i, ("prediction",), f"not a class of model {schema.name!r} (classes: {shown})",
                        rows[i].prediction)
    return np.array([c if c is not None else 0 for c in classes], dtype=np.int64)


def _regression_values(rows: Sequence[Any], refused: _Refusals) -> npt.NDArray[np.float64]:
    values = np.array([float(r.prediction) for r in rows], dtype=np.float64)
    for i in np.flatnonzero(~(np.abs(values) <= MAX_FEATURE_ABS)).tolist():
        refused.add(i, ("prediction",), f"must be finite and at most {MAX_FEATURE_ABS:g} in magnitude")
    return values


def _probabilities(schema: IngestSchema, rows: Sequence[Any], refused: _Refusals) -> npt.NDArray[np.float32]:
    k = schema.probability_width
    if k:  # present and K long in every row: the body's schema requires it
        return np.array([r.probabilities for r in rows], dtype=np.float32).reshape(len(rows), k)
    for i, row in enumerate(rows):
        if row.probabilities is not None:
            why = "a regressor" if schema.is_regressor else "without probabilities"
            refused.add(i, ("probabilities",), f"model {schema.name!r} is registered as {why}: leave them out")
    return np.zeros((len(rows), 0), dtype=np.float32)


def _prediction_ids(rows: Sequence[Any], stamps: list[int]) -> list[str]:
    """Driftwatch ids kept, foreign ids mapped (``internal_prediction_id``), absent ones drawn."""
    ids = [
        row.id if row.id is None or is_prediction_id(row.id) else internal_prediction_id(row.id, stamp)
        for row, stamp in zip(rows, stamps, strict=True)
    ]
    absent = [i for i, pid in enumerate(ids) if pid is None]
    for i, drawn in zip(absent, prediction_ids_at([stamps[i] for i in absent]), strict=True):
        ids[i] = drawn
    return ids


def logged_predictions(
    schema: IngestSchema, index: Sequence[int], rows: Sequence[Any], errors: list[dict[str, Any]],
    received_ms: int | None = None,
) -> LoggedPredictions:
    """Events for the ``rows`` (validated rows of the body, at positions ``index``) that fit the model.

    ``errors`` (rows that failed the body's schema) are passed through, then
    this function's own refusals, in row order.
    """
    now = received_ms if received_ms is not None else now_ms()
    refused = _Refusals("rows", index)
    stamps: list[int] = []
    for i, row in enumerate(rows):
        stamp = epoch_ms(row.timestamp, now)
        if stamp is None:
            refused.add(i, ("timestamp",), f"must be {_STAMP_RANGE}")
        stamps.append(stamp if stamp is not None else now)
    matrix = _feature_matrix(schema, rows, refused)
    if schema.is_regressor:
        matrix = np.column_stack([matrix, _regression_values(rows, refused)])
        classes = np.zeros(len(rows), dtype=np.int64)
    else:
        classes = _classes(schema, rows, refused)
    probabilities = _probabilities(schema, rows, refused)
    keep = refused.keep(len(rows))
    features = matrix[keep].astype(np.float32)
    kept_rows = [r for r, k in zip(rows, keep.tolist(), strict=True) if k]
    kept_stamps = [s for s, k in zip(stamps, keep.tolist(), strict=True) if k]
    missing = np.isnan(features[:, : schema.n_features]).sum(axis=0)
    return LoggedPredictions(
        index=[i for i, k in zip(index, keep.tolist(), strict=True) if k],
        ids=_prediction_ids(kept_rows, kept_stamps),
        timestamps_ms=np.array(kept_stamps, dtype=np.int64),
        features=features,
        classes=classes[keep],
        probabilities=probabilities[keep],
        missing={schema.metadata.feature_names[j]: int(c) for j, c in enumerate(missing.tolist()) if c},
        errors=sorted([*errors, *refused.by_row.values()], key=_row_position),
    )


@dataclass(slots=True)
class LoggedLabels:
    """Accepted labels as event fields; ``predicted`` is None for one joined by id (then
    ``predicted_ms`` and ``versions`` are None too)."""

    ids: list[str]
    labels: list[int]
    timestamps_ms: list[int]
    errors: list[dict[str, Any]]
    predicted: list[int | None] = field(default_factory=list)
    predicted_ms: list[int | None] = field(default_factory=list)
    versions: list[str | None] = field(default_factory=list)


def _carried(schema: IngestSchema, row: Any, refused: _Refusals, i: int) -> tuple[int | None, bool]:
    """The predicted class a label carries (None: joined by id); False when the row is refused."""
    carried_only = schema.metadata.label_join == "carried"
    if row.prediction is None:
        if carried_only:
            refused.add(i, ("prediction",), f"required: model {schema.name!r} is registered with label_join "
                        "'carried' (labels carry their prediction's class and prediction_timestamp)")
            return None, False
        if row.version is not None:
            refused.add(i, ("version",), "only with prediction (the version of the prediction a label carries)")
            return None, False
        return None, True
    if row.prediction_timestamp is None:
        refused.add(i, ("prediction_timestamp",), "required with prediction (a label carries its prediction's "
                    "class and time together)")
        return None, False
    predicted = schema.class_of(row.prediction)
    if predicted is None:
        shown = ", ".join(schema.metadata.class_names[:10])
        refused.add(i, ("prediction",), f"not a class of model {schema.name!r} (classes: {shown})", row.prediction)
        return None, False
    if row.version is not None and schema.versions is not None and row.version not in schema.versions:
        shown = ", ".join(sorted(schema.versions)[:10])
        refused.add(i, ("version",), f"no version {row.version!r} of model {schema.name!r} registered "
                    f"(registered: {shown})", row.version)
        return None, False
    return predicted, True


def logged_labels(
    schema: IngestSchema, index: Sequence[int], rows: Sequence[Any], errors: list[dict[str, Any]],
    received_ms: int | None = None,
) -> LoggedLabels:
    """Feedback events for the labels that fit the model; the others refused, located."""
    now = received_ms if received_ms is not None else now_ms()
    refused = _Refusals("labels", index)
    out = LoggedLabels([], [], [], [])
    for i, row in enumerate(rows):
        label = schema.class_of(row.label)
        if label is None:
            shown = ", ".join(schema.metadata.class_names[:10])
            refused.add(i, ("label",), f"not a class of model {schema.name!r} (classes: {shown})", row.label)
            continue
        at = epoch_ms(row.timestamp, now)
        if at is None:
            refused.add(i, ("timestamp",), f"must be {_STAMP_RANGE}")
            continue
        predicted, fits = _carried(schema, row, refused, i)
        if not fits:
            continue
        made = None if row.prediction_timestamp is None else epoch_ms(row.prediction_timestamp, now)
        if row.prediction_timestamp is not None and made is None:
            refused.add(i, ("prediction_timestamp",), f"must be {_STAMP_RANGE}")
            continue
        if is_prediction_id(row.id):
            prediction_id = row.id
        elif made is None:
            refused.add(i, ("prediction_timestamp",), "required with an id that is not a Driftwatch id "
                        "(the prediction's id is made from your id and its time)")
            continue
        else:
            prediction_id = internal_prediction_id(row.id, made)
        out.ids.append(prediction_id)
        out.labels.append(label)
        out.timestamps_ms.append(at)
        out.predicted.append(predicted)
        out.predicted_ms.append(made if predicted is not None else None)
        out.versions.append(row.version if predicted is not None else None)
    out.errors = sorted([*errors, *refused.by_row.values()], key=_row_position)
    return out


def _row_position(e: dict[str, Any]) -> int:
    loc = e.get("loc", ())
    return loc[2] if len(loc) > 2 and isinstance(loc[2], int) else -1
