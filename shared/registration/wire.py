"""The body of ``PUT /models/{name}/versions/{version}``, both ways.

A body is a spec (:class:`RegistrationSpec`: which columns are features,
prediction, probabilities and label) and the reference as named columns:

- ``application/json``: ``{"metadata": {spec}, "reference": {"age": [..], "pred": [..]}}``,
  numbers as JSON numbers (``null`` = missing), class labels as strings,
  integers or booleans;
- ``application/vnd.apache.parquet``: a Parquet file of those columns whose
  key-value metadata ``driftwatch`` holds the spec JSON (needs pyarrow on both sides).

``driftwatch register --monitor-url`` sends the sample it drew, not the file,
with everything it decided over the whole file made explicit in the spec
(class names, label kind, categorical features, the content hash, the exact
summaries), so the monitor rebuilds the same metadata and reference sample.
"""

from __future__ import annotations

import io
from typing import Any

import numpy as np
import orjson
from pydantic import ValidationError

from shared.model_metadata import ModelMetadata, Reference
from shared.registration.arrow import chunk_from_arrow
from shared.registration.errors import RegistrationError
from shared.registration.spec import RegistrationSpec

JSON = "application/json"
PARQUET = "application/vnd.apache.parquet"
PARQUET_SPEC_KEY = b"driftwatch"


class SpecInvalid(Exception):
    """The spec part of a body failed validation: ``errors`` as pydantic gives them, ``loc`` prefix included."""

    def __init__(self, errors: list[dict[str, Any]]) -> None:
        self.errors = errors
        super().__init__(f"{len(errors)} errors in the registration's metadata")


# -- writing (the CLI) -----------------------------------------------------
def upload_spec(metadata: ModelMetadata, reference: Reference, declared: RegistrationSpec) -> RegistrationSpec:
    """The user's spec with every whole-file decision made explicit."""
    classifier = metadata.task == "classification"
    probability_columns = declared.probability_columns
    if reference.probabilities.shape[1] and not probability_columns:  # computed here (driftwatch register --keras)
        taken = set(declared.columns)
        probability_columns = [f"probability:{c}" for c in metadata.class_names]
        if taken & set(probability_columns):
            raise ValueError(f"a column is named like a probability column: {sorted(taken & set(probability_columns))}")
    return declared.model_copy(
        update={
            "probability_columns": probability_columns,
            "class_names": metadata.class_names if classifier else None,
            "label_kind": metadata.label_kind if classifier else None,
            "categorical": [n for n, c in zip(metadata.feature_names, metadata.categorical, strict=True) if c],
            "sample_rows": max(1, len(reference.features)),
            "sha256": metadata.data.sha256,
            "reference_summary": metadata.reference_summary,
        }
    )


def upload_columns(metadata: ModelMetadata, reference: Reference, spec: RegistrationSpec) -> dict[str, np.ndarray]:
    """The sample as named columns: floats (NaN = missing), class labels as their text (None = missing)."""
    columns: dict[str, np.ndarray] = {
        name: np.ascontiguousarray(reference.features[:, j]) for j, name in enumerate(spec.feature_names)
    }
    names = np.array([*metadata.class_names, None], dtype=object)  # index -1: missing
    if spec.prediction_column is not None:
        columns[spec.prediction_column] = (
            reference.predicted_values if spec.task == "regression" else names[reference.predicted_classes]
        )
    for k, name in enumerate(spec.probability_columns):
        columns[name] = np.ascontiguousarray(reference.probabilities[:, k])
    if spec.label_column is not None:
        columns[spec.label_column] = names[reference.labels]
    return columns


def json_body(spec: RegistrationSpec, columns: dict[str, np.ndarray]) -> bytes:
    plain = {k: v.tolist() if v.dtype == object else v for k, v in columns.items()}
    return orjson.dumps(
        {"metadata": spec.model_dump(mode="json", exclude_none=True), "reference": plain},
        option=orjson.OPT_SERIALIZE_NUMPY,  # NaN is written as null: missing
    )


def parquet_body(spec: RegistrationSpec, columns: dict[str, np.ndarray]) -> bytes:
    import pyarrow as pa
    import pyarrow.parquet as pq

    arrays = {k: pa.array(v.tolist() if v.dtype == object else v) for k, v in columns.items()}
    table = pa.table(arrays).replace_schema_metadata({PARQUET_SPEC_KEY: spec.model_dump_json(exclude_none=True)})
    buffer = io.BytesIO()
    pq.write_table(table, buffer, compression="zstd")
    return buffer.getvalue()


# -- reading (the monitor) ---------------------------------------------------
def reads_parquet() -> bool:
    """Whether this process can read a Parquet body (pyarrow installed: the ``register`` extra)."""
    try:
        import pyarrow.parquet  # noqa: F401
    except ImportError:
        return False
    return True


def _spec(raw: object, loc: tuple[str, ...]) -> RegistrationSpec:
    try:
        return RegistrationSpec.model_validate(raw)
    except ValidationError as exc:
        raise SpecInvalid(
            [{**e, "loc": (*loc, *e["loc"])} for e in exc.errors(include_url=False, include_context=False)]
        ) from None


def read_json_body(body: bytes, max_rows: int) -> tuple[RegistrationSpec, dict[str, Any]]:
    """The spec and the reference columns (lists; the builder checks their values)."""
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise RegistrationError((), f"invalid JSON: {exc}") from None
    if not isinstance(document, dict):
        raise RegistrationError((), "expected an object with 'metadata' and 'reference'")
    for part in ("metadata", "reference"):
        if part not in document:
            raise RegistrationError((part,), "field required")
    spec = _spec(document["metadata"], ("metadata",))
    reference = document["reference"]
    if not isinstance(reference, dict):
        raise RegistrationError(("reference",), "expected an object of columns: {name: [values]}")
    for name, values in reference.items():
        if not isinstance(values, list):
            raise RegistrationError(("reference", name), "expected a list of values")
        if len(values) > max_rows:
            raise RegistrationError(("reference", name), _too_many(len(values), max_rows))
    return spec, reference


def read_parquet_body(body: bytes, max_rows: int) -> tuple[RegistrationSpec, dict[str, np.ndarray]]:
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        raise RegistrationError((), "this monitor reads no Parquet (pyarrow missing): send JSON") from None
    try:
        parquet = pq.ParquetFile(io.BytesIO(body))
    except (pa.ArrowInvalid, OSError) as exc:
        raise RegistrationError((), f"not a Parquet file: {str(exc)[:200]}") from None
    raw_spec = (parquet.schema_arrow.metadata or {}).get(PARQUET_SPEC_KEY)
    if raw_spec is None:
        raise RegistrationError(("metadata",), f"the Parquet file's key-value metadata has no {PARQUET_SPEC_KEY!r}")
    try:
        spec_document = orjson.loads(raw_spec)
    except orjson.JSONDecodeError as exc:
        raise RegistrationError(("metadata",), f"invalid JSON: {exc}") from None
    spec = _spec(spec_document, ("metadata",))
    rows = parquet.metadata.num_rows
    if rows > max_rows:
        raise RegistrationError(("reference",), _too_many(rows, max_rows))
    present = set(parquet.schema_arrow.names)
    missing = [c for c in spec.columns if c not in present]
    if missing:
        raise RegistrationError(("reference", missing[0]), "no such column in the Parquet file")
    return spec, chunk_from_arrow(parquet.read(columns=spec.columns), spec)


def _too_many(rows: int, max_rows: int) -> str:
    return (
        f"{rows} rows; a request takes at most {max_rows}: send a sample with the whole file's summaries "
        "(driftwatch register does)"
    )
