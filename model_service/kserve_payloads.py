"""The bodies KServe's inference logger forwards, as feature rows and predictions of a registered model.

The logger sends the InferenceService's request and response bodies as they
were (KServe's own tests and docs show both protocols):

- V1: ``{"instances": [[6.8, 2.8, 4.8, 1.4], ...]}`` (rows by position, or
  objects by feature name) answered by ``{"predictions": [1, 1]}`` (class
  labels, a regressor's numbers) or ``{"predictions": [[0.1, 0.9], ...]}``
  (class probabilities);
- Open Inference Protocol (V2): ``{"inputs": [{"name": "input-0", "shape": [2, 4],
  "datatype": "FP32", "data": [...]}]}`` (one (n, F) tensor, its data flat in
  row-major order or nested, or one tensor per feature named after it)
  answered by ``{"outputs": [{"name": "output-0", "shape": [2], "datatype":
  "INT64", "data": [1, 1]}]}`` (labels), and/or an (n, K) tensor of
  probabilities.

A body that cannot be read this way raises :class:`PayloadError` naming the
place (``["body", "inputs", 0, "data"]``); ``null`` features are missing
values (NaN), as on the other ingest endpoints.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from model_service.registered_models import IngestSchema

Loc = tuple[str | int, ...]
_NUMERIC = {"BOOL", "UINT8", "UINT16", "UINT32", "UINT64", "INT8", "INT16", "INT32", "INT64", "FP16", "FP32", "FP64"}


class PayloadError(ValueError):
    """A logged body Driftwatch cannot read; ``loc`` says where."""

    def __init__(self, loc: Loc, msg: str) -> None:
        super().__init__(msg)
        self.loc = ("body", *loc)
        self.msg = msg


@dataclass(frozen=True, slots=True)
class Outputs:
    """What the model answered, one entry per row."""

    classes: npt.NDArray[np.int64]  # class indexes (zeros for a regressor)
    probabilities: npt.NDArray[np.float32]  # (n, K), or (n, 0)
    values: npt.NDArray[np.float64] | None = None  # a regressor's predictions

    def __len__(self) -> int:
        return len(self.classes)


def _numbers(data: Any, loc: Loc, what: str) -> npt.NDArray[np.float64]:
    """``data`` as float64 (``null`` -> NaN); a string, an object or a ragged list is an error
    (numpy alone would read ``"1.5"`` as a number)."""
    try:
        found = np.asarray(data)
        if found.dtype.kind in "iufb":
            return found.astype(np.float64)
        if found.dtype == object and not any(isinstance(v, str | dict | list) for v in found.flat):
            return np.asarray(data, dtype=np.float64)  # None (missing) -> NaN; huge integers overflow
    except (TypeError, ValueError, OverflowError):
        pass
    raise PayloadError(loc, f"{what} must be numbers (or null), in lists of equal length")


def _rows_by_name(instances: Sequence[Any], schema: IngestSchema, loc: Loc) -> npt.NDArray[np.float64]:
    matrix = np.full((len(instances), schema.n_features), np.nan)
    for i, instance in enumerate(instances):
        if not isinstance(instance, dict):
            raise PayloadError((*loc, i), "instances must all be lists or all objects by feature name")
        for name, value in instance.items():
            column = schema.feature_index.get(name)
            if column is None:
                raise PayloadError((*loc, i, name), f"unknown feature {name!r} (model {schema.name!r})")
            matrix[i, column] = _numbers(value if value is not None else np.nan, (*loc, i, name), "features")
    return matrix


def _instances(instances: Any, schema: IngestSchema, loc: Loc) -> npt.NDArray[np.float64]:
    """V1 rows: lists of F values, objects by name, or bare values for a one-feature model."""
    if not isinstance(instances, list) or not instances:
        raise PayloadError(loc, "must be a non-empty list of instances")
    if isinstance(instances[0], dict):
        return _rows_by_name(instances, schema, loc)
    matrix = _numbers([[v] if schema.n_features == 1 and not isinstance(v, list) else v for v in instances], loc,
                      "instances")
    if matrix.ndim != 2 or matrix.shape[1] != schema.n_features:
        raise PayloadError(loc, f"each instance must hold the {schema.n_features} features of model "
                           f"{schema.name!r}, got shape {list(matrix.shape)}")
    return matrix


def _tensor(tensor: Any, loc: Loc) -> tuple[str, list[int], str, Any]:
    if not isinstance(tensor, dict):
        raise PayloadError(loc, "a tensor is an object with name, shape, datatype and data")
    name, shape, datatype, data = (tensor.get(k) for k in ("name", "shape", "datatype", "data"))
    if not isinstance(shape, list) or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0
                                              for d in shape):
        raise PayloadError((*loc, "shape"), "must be a list of non-negative integers")
    # Rows are [n] or [n, k] (features, labels, probabilities): anything else is refused here,
    # before a shape such as [2**32, 2**32] or [2**64, 0] reaches numpy (which overflows or refuses it).
    if len(shape) not in (1, 2):
        raise PayloadError((*loc, "shape"), f"must be [n] or [n, k], got {shape}"[:300])
    if not isinstance(datatype, str):
        raise PayloadError((*loc, "datatype"), "must be a string such as FP32 or INT64")
    if data is None:
        raise PayloadError((*loc, "data"), "missing (binary tensor data is not supported)")
    return str(name), shape, datatype.upper(), data


def _tensor_array(tensor: Any, loc: Loc) -> tuple[str, npt.NDArray[Any]]:
    """A V2 tensor's data in its shape: numbers as float64, BYTES as objects (labels)."""
    name, shape, datatype, data = _tensor(tensor, loc)
    if datatype == "BYTES":
        flat = np.asarray(data, dtype=object).reshape(-1)
    else:
        if datatype not in _NUMERIC:
            raise PayloadError((*loc, "datatype"), f"unsupported datatype {datatype!r}")
        flat = _numbers(data, (*loc, "data"), "tensor data").reshape(-1)
    needed = math.prod(shape)  # exact: numpy's int64 product wraps (2**32 * 2**32 reads as 0)
    if needed == 0:
        raise PayloadError((*loc, "shape"), f"holds no rows to log, its shape is {shape}"[:300])
    if flat.size != needed:
        raise PayloadError((*loc, "data"), f"holds {flat.size} values, its shape {shape} needs {needed}"[:300])
    return name, flat.reshape(shape)


