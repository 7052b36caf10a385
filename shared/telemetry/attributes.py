"""Attribute keys carried by Driftwatch metrics.

Kept in one module so a dashboard, an alert rule and the code that records a
value cannot disagree on a label's spelling. Every attribute here has a bounded
set of values (model names, feature names, class labels, fixed reasons):
prediction ids, timestamps or raw values never become attributes, because
each distinct attribute set is a separate time series in Prometheus.

Prometheus renders the dots as underscores (``model.version`` -> ``model_version``).
"""

from __future__ import annotations

from typing import Final

MODEL: Final = "model"
"""Model name (``DRIFTWATCH_MODEL_NAME``), e.g. ``digits-mlp``."""

MODEL_VERSION: Final = "model.version"
"""Version of the model that served the prediction or that a report refers to."""

FEATURE: Final = "feature"
"""Feature (input column) name from the model's metadata."""

TEST: Final = "test"
"""Statistical test behind a drift value, e.g. ``ks`` or ``chi2``."""

EFFECT_SIZE_KIND: Final = "effect_size.kind"
"""What an effect size measures, e.g. ``wasserstein`` or ``psi``."""

PREDICTION_CLASS: Final = "class"
"""Predicted class index (as a string); bounded by the model's class count."""

STREAM: Final = "stream"
"""Event stream: ``predictions`` or ``feedback``."""

SOURCE: Final = "source"
"""Ingest endpoint a row came through: ``predictions``, ``feedback`` or ``kserve``."""

OUTCOME: Final = "outcome"
"""What became of an ingested row: ``accepted`` or ``rejected``."""

REASON: Final = "reason"
"""Why events were dropped, e.g. ``queue_full`` or ``redis_error``."""

TASK: Final = "task"
"""A supervised background task, e.g. ``monitor-worker`` or ``event-publisher``."""

ERROR_TYPE: Final = "error.type"
"""Class name of the exception that ended a run (semantic conventions' ``error.type``)."""

CPU_MODE: Final = "cpu.mode"
"""CPU mode of ``process.cpu.time`` (``user``, ``system``), as the semantic conventions name it."""
