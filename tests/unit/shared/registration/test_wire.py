"""What ``driftwatch register --monitor-url`` sends rebuilds, on the monitor, the registration it built locally."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from shared.model_metadata import ModelMetadata, Reference
from shared.registration import ReferenceBuilder, RegistrationError, RegistrationSpec
from shared.registration.spec import MAX_SAMPLE_ROWS
from shared.registration.wire import (
    json_body,
    parquet_body,
    read_json_body,
    read_parquet_body,
    upload_columns,
    upload_spec,
)


def built(spec: RegistrationSpec, columns: dict[str, np.ndarray]) -> tuple[ModelMetadata, Reference]:
    builder = ReferenceBuilder(spec)
    builder.add(columns)
    return builder.finish("m", "1", created_at="2026-01-01T00:00:00+00:00")


def rebuilt(body: bytes, parquet: bool) -> tuple[ModelMetadata, Reference]:
    spec, columns = (read_parquet_body if parquet else read_json_body)(body, MAX_SAMPLE_ROWS)
    return built(spec, columns)


def same(a: tuple[ModelMetadata, Reference], b: tuple[ModelMetadata, Reference]) -> None:
    assert a[0] == b[0]
    for field in dataclasses.fields(Reference):
        np.testing.assert_array_equal(getattr(a[1], field.name), getattr(b[1], field.name), err_msg=field.name)


def data(n: int = 5_000) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    x = rng.normal(size=n)
    x[::7] = np.nan
    probs = rng.dirichlet([1, 1], n)
    return {"x": x, "k": rng.integers(0, 3, n).astype(float), "pred": np.where(probs[:, 1] > 0.5, "True", "False"),
            "p0": probs[:, 0], "p1": probs[:, 1], "y": np.where(rng.random(n) < 0.5, "", "true")}


@pytest.mark.parametrize("parquet", [False, True])
def test_the_sample_and_its_whole_file_summaries_survive_the_trip(parquet: bool) -> None:
    spec = RegistrationSpec(feature_names=["x", "k"], prediction_column="pred", probability_columns=["p0", "p1"],
                            label_column="y", sample_rows=800)
    local = built(spec, data())
    sent = upload_spec(*local, spec)
    columns = upload_columns(*local, sent)
    body = parquet_body(sent, columns) if parquet else json_body(sent, columns)
    same(rebuilt(body, parquet), local)
    assert local[0].reference_summary is not None and local[0].reference_summary.rows == 5_000


@pytest.mark.parametrize("parquet", [False, True])
def test_probabilities_computed_locally_travel_as_columns(parquet: bool) -> None:
    """``--keras`` computes probabilities the file did not have: they are sent, so the monitor's model matches."""
    spec = RegistrationSpec(feature_names=["x", "k"], class_names=["a", "b"], sample_rows=100)
    metadata, reference = built(spec, {"x": np.arange(100.0), "k": np.ones(100)})
    probs = np.tile(np.array([[0.25, 0.75]], np.float32), (100, 1))
    local = (metadata.model_copy(update={"has_probabilities": True}),
             dataclasses.replace(reference, probabilities=probs, predicted_classes=np.ones(100, np.int64)))
    sent = upload_spec(*local, spec)
    assert sent.probability_columns == ["probability:a", "probability:b"]
    columns = upload_columns(*local, sent)
    body = parquet_body(sent, columns) if parquet else json_body(sent, columns)
    same(rebuilt(body, parquet), local)


def test_a_regressor_survives_the_trip() -> None:
    spec = RegistrationSpec(feature_names=["x"], prediction_column="price", task="regression")
    local = built(spec, {"x": np.arange(50.0), "price": np.linspace(0, 1, 50)})
    sent = upload_spec(*local, spec)
    same(rebuilt(json_body(sent, upload_columns(*local, sent)), False), local)


def test_bodies_that_are_not_registrations_name_the_part() -> None:
    with pytest.raises(RegistrationError) as refused:
        read_json_body(b'{"metadata": {"feature_names": ["x"]}}', 10)
    assert refused.value.loc == ("reference",)
    with pytest.raises(RegistrationError, match="not a Parquet file"):
        read_parquet_body(b"PAR1 nope", 10)
    with pytest.raises(RegistrationError, match="invalid JSON"):
        read_json_body(b"{", 10)