def _input_tensors(inputs: Any, schema: IngestSchema) -> npt.NDArray[np.float64]:
    """V2 inputs: one (n, F) tensor, or one (n,) or (n, 1) tensor per feature, named after it."""
    if not isinstance(inputs, list) or not inputs:
        raise PayloadError(("inputs",), "must be a non-empty list of tensors")
    tensors = [_tensor_array(t, ("inputs", i)) for i, t in enumerate(inputs)]
    if all(name in schema.feature_index for name, _ in tensors) and (len(tensors) > 1 or schema.n_features == 1):
        n = len(tensors[0][1])
        matrix = np.full((n, schema.n_features), np.nan)
        for i, (name, values) in enumerate(tensors):
            if values.dtype == object or values.reshape(len(values), -1).shape != (n, 1):
                raise PayloadError(("inputs", i), f"a feature's tensor must be numbers of shape [{n}] or [{n}, 1]")
            matrix[:, schema.feature_index[name]] = values.reshape(n)
        return matrix
    if len(tensors) != 1:
        raise PayloadError(("inputs",), "expected one tensor of shape [n, F], or one tensor per feature named after it")
    _, values = tensors[0]
    if values.dtype == object:
        raise PayloadError(("inputs", 0, "datatype"), "features must be numbers, not BYTES")
    if values.ndim == 1 and schema.n_features == 1:
        values = values.reshape(-1, 1)
    if values.ndim != 2 or values.shape[1] != schema.n_features:
        raise PayloadError(("inputs", 0, "shape"), f"must be [n, {schema.n_features}] for model {schema.name!r}, "
                           f"got {list(values.shape)}")
    return values.astype(np.float64)


def request_features(body: Any, schema: IngestSchema) -> npt.NDArray[np.float64]:
    """The (n, F) features of a logged inference request (NaN for missing values)."""
    if not isinstance(body, dict):
        raise PayloadError((), "expected a JSON object: {\"instances\": [...]} or {\"inputs\": [...]}")
    if "instances" in body:
        return _instances(body["instances"], schema, ("instances",))
    inputs = body.get("inputs")
    if isinstance(inputs, list) and inputs and isinstance(inputs[0], dict) and "data" in inputs[0]:
        return _input_tensors(inputs, schema)
    if inputs is not None:  # V1's row format under "inputs"
        return _instances(inputs, schema, ("inputs",))
    raise PayloadError((), "no \"instances\" (V1) or \"inputs\" (V2) in the request")


