"""Traffic for the issue-15 proof (tests/e2e/test_watch_any_model.py): one feed per model, each
sending its predictions (and true labels for every other one) the way that model's owner would.

Every feed knows its rows in advance, sends them in order in small batches and records what the
services accepted: the prediction ids (as the monitor counts them) and each labelled prediction's
(true class, predicted class), from which the expected accuracy and confusion matrix follow.
A feed runs in three phases so the test can SIGKILL the monitor while every feed is sending
(:meth:`Feed.run`).
"""

from __future__ import annotations

import csv
import json
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from shared.api_auth import API_KEY_HEADER
from shared.ids import internal_prediction_id

PACE_S = 0.05  # between batches while the test waits to kill the monitor: the feeds keep sending meanwhile


@dataclass
class Gates:
    """The test's signals to the feeds: send on after the first phase, the monitor is dead, it is back."""

    go: threading.Event = field(default_factory=threading.Event)
    killed: threading.Event = field(default_factory=threading.Event)
    restarted: threading.Event = field(default_factory=threading.Event)


@dataclass
class Feed:
    """One model's traffic. Subclasses send rows [start, stop) in :meth:`send`."""

    name: str
    total: int
    class_names: list[str]
    batch: int = 10
    accepted: list[str] = field(default_factory=list)
    labelled: list[tuple[int, int]] = field(default_factory=list)  # (true, predicted) class indexes
    sent: int = 0
    batches_after_go: int = 0
    paused_for_restart: bool = False  # reached the end of the second phase (not sending any more until restart)

    def send(self, http: httpx.Client, start: int, stop: int) -> None:
        raise NotImplementedError

    def _next(self, http: httpx.Client, limit: int) -> None:
        stop = min(self.sent + self.batch, limit)
        self.send(http, self.sent, stop)
        self.sent = stop

    def run(self, gates: Gates, first: int, second_cap: int, timeout_s: float = 600) -> None:
        """Rows [0, first) at once; after ``go``, paced batches until the monitor is killed (one more
        after that) or ``second_cap``; after ``restarted``, the rest."""
        with httpx.Client(timeout=60) as http:
            while self.sent < first:
                self._next(http, first)
            assert gates.go.wait(timeout_s), "no go"
            seen_kill = False
            while self.sent < second_cap:
                self._next(http, second_cap)
                self.batches_after_go += 1
                if seen_kill:
                    break
                seen_kill = gates.killed.wait(PACE_S)
            self.paused_for_restart = True
            assert gates.restarted.wait(timeout_s), "no restart"
            while self.sent < self.total:
                self._next(http, self.total)

    def expected_accuracy(self) -> float:
        return float(np.mean([t == p for t, p in self.labelled]))

    def expected_confusion(self) -> list[list[int]]:
        matrix = np.zeros((len(self.class_names), len(self.class_names)), dtype=np.int64)
        for t, p in self.labelled:
            matrix[t, p] += 1
        return matrix.tolist()


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def _accepted(answer: httpx.Response, rows: int, what: str) -> dict[str, Any]:
    assert answer.status_code == 202, f"{what}: {answer.status_code} {answer.text[:500]}"
    body: dict[str, Any] = answer.json()
    assert body["accepted"] == rows, body
    return body


# -- (a) the scikit-learn example app, logging through driftwatch.Client ---------------------------
@dataclass
class AppFeed(Feed):
    """Rows of the breast-cancer data, posted to the example app, which logs them through the client.
    Row i is data row ``order[i % n]``: any window of consecutive rows repeats none."""

    url: str = ""
    x: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))
    y: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    features: list[str] = field(default_factory=list)
    order: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))

    def send(self, http: httpx.Client, start: int, stop: int) -> None:
        pick = self.order[np.arange(start, stop) % len(self.order)]
        rows = [dict(zip(self.features, r, strict=True)) for r in self.x[pick].tolist()]
        answer = http.post(f"{self.url}/predict", json={"rows": rows})
        assert answer.status_code == 200, answer.text[:500]
        predictions = answer.json()["predictions"]
        self.accepted += [p["id"] for p in predictions]
        chosen = [(p, j) for k, (p, j) in enumerate(zip(predictions, pick.tolist(), strict=True))
                  if (start + k) % 2 == 0]
        labels = [{"id": p["id"], "label": self.class_names[int(self.y[j])]} for p, j in chosen]
        self.labelled += [(int(self.y[j]), self.class_names.index(p["class"])) for p, j in chosen]
        if labels:
            answer = http.post(f"{self.url}/feedback", json=labels)
            assert answer.status_code == 200 and answer.json()["queued"] == len(labels), answer.text[:500]


# -- (b) a model logged over raw HTTP: string labels, missing values ----------------------------------
LOANS_FEATURES = ["age", "income", "tenure", "score"]
LOANS_CLASSES = ["approve", "decline", "review"]  # sorted: the order register infers from the labels
LOANS_SHIFTED = {"age": 30.0, "income": 45.0}  # added to the last window's rows: 3 standard deviations each
LOANS_MISSING = "score"  # one row in ten has no score, in the reference and in traffic alike


