"""Confidence calibrations per model version, fitted once from the registered reference."""

from __future__ import annotations

import redis.asyncio as aioredis

from monitor.estimate import AccuracyEstimator
from shared.keys import Keys
from shared.registry import read_registered_model


class CalibrationCatalog:
    def __init__(self, client: aioredis.Redis, keys: Keys) -> None:
        self.client = client
        self.keys = keys
        self._fitted: dict[str, AccuracyEstimator] = {}

    async def get(self, version: str) -> AccuracyEstimator | None:
        if version not in self._fitted:
            registered = await read_registered_model(self.client, self.keys, version)
            if registered is None:
                return None
            _, reference = registered
            correct = reference.probabilities.argmax(axis=1) == reference.labels
            self._fitted[version] = AccuracyEstimator.fit(reference.probabilities.max(axis=1), correct)
        return self._fitted[version]
