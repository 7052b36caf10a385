"""Accuracy on labelled feedback, from the confusion counts the join script keeps.

Counts are kept per window of prediction time and in total; everything here
is derived from them with numpy, so a late label that updates an old window
shows up in that window's figures and in the totals at once.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import redis.asyncio as aioredis
from pydantic import BaseModel, Field

from shared.keys import Keys


class ClassMetrics(BaseModel):
    class_name: str
    precision: float | None
    recall: float | None
    f1: float | None
    support: int = Field(description="Labelled predictions whose true class is this one")


class WindowPerformance(BaseModel):
    window: int
    labelled: int
    accuracy: float | None


class PerformanceReport(BaseModel):
    model: str
    predictions: int = Field(description="Distinct predictions ingested")
    labelled: int = Field(description="Predictions joined to a label")
    label_coverage: float | None
    accuracy: float | None = Field(description="None until a prediction has a label")
    feedback_received: int
    feedback_duplicates: int
    feedback_unmatched: int = Field(description="Labels whose prediction has not arrived (yet)")
    classes: list[ClassMetrics]
    confusion_matrix: list[list[int]] = Field(description="Rows: true class; columns: predicted class")
    windows: list[WindowPerformance]


def confusion_from_hash(raw: dict[bytes, bytes], n_classes: int) -> npt.NDArray[np.int64]:
    matrix = np.zeros((n_classes, n_classes), dtype=np.int64)
    if raw:
        pairs = np.array([k.split(b":") for k in raw], dtype=np.int64)
        counts = np.array(list(raw.values()), dtype=np.int64)
        inside = (pairs < n_classes).all(axis=1) & (pairs >= 0).all(axis=1)
        np.add.at(matrix, (pairs[inside, 0], pairs[inside, 1]), counts[inside])
    return matrix


def _ratio(num: npt.NDArray[np.int64], den: npt.NDArray[np.int64]) -> list[float | None]:
    return [float(n / d) if d else None for n, d in zip(num.tolist(), den.tolist(), strict=True)]


def class_metrics(matrix: npt.NDArray[np.int64], class_names: list[str]) -> list[ClassMetrics]:
    hits = np.diag(matrix)
    precision = _ratio(hits, matrix.sum(axis=0))
    recall = _ratio(hits, matrix.sum(axis=1))
    f1 = [2 * p * r / (p + r) if p is not None and r is not None and p + r > 0 else None
          for p, r in zip(precision, recall, strict=True)]
    return [
        ClassMetrics(class_name=name, precision=p, recall=r, f1=f, support=int(s))
        for name, p, r, f, s in zip(class_names, precision, recall, f1, matrix.sum(axis=1).tolist(), strict=True)
    ]


def accuracy(matrix: npt.NDArray[np.int64]) -> float | None:
    total = int(matrix.sum())
    return float(np.trace(matrix) / total) if total else None


async def performance_report(
    client: aioredis.Redis, keys: Keys, class_names: list[str], window_size: int, last_windows: int = 20
) -> PerformanceReport:
    n_classes = len(class_names)
    async with client.pipeline(transaction=True) as pipe:
        pipe.get(keys.ingested)
        pipe.hgetall(keys.confusion_total)
        pipe.hgetall(keys.feedback_counts)
        ingested_raw, total_raw, counts = await pipe.execute()
    ingested = int(ingested_raw or 0)
    matrix = confusion_from_hash(total_raw, n_classes)
    labelled = int(matrix.sum())
    received = int(counts.get(b"received", 0))

    newest = (ingested - 1) // window_size if ingested else -1
    windows = list(range(max(0, newest - last_windows + 1), newest + 1))
    per_window: list[WindowPerformance] = []
    if windows:
        async with client.pipeline(transaction=False) as pipe:
            for w in windows:
                pipe.hgetall(keys.confusion(w))
            for w, raw in zip(windows, await pipe.execute(), strict=True):
                m = confusion_from_hash(raw, n_classes)
                per_window.append(WindowPerformance(window=w, labelled=int(m.sum()), accuracy=accuracy(m)))

    return PerformanceReport(
        model=keys.model,
        predictions=ingested,
        labelled=labelled,
        label_coverage=labelled / ingested if ingested else None,
        accuracy=accuracy(matrix),
        feedback_received=received,
        feedback_duplicates=int(counts.get(b"duplicate", 0)),
        feedback_unmatched=received - labelled,
        classes=class_metrics(matrix, class_names),
        confusion_matrix=matrix.tolist(),
        windows=per_window,
    )
