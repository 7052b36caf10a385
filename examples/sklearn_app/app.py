"""A scikit-learn model served by FastAPI, every prediction logged to Driftwatch.

    DRIFTWATCH_URL=http://localhost:8000 uvicorn app:app --port 8080

The model is trained at start-up on scikit-learn's bundled breast-cancer
data (``model.py``). Each ``POST /predict`` answers from the model, then
hands the rows to ``driftwatch.Client.log``, which returns at once: the
rows reach Driftwatch from a background thread, so a slow or absent
monitoring stack never slows the answer (``GET /stats`` shows the client's
counters). ``POST /feedback`` passes true labels on when they are known.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import numpy as np
from fastapi import FastAPI
from pydantic import BaseModel, Field

from driftwatch import Client

try:
    from . import model as example  # run as a package (python -m uvicorn examples.sklearn_app.app:app)
except ImportError:  # run from this folder (uvicorn app:app)
    import model as example  # type: ignore[no-redef]

X, Y, FEATURES, CLASSES = example.load()
state: dict[str, Any] = {}


@asynccontextmanager
async def lifespan(_: FastAPI) -> AsyncIterator[None]:
    state["model"] = example.train(X, Y)
    state["client"] = Client(os.environ.get("DRIFTWATCH_URL", "http://localhost:8000"),
                             api_key=os.environ.get("DRIFTWATCH_API_KEY"))
    yield
    state["client"].close(timeout=10)


app = FastAPI(title="breast-cancer classifier (a Driftwatch example)", lifespan=lifespan)


class Rows(BaseModel):
    """Rows by feature name; a feature left out or null is missing (the model takes NaN)."""

    rows: list[dict[str, float | None]] = Field(min_length=1, max_length=1000)


class Label(BaseModel):
    id: str
    label: str


@app.post("/predict")
def predict(body: Rows) -> dict[str, Any]:
    x = np.array([[np.nan if r.get(f) is None else r[f] for f in FEATURES] for r in body.rows])
    probabilities = state["model"].predict_proba(x)
    predicted = np.array(CLASSES)[probabilities.argmax(axis=1)]
    ids = state["client"].log(example.NAME, x, predicted, probabilities=probabilities)
    return {"predictions": [{"id": i, "class": c, "probabilities": p}
                            for i, c, p in zip(ids, predicted.tolist(), probabilities.tolist(), strict=True)]}


@app.post("/feedback")
def feedback(labels: list[Label]) -> dict[str, int]:
    queued = state["client"].feedback(example.NAME, [lab.id for lab in labels], [lab.label for lab in labels])
    return {"queued": queued}


@app.get("/stats")
def stats() -> dict[str, Any]:
    s = state["client"].stats
    return {"logged": s.logged_rows, "sent": s.sent_rows, "rejected": s.rejected_rows, "dropped": s.dropped_rows,
            "retries": s.retries, "failures": s.failures}
