"""Performance on labelled feedback, and an estimate where labels are missing.

Everything is derived with numpy from counts the state scripts keep per
window of prediction time (confusion pairs, label-delay buckets, confidence
buckets) and in total, so a late label that lands in an old window shows up
in that window's figures and the totals at once.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import orjson
import redis.asyncio as aioredis
from pydantic import BaseModel, Field

from monitor.estimate import AccuracyEstimate, AccuracyEstimator, histogram_from_hash
from monitor.window_state import JOIN_BUCKET_MS, delay_bucket_bounds_s
from monitor.windows import WindowIndex, series_keys
from shared.keys import Keys


class ClassMetrics(BaseModel):
    class_name: str
    precision: float | None
    recall: float | None
    f1: float | None
    support: int = Field(description="Labelled predictions whose true class is this one")


class LabelDelay(BaseModel):
    """Time from prediction to its label, from quarter-octave buckets (within ~9%)."""

    count: int
    median_s: float | None
    p95_s: float | None


EstimateMethod = Literal["agreement", "agreement-capped", "doc", "doc-capped"]


class WindowPerformance(BaseModel):
    window: int
    predictions: int
    labelled: int
    label_coverage: float | None
    accuracy: float | None = Field(description="Realised, on the labels received so far")
    estimated_accuracy: float | None = Field(
        description="Label-free, by estimate_method: the reference accuracy moved by the change in the served "
        "model's agreement with a nearest-neighbour vote on the labelled reference (agreement), else by "
        "the change in mean confidence (DoC), at most accuracy_bound. Read it while labels are missing"
    )
    estimated_accuracy_interval: tuple[float, float] | None = Field(
        default=None,
        description="95% interval of the estimate: sampling error only (of the window, and of the reference's "
        "calibration), not the bias of a shift the method does not see; capped by accuracy_bound, it ends there",
    )
    estimate_method: EstimateMethod | None = Field(
        default=None,
        description='How estimated_accuracy was made: "agreement" (monitor/agreement.py: a count or time '
        "window whose drift report has it, for a classifier whose reference has labelled rows with features, "
        'with or without probabilities), "agreement-capped" (agreement, lowered to accuracy_bound), "doc" '
        '(difference of confidences) or "doc-capped" (DoC, lowered to accuracy_bound); both DoC methods need '
        "probabilities",
    )
    accuracy_bound: float | None = Field(
        default=None,
        description="Upper bound on accuracy from the predictions' class mix against the mix the window's "
        "features imply (count windows whose drift report has one; see monitor/class_mix.py)",
    )
    label_delay: LabelDelay
    classes: list[ClassMetrics]
    confusion_matrix: list[list[int]]


class PerformanceReport(BaseModel):
    """One model version's performance (its window series); the ``feedback_*`` counts are the
    model's, over every version (a label names no version until it is joined)."""

    model: str
    model_version: str | None
    predictions: int = Field(description="Distinct predictions of this version ingested")
    labelled: int = Field(description="Predictions of this version joined to a label")
    label_coverage: float | None
    accuracy: float | None = Field(description="None until a prediction has a label")
    feedback_received: int
    feedback_duplicates: int = Field(
        description="Labels seen again and ignored: client retries, or redelivery after a monitor crash"
    )
    feedback_unmatched: int = Field(
        description="Labels (of any version) not joined to a prediction: waiting plus expired")
    feedback_waiting: int = Field(description="Labels still waiting for their prediction (within the retention)")
    feedback_expired: int = Field(
        description="Labels whose prediction never arrived within DRIFTWATCH_JOIN_RETENTION_S: dropped, counted"
    )
    label_delay: LabelDelay
    reference_accuracy: float | None = Field(description="Accuracy on the held-out reference at training")
    estimate_unavailable: str | None = Field(
        default=None,
        description="Why windows have no label-free estimate, by method: a classifier that logs no "
        'probabilities has no DoC ("doc unavailable: no probabilities; agreement estimates count and time '
        'windows, not sliding ones", or "unavailable: no probabilities (doc), no labelled reference rows with '
        'features (agreement)" where its reference gives no surrogate either); a regressor: "unavailable: no '
        'probabilities"',
    )
    classes: list[ClassMetrics]
    confusion_matrix: list[list[int]] = Field(description="Rows: true class; columns: predicted class")
    windows: list[WindowPerformance] = Field(description="Newest first")


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


