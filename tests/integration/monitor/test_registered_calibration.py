"""The label-free estimate's calibration from a registered reference: only rows with a true label count."""

from __future__ import annotations

import dataclasses

import numpy as np
import redis.asyncio as aioredis

from monitor.calibrations import NO_REFERENCE_LABELS, CalibrationCatalog
from monitor.estimate import AccuracyEstimator
from shared.keys import Keys
from shared.registry import register_model
from tests.integration.monitor.helpers import small_model


async def test_rows_without_a_label_are_left_out_of_the_fit(aredis: aioredis.Redis) -> None:
    metadata, reference = small_model("gaps", "1")
    labels = reference.labels.copy()
    labels[::3] = -1  # no true label for these rows (a label column with gaps)
    await register_model(aredis, Keys("gaps"), metadata, dataclasses.replace(reference, labels=labels))
    fitted = await CalibrationCatalog(aredis, Keys("gaps")).get("1")
    keep = labels >= 0
    probs = reference.probabilities[keep]
    expected = AccuracyEstimator.fit(probs.max(axis=1), probs.argmax(axis=1) == labels[keep])
    assert fitted == expected and fitted.reference_size == int(keep.sum())


async def test_a_reference_without_labels_has_no_estimate_and_says_why(aredis: aioredis.Redis) -> None:
    metadata, reference = small_model("unlabelled", "1")
    await register_model(aredis, Keys("unlabelled"), metadata,
                         dataclasses.replace(reference, labels=np.zeros(0, np.int64)))
    calibrations = CalibrationCatalog(aredis, Keys("unlabelled"))
    assert await calibrations.get("1") is None
    assert calibrations.unavailable("1") == NO_REFERENCE_LABELS
