"""Turn a validated request into the float32 matrix the model takes.

Rows by position must have exactly F values; rows by name must name every
feature and nothing else. (The served model's request model already bounds
lengths and values to what float32 holds; see ``schemas.request_model_for``.)
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from model_service.schemas import PredictRequest
from model_service.serving import ModelService
from shared.http import validation_error


def _row_values(
    row: list[float] | dict[str, float], service: ModelService, loc: tuple[str | int, ...]
) -> list[float]:
    n_features = service.metadata.n_features
    if isinstance(row, list):
        if len(row) != n_features:
            raise validation_error(loc, f"expected {n_features} features, got {len(row)}")
        return row
    unknown = [name for name in row if service.feature_position(name) is None]
    if unknown:
        raise validation_error((*loc, unknown[0]), f"unknown feature {unknown[0]!r}")
    if len(row) != n_features:
        missing = [n for n in service.metadata.feature_names if n not in row]
        raise validation_error(
            loc, f"missing {len(missing)} feature(s), first: {', '.join(missing[:5])}"
        )
    return [row[name] for name in service.metadata.feature_names]


def request_matrix(request: PredictRequest, service: ModelService, max_rows: int) -> npt.NDArray[np.float32]:
    if request.features is not None:
        rows = [_row_values(request.features, service, ("features",))]
    else:
        assert request.instances is not None
        if len(request.instances) > max_rows:
            raise validation_error(("instances",), f"batch of {len(request.instances)} rows exceeds {max_rows}")
        rows = [_row_values(r, service, ("instances", i)) for i, r in enumerate(request.instances)]
    return np.asarray(rows, dtype=np.float32)