def label_delay(raw: dict[bytes, bytes]) -> LabelDelay:
    """Median and p95 from bucket counts, interpolating linearly inside a bucket."""
    if not raw:
        return LabelDelay(count=0, median_s=None, p95_s=None)
    buckets = np.array([int(k) for k in raw], dtype=np.int64)
    counts = np.array([int(v) for v in raw.values()], dtype=np.float64)
    order = np.argsort(buckets)
    buckets, counts = buckets[order], counts[order]
    cumulative = np.cumsum(counts)
    total = cumulative[-1]

    def quantile(q: float) -> float:
        i = int(np.searchsorted(cumulative, q * total))
        low, high = delay_bucket_bounds_s(int(buckets[i]))
        before = cumulative[i - 1] if i else 0.0
        return float(low + (high - low) * (q * total - before) / counts[i])

    return LabelDelay(count=int(total), median_s=quantile(0.5), p95_s=quantile(0.95))


def _own_report(report_json: bytes | None, window: int) -> dict[str, Any] | None:
    """An ingest window's own drift report: in count and time windows a report covers one ingest
    window; a sliding window's spans several, and is not used."""
    if not report_json:
        return None
    report: dict[str, Any] = orjson.loads(report_json)
    if report.get("window") != window or report.get("window_first", window) != window:
        return None
    return report


def accuracy_bound(report_json: bytes | None, window: int) -> float | None:
    """The class-mix accuracy bound of an ingest window's own drift report."""
    return _bound(_own_report(report_json, window))


def _bound(report: dict[str, Any] | None) -> float | None:
    bound = report.get("accuracy_bound") if report else None
    return float(bound) if bound is not None else None


def _agreement(report: dict[str, Any] | None) -> AccuracyEstimate | None:
    """A report's agreement estimate (None in reports stored before it, or of windows whose rows
    did not carry their class)."""
    if not report or report.get("agreement_accuracy") is None or not report.get("agreement_interval"):
        return None
    low, high = report["agreement_interval"]
    return AccuracyEstimate(float(report["agreement_accuracy"]), float(low), float(high))


def window_estimate(
    report_json: bytes | None, window: int, calibration: AccuracyEstimator | None, confidence: dict[bytes, bytes]
) -> tuple[AccuracyEstimate | None, EstimateMethod | None, float | None]:
    """A window's label-free estimate, its method and the class-mix bound: agreement where the
    window's own drift report has it (it halves DoC's error on windows losing 5-30 points,
    benchmarks/RESULTS.md), else DoC from the confidence histogram; either capped by the bound
    (for agreement it trims noise sd 0.4's error 0.029 -> 0.023 and moves no scenario up, and an
    estimate above the window's own bound would contradict it)."""
    report = _own_report(report_json, window)
    bound = _bound(report)
    agreed = _agreement(report)
    if agreed is not None:
        capped_agreement = agreed.capped(bound)
        return capped_agreement, "agreement" if capped_agreement is agreed else "agreement-capped", bound
    doc = calibration.estimate(histogram_from_hash(confidence)) if calibration else None
    if doc is None:
        return None, None, bound
    capped = doc.capped(bound)
    return capped, "doc" if capped is doc else "doc-capped", bound


@dataclass(frozen=True, slots=True)
class PerformanceTotals:
    """A version's figures the performance gauges show: a report's totals, without its other reads."""

    model_version: str | None
    labelled: int
    label_coverage: float | None
    accuracy: float | None


def _totals(version: str | None, ingested: int, matrix: npt.NDArray[np.int64]) -> PerformanceTotals:
    labelled = int(matrix.sum())
    return PerformanceTotals(version or None, labelled, labelled / ingested if ingested else None, accuracy(matrix))


async def performance_totals(
    client: aioredis.Redis, keys: Keys, n_classes: int, model_version: str | None = None
) -> PerformanceTotals:
    """:func:`performance_report`'s totals alone: two reads in one round trip, not the report's
    waiting-label scan (a key per hour of retention) and window hashes. The gauges ask for them
    every stats refresh of every watched model; with 50 models the full report cost ~10% of
    the monitor's CPU (benchmarks/fleet.py)."""
    series = await series_keys(client, keys, model_version) or keys.for_version("")
    async with client.pipeline(transaction=True) as pipe:
        pipe.get(series.ingested)
        pipe.hgetall(series.version_confusion_total)
        ingested_raw, total_raw = await pipe.execute()
    return _totals(series.version, int(ingested_raw or 0), confusion_from_hash(total_raw, n_classes))


