"""Confidence calibrations per model version, fitted once from the registered reference.

A model that gives no probabilities (K = 0, see CONTRACTS.md) has no
confidence to calibrate: its versions get no estimator, and
:meth:`CalibrationCatalog.unavailable` says why, so the performance report
can say "unavailable: no probabilities" instead of leaving the reader to guess.
Agreement (:mod:`monitor.agreement`) needs no probabilities, only the served
classes and the labelled reference rows' features: a classifier that has them
still gets an estimate on its count and time windows, and the reason names
each method (:data:`AGREEMENT_ONLY`, :data:`NEITHER_METHOD`).

The fit uses the reference rows that carry a true label: a registered
reference marks a row without one as -1 (``driftwatch register`` with a
label column that has gaps) and has no labels at all without a label
column; with no labelled row there is nothing to fit either.
"""

from __future__ import annotations

import numpy as np
import redis.asyncio as aioredis

from monitor import agreement
from monitor.estimate import NO_PROBABILITIES, AccuracyEstimator
from shared.keys import Keys
from shared.model_metadata import Reference
from shared.registry import read_registered_model

NO_REFERENCE_LABELS = "unavailable: the reference has no true labels"
AGREEMENT_ONLY = "doc unavailable: no probabilities; agreement estimates count and time windows, not sliding ones"
"""A classifier without probabilities whose reference gives the agreement surrogate."""
NEITHER_METHOD = "unavailable: no probabilities (doc), no labelled reference rows with features (agreement)"
"""A classifier without probabilities whose reference gives no surrogate either."""


class CalibrationCatalog:
    def __init__(self, client: aioredis.Redis, keys: Keys) -> None:
        self.client = client
        self.keys = keys
        self._fitted: dict[str, AccuracyEstimator] = {}
        self._unavailable: dict[str, str] = {}

    async def get(self, version: str) -> AccuracyEstimator | None:
        """The version's estimator; None while it is not registered or when it has no probabilities."""
        if version not in self._fitted and version not in self._unavailable:
            registered = await read_registered_model(self.client, self.keys, version)
            if registered is None:
                return None
            metadata, reference = registered
            if reference.probabilities.ndim != 2 or reference.probabilities.shape[1] == 0:
                self._unavailable[version] = without_probabilities(metadata.n_classes, reference)
                return None
            probabilities, labels = reference.probabilities, reference.labels
            labelled = labels >= 0 if labels.shape == (len(probabilities),) else np.zeros(len(probabilities), bool)
            if not labelled.any():
                self._unavailable[version] = NO_REFERENCE_LABELS
                return None
            correct = probabilities[labelled].argmax(axis=1) == labels[labelled]
            self._fitted[version] = AccuracyEstimator.fit(probabilities[labelled].max(axis=1), correct)
        return self._fitted.get(version)

    def unavailable(self, version: str) -> str | None:
        """Why the version has no label-free estimate (after :meth:`get`), or None."""
        return self._unavailable.get(version)


def without_probabilities(n_classes: int, reference: Reference) -> str:
    """What a version without probabilities gets: no DoC, and agreement where its reference gives
    the surrogate; a regressor (no classes) no accuracy estimate at all, as the words have said."""
    if n_classes == 0:
        return NO_PROBABILITIES
    return AGREEMENT_ONLY if agreement.applies(reference, n_classes) else NEITHER_METHOD