def loans_rows(n: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Features (NaN = missing), probabilities, predicted and true class indexes. The model
    looks at tenure alone, so shifting age and income moves no prediction."""
    rng = np.random.default_rng(seed)
    x = np.column_stack([rng.normal(40, 10, n), rng.normal(50, 15, n), rng.exponential(3, n),
                         rng.normal(600, 50, n)]).round(3)
    x[rng.random(n) < 0.1, LOANS_FEATURES.index(LOANS_MISSING)] = np.nan
    t = x[:, 2] - 3
    logits = np.column_stack([1.5 * t, -1.5 * t, np.zeros(n)])
    p = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    p = p.round(4)
    p[:, 2] = (1 - p[:, 0] - p[:, 1]).round(4)
    p = np.clip(p, 0, 1)
    predicted = p.argmax(axis=1)
    truth = (rng.random(n)[:, None] > np.cumsum(p, axis=1)).sum(axis=1).clip(0, 2)
    return x, p, predicted, truth


def write_loans_reference(path: Path, n: int = 3_000, seed: int = 0) -> None:
    x, p, predicted, truth = loans_rows(n, seed)
    with path.open("w", newline="") as f:
        out = csv.writer(f)
        out.writerow([*LOANS_FEATURES, "decision", *(f"p_{c}" for c in LOANS_CLASSES), "outcome"])
        for row, probs, k, t in zip(x.tolist(), p.tolist(), predicted.tolist(), truth.tolist(), strict=True):
            cells = ["" if np.isnan(v) else v for v in row]
            out.writerow([*cells, LOANS_CLASSES[k], *probs, LOANS_CLASSES[t]])


@dataclass
class LoggedFeed(Feed):
    """Raw ``POST /models/loans/predictions``: own ids, epoch-ms timestamps, features as a list (null for
    a missing score) or as a mapping (the missing score left out); the last window shifted."""

    url: str = ""
    key: str = ""
    shift_from: int = 0
    seed: int = 1

    def __post_init__(self) -> None:
        self.x, self.p, self.predicted, self.truth = loans_rows(self.total, self.seed)
        for feature, delta in LOANS_SHIFTED.items():
            self.x[self.shift_from :, LOANS_FEATURES.index(feature)] += delta
        self.stamps: dict[int, int] = {}

    def send(self, http: httpx.Client, start: int, stop: int) -> None:
        now = _now_ms()
        rows = []
        for i in range(start, stop):
            self.stamps[i] = now
            values = [None if np.isnan(v) else v for v in self.x[i].tolist()]
            features: Any = values if i % 2 else {k: v for k, v in zip(LOANS_FEATURES, values, strict=True)
                                                  if v is not None}
            rows.append({"id": f"loan-{i}", "timestamp": now, "features": features,
                         "prediction": LOANS_CLASSES[int(self.predicted[i])], "probabilities": self.p[i].tolist()})
        headers = {API_KEY_HEADER: self.key}
        body = _accepted(http.post(f"{self.url}/models/{self.name}/predictions", json={"rows": rows},
                                   headers=headers), len(rows), self.name)
        assert body["ids"] == [internal_prediction_id(f"loan-{i}", now) for i in range(start, stop)]
        self.accepted += body["ids"]
        labels = [{"id": f"loan-{i}", "label": LOANS_CLASSES[int(self.truth[i])], "prediction_timestamp": now}
                  for i in range(start, stop) if i % 2 == 0]
        self.labelled += [(int(self.truth[i]), int(self.predicted[i])) for i in range(start, stop) if i % 2 == 0]
        _accepted(http.post(f"{self.url}/models/{self.name}/feedback", json={"labels": labels}, headers=headers),
                  len(labels), f"{self.name} feedback")


# -- (c) KServe's inference logger: request and response CloudEvents ----------------------------------
IRIS_FEATURES = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
IRIS_CENTRES = np.array([[5.0, 3.4, 1.5, 0.25], [5.9, 2.8, 4.3, 1.3], [6.6, 3.0, 5.6, 2.0]])
IRIS_SPREAD = np.array([0.45, 0.35, 0.7, 0.35])


def iris_rows(n: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Features, true species, and the nearest-centre prediction (right about 9 times in 10)."""
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, 3, n)
    x = (IRIS_CENTRES[truth] + rng.normal(size=(n, 4)) * IRIS_SPREAD).round(2)
    predicted = (((x[:, None, :] - IRIS_CENTRES[None]) / IRIS_SPREAD) ** 2).sum(axis=2).argmin(axis=1)
    return x, truth, predicted


def iris_registration(n: int = 1_500, seed: int = 0) -> dict[str, Any]:
    """The JSON body of ``PUT /models/{name}/versions/{v}``: integer class labels, no probabilities."""
    x, truth, predicted = iris_rows(n, seed)
    reference: dict[str, Any] = {name: x[:, j].tolist() for j, name in enumerate(IRIS_FEATURES)}
    reference["species"] = predicted.tolist()
    reference["label"] = truth.tolist()
    return {"metadata": {"feature_names": IRIS_FEATURES, "prediction_column": "species", "label_column": "label",
                         "source": "iris-kserve.json"}, "reference": reference}


