"""Confidence calibrations per model version, fitted once from the registered reference.

A model that gives no probabilities (K = 0, see CONTRACTS.md) has no
confidence to calibrate: its versions get no estimator, and
:meth:`CalibrationCatalog.unavailable` says why, so the performance report
can say "unavailable: no probabilities" instead of leaving the reader to guess.
"""

from __future__ import annotations

import redis.asyncio as aioredis

from monitor.estimate import NO_PROBABILITIES, AccuracyEstimator
from shared.keys import Keys
from shared.registry import read_registered_model


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
            _, reference = registered
            if reference.probabilities.ndim != 2 or reference.probabilities.shape[1] == 0:
                self._unavailable[version] = NO_PROBABILITIES
                return None
            correct = reference.probabilities.argmax(axis=1) == reference.labels
            self._fitted[version] = AccuracyEstimator.fit(reference.probabilities.max(axis=1), correct)
        return self._fitted.get(version)

    def unavailable(self, version: str) -> str | None:
        """Why the version has no label-free estimate (after :meth:`get`), or None."""
        return self._unavailable.get(version)