async def performance_report(
    client: aioredis.Redis,
    keys: Keys,
    class_names: list[str],
    windows: WindowIndex,
    last_windows: int = 10,
    calibration: AccuracyEstimator | None = None,
    model_version: str | None = None,
    estimate_unavailable: str | None = None,
    retention_s: int = 7 * 24 * 3600,
    only_windows: Sequence[int] | None = None,
) -> PerformanceReport:
    """Totals, and the figures of the ``last_windows`` newest ingest windows that ``windows`` lists,
    of ``model_version``'s series (default: the model's current version). Predictions, labels
    joined and accuracy are that version's; feedback received, duplicated, waiting and expired
    are the model's (a label names no version until it is joined).

    ``only_windows``: the figures of exactly these windows instead (the timeline's reported
    windows: the newest ingest windows include the one being filled, so the oldest reported
    window of a timeline fell outside them and showed no accuracy).

    Over 60 lines because it is two pipelined Redis reads (totals, then every
    listed window's hashes in one round trip) and the model built from them;
    the per-figure arithmetic lives in the helpers above.
    """
    n_classes = len(class_names)
    series = await series_keys(client, keys, model_version) or keys.for_version("")
    now_bucket = int(time.time() * 1000) // JOIN_BUCKET_MS
    live_buckets = range(now_bucket - retention_s * 1000 // JOIN_BUCKET_MS - 1, now_bucket + 2)
    async with client.pipeline(transaction=True) as pipe:
        pipe.get(series.ingested)
        pipe.hgetall(series.version_confusion_total)
        pipe.hgetall(keys.feedback_counts)
        pipe.hgetall(series.version_label_delays_total)
        pipe.mget([keys.waiting_labels(b) for b in live_buckets])
        pipe.hvals(keys.confusion_total)
        ingested_raw, total_raw, counts, delays_raw, waiting_raw, joined_raw = await pipe.execute()
    waiting = sum(int(v) for v in waiting_raw if v is not None)
    joined_all_versions = sum(int(v) for v in joined_raw)
    ingested = int(ingested_raw or 0)
    matrix = confusion_from_hash(total_raw, n_classes)
    totals = _totals(series.version, ingested, matrix)
    received = int(counts.get(b"received", 0))

    recent = list(only_windows) if only_windows is not None else await windows.recent(last_windows, series.version)
    per_window: list[WindowPerformance] = []
    if recent:
        async with client.pipeline(transaction=False) as pipe:
            for w in recent:
                pipe.hgetall(series.confusion(w))
                pipe.hgetall(series.window_classes(w))
                pipe.hgetall(series.window_label_delays(w))
                pipe.hgetall(series.window_confidence(w))
                pipe.hget(series.drift_reports, str(w))
            raw = await pipe.execute()
        for i, w in enumerate(recent):
            confusion_raw, classes_raw, delay_raw, confidence_raw, report_raw = raw[5 * i : 5 * i + 5]
            m = confusion_from_hash(confusion_raw, n_classes)
            predictions = sum(int(v) for v in classes_raw.values())
            estimate, method, bound = window_estimate(report_raw, w, calibration, confidence_raw)
            per_window.append(
                WindowPerformance(
                    window=w,
                    predictions=predictions,
                    labelled=int(m.sum()),
                    label_coverage=int(m.sum()) / predictions if predictions else None,
                    accuracy=accuracy(m),
                    estimated_accuracy=estimate.value if estimate else None,
                    estimated_accuracy_interval=(estimate.low, estimate.high) if estimate else None,
                    estimate_method=method,
                    accuracy_bound=bound,
                    label_delay=label_delay(delay_raw),
                    classes=class_metrics(m, class_names),
                    confusion_matrix=m.tolist(),
                )
            )

    return PerformanceReport(
        model=keys.model,
        model_version=totals.model_version,
        predictions=ingested,
        labelled=totals.labelled,
        label_coverage=totals.label_coverage,
        accuracy=totals.accuracy,
        feedback_received=received,
        feedback_duplicates=int(counts.get(b"duplicate", 0)),
        feedback_unmatched=received - joined_all_versions,
        feedback_waiting=waiting,
        feedback_expired=max(received - joined_all_versions - waiting, 0),
        label_delay=label_delay(delays_raw),
        reference_accuracy=calibration.reference_accuracy if calibration else None,
        estimate_unavailable=estimate_unavailable,
        classes=class_metrics(matrix, class_names),
        confusion_matrix=matrix.tolist(),
        windows=per_window,
    )