def kserve_headers(kind: str, ce_id: str, ce_time: str, service: str) -> dict[str, str]:
    """The attributes KServe's logger sets (pkg/logger/worker.go), as binary-mode headers."""
    return {"ce-specversion": "1.0", "ce-type": f"org.kubeflow.serving.inference.{kind}",
            "ce-source": "http://localhost:9081/", "ce-id": ce_id, "ce-time": ce_time,
            "ce-inferenceservicename": service, "ce-namespace": "default", "ce-component": "predictor",
            "ce-endpoint": "", "ce-metadata": "{}", "content-type": "application/json"}  # fmt: skip


@dataclass
class KserveFeed(Feed):
    """One inference per batch (1 to 4 rows), as KServe's logger posts it: V1 ``instances``/``predictions``
    or V2 ``inputs``/``outputs`` tensors, the request and response halves in either order."""

    url: str = ""
    key: str = ""  # for the feedback (KServe's logger sends none: /kserve is left open)
    seed: int = 2
    published: int = 0

    def __post_init__(self) -> None:
        self.x, self.truth, self.predicted = iris_rows(self.total, self.seed)
        self.inferences = 0

    def _next(self, http: httpx.Client, limit: int) -> None:
        rows = 1 + self.inferences % 4
        stop = min(self.sent + rows, limit)
        self.send(http, self.sent, stop)
        self.sent = stop

    def send(self, http: httpx.Client, start: int, stop: int) -> None:
        k, n = self.inferences, stop - start
        self.inferences += 1
        ce_id = f"{self.name}-{k}"
        ms = _now_ms()
        ce_time = datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        x, predicted = self.x[start:stop], self.predicted[start:stop]
        if k % 2:  # V1, as KServe's sklearn-iris docs
            request: Any = {"instances": x.tolist()}
            response: Any = {"predictions": predicted.tolist()}
        else:  # Open Inference Protocol (V2): one [n, 4] tensor (row-major, flat), a [n] INT64 label tensor
            request = {"inputs": [{"name": "input-0", "shape": [n, 4], "datatype": "FP32",
                                   "data": x.ravel().tolist()}]}
            response = {"model_name": self.name, "model_version": "1", "id": ce_id,
                        "outputs": [{"name": "output-0", "shape": [n], "datatype": "INT64",
                                     "data": predicted.tolist()}]}
        halves = [("request", request), ("response", response)]
        if k % 3 == 0:
            halves.reverse()
        answers = []
        for kind, body in halves:
            answer = http.post(f"{self.url}/kserve", content=json.dumps(body),
                               headers=kserve_headers(kind, ce_id, ce_time, self.name))
            assert answer.status_code == 200, answer.text[:500]
            answers.append(answer.json())
        assert [a["status"] for a in answers] == ["waiting", "paired"], answers
        assert answers[1]["published"] == n and answers[1]["rejected"] == 0, answers
        self.published += n
        external = [ce_id] if n == 1 else [f"{ce_id}/{i}" for i in range(n)]
        self.accepted += [internal_prediction_id(e, ms) for e in external]
        labels = [{"id": e, "label": int(self.truth[start + i]), "prediction_timestamp": ce_time}
                  for i, e in enumerate(external) if (start + i) % 2 == 0]
        self.labelled += [(int(self.truth[i]), int(self.predicted[i])) for i in range(start, stop) if i % 2 == 0]
        if labels:
            _accepted(http.post(f"{self.url}/models/{self.name}/feedback", json={"labels": labels},
                                headers={API_KEY_HEADER: self.key}), len(labels), f"{self.name} feedback")


# -- (d) the built-in digits model behind `driftwatch serve --model-dir` --------------------------------
@dataclass
class DigitsFeed(Feed):
    """``POST /predict`` batches of held-out digits (row i is held-out row i mod 360: a window never
    repeats a row), ``POST /feedback`` one label at a time."""

    url: str = ""
    key: str = ""
    x: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))
    y: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))

    def send(self, http: httpx.Client, start: int, stop: int) -> None:
        pick = np.arange(start, stop) % len(self.x)
        headers = {API_KEY_HEADER: self.key}
        answer = http.post(f"{self.url}/predict", json={"instances": self.x[pick].tolist()}, headers=headers)
        assert answer.status_code == 200, answer.text[:500]
        predictions = answer.json()["predictions"]
        self.accepted += [p["prediction_id"] for p in predictions]
        for k, (p, j) in enumerate(zip(predictions, pick.tolist(), strict=True)):
            if (start + k) % 2:
                continue
            self.labelled.append((int(self.y[j]), int(p["class"])))
            fb = http.post(f"{self.url}/feedback", json={"prediction_id": p["prediction_id"], "label": int(self.y[j])},
                           headers=headers)
            assert fb.status_code in (200, 202), fb.text[:500]
