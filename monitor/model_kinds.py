"""What the monitor tests for each kind of model, from its registered metadata and reference.

- A classifier's prediction drift is chi-squared on predicted-class counts
  against the reference's predicted classes. A reference without predicted
  classes (registered with neither a prediction nor probability columns) has
  none to compare with: the window's features are still tested, its
  predictions are not (``prediction_drift`` is left out of the report).
- A regressor's numeric prediction travels as one more float after the
  features (shared/events.py) and is tested like a feature, with KS, as a
  column named ``prediction``: the tested columns are the features plus that
  one, and the reference is the features beside the predicted values.
- Class labels of any kind (string, integer, boolean) arrive as indexes into
  ``class_names``, so the tests never see their spelling.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from shared.model_metadata import ModelMetadata, Reference

PREDICTION_COLUMN = "prediction"


def detector_metadata(metadata: ModelMetadata) -> ModelMetadata:
    """The metadata whose ``feature_names`` are the columns an event's row holds and the detector tests.

    >>> from shared.model_metadata import DataSummary
    >>> m = ModelMetadata(name="m", version="1", feature_names=["a"], class_names=[], categorical=[True],
    ...                   task="regression", data=DataSummary(source="s", sha256="0" * 64), created_at="")
    >>> detector_metadata(m).feature_names, detector_metadata(m).categorical
    (['a', 'prediction'], [True, False])
    """
    if metadata.task != "regression":
        return metadata
    return metadata.model_copy(update={
        "feature_names": [*metadata.feature_names, PREDICTION_COLUMN],
        "categorical": [*metadata.categorical, False],
    })


def detector_reference(
    metadata: ModelMetadata, reference: Reference
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.int64] | None]:
    """The reference rows the detector compares windows with, and its predicted classes (None: no
    prediction drift to test). ``metadata`` is the registered one (not :func:`detector_metadata`'s)."""
    if metadata.task == "regression":
        values = reference.predicted_values.astype(np.float32).reshape(-1, 1)
        if len(values) != len(reference.features):
            raise ValueError(f"regressor {metadata.name} {metadata.version}: {len(values)} reference predictions "
                             f"for {len(reference.features)} reference rows")
        return np.hstack([reference.features, values]), None
    classes = reference.predicted_classes
    return reference.features, classes if classes.size and metadata.n_classes else None