def _labels(values: Sequence[Any], schema: IngestSchema, loc: Loc) -> npt.NDArray[np.int64]:
    classes = [schema.class_of(v) for v in values]
    for i, cls in enumerate(classes):
        if cls is None:
            shown = ", ".join(schema.metadata.class_names[:10])
            raise PayloadError((*loc, i), f"{values[i]!r} is not a class of model {schema.name!r} (classes: {shown})")
    return np.array(classes, dtype=np.int64)


def _outputs(labels: Sequence[Any] | None, probabilities: npt.NDArray[np.float64] | None, schema: IngestSchema,
             loc: Loc) -> Outputs:
    """Classes and probabilities from labels and/or probability rows, as the model is registered."""
    k = schema.probability_width
    if schema.is_regressor:
        if labels is None:
            raise PayloadError(loc, "a regressor answers one number per row")
        values = _numbers(list(labels), loc, "a regressor's predictions").reshape(-1)
        return Outputs(np.zeros(len(values), np.int64), np.zeros((len(values), 0), np.float32), values)
    if probabilities is not None:
        if probabilities.shape[1] != schema.metadata.n_classes:
            raise PayloadError(loc, f"probability rows must hold {schema.metadata.n_classes} values "
                               f"(the classes of model {schema.name!r}), got {probabilities.shape[1]}")
        if not (np.isfinite(probabilities).all() and (probabilities >= 0).all() and (probabilities <= 1).all()):
            raise PayloadError(loc, "probabilities must be finite, between 0 and 1")
    if labels is not None:
        classes = _labels(labels, schema, loc)
    elif probabilities is not None:
        classes = probabilities.argmax(axis=1).astype(np.int64)
    else:
        raise PayloadError(loc, "no predictions in the response")
    if k and probabilities is None:
        raise PayloadError(loc, f"model {schema.name!r} is registered with probabilities; the response has only "
                           "labels (register it without probabilities, or return them)")
    p = probabilities.astype(np.float32) if k and probabilities is not None else np.zeros((len(classes), 0), np.float32)
    return Outputs(classes, p)


def _v1_predictions(predictions: Any, schema: IngestSchema) -> Outputs:
    loc: Loc = ("predictions",)
    if not isinstance(predictions, list) or not predictions:
        raise PayloadError(loc, "must be a non-empty list")
    if all(isinstance(p, list) for p in predictions):
        return _outputs(None, _numbers(predictions, loc, "probability rows"), schema, loc)
    if any(isinstance(p, list | dict) for p in predictions):
        raise PayloadError(loc, "expected one label or number per row, or one probability row per row")
    return _outputs(predictions, None, schema, loc)


def _v2_outputs(outputs: Any, schema: IngestSchema) -> Outputs:
    if not isinstance(outputs, list) or not outputs:
        raise PayloadError(("outputs",), "must be a non-empty list of tensors")
    labels: list[Any] | None = None
    probabilities: npt.NDArray[np.float64] | None = None
    for i, tensor in enumerate(outputs):
        _, values = _tensor_array(tensor, ("outputs", i))
        if values.ndim == 2 and values.shape[1] > 1 and values.dtype != object:
            probabilities = values if probabilities is None else probabilities
        elif values.ndim in (1, 2) and (values.ndim == 1 or values.shape[1] == 1):
            labels = values.reshape(-1).tolist() if labels is None else labels
        else:
            raise PayloadError(("outputs", i, "shape"), f"expected [n], [n, 1] or [n, K], got {list(values.shape)}")
    return _outputs(labels, probabilities, schema, ("outputs",))


def response_outputs(body: Any, schema: IngestSchema) -> Outputs:
    """What a logged inference response says the model predicted, per row."""
    if not isinstance(body, dict):
        raise PayloadError((), "expected a JSON object: {\"predictions\": [...]} or {\"outputs\": [...]}")
    if "predictions" in body:
        return _v1_predictions(body["predictions"], schema)
    if "outputs" in body:
        return _v2_outputs(body["outputs"], schema)
    raise PayloadError((), "no \"predictions\" (V1) or \"outputs\" (V2) in the response")
