"""Reading reference files: pyarrow's CSV reader, the standard library's, and Parquet agree exactly."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import driftwatch.registration.files as files
from driftwatch.registration.build import build_from_file, default_features
from shared.registration import RegistrationError, RegistrationSpec


def _write(tmp_path: Path, n: int = 2_500) -> tuple[Path, Path]:
    rng = np.random.default_rng(1)
    x = rng.normal(size=(n, 3)).round(4)
    y = rng.integers(0, 2, n)
    cells = [[f"{v:g}" for v in row] for row in x]
    for i in range(0, n, 97):
        cells[i][1] = ["", "NA", "null"][i % 3]  # missing, spelled three ways
        x[i, 1] = np.nan
    csv_path = tmp_path / "ref.csv"
    csv_path.write_text("a,b,c,y\n" + "".join(",".join([*row, str(t)]) + "\n" for row, t in zip(cells, y, strict=True)))
    parquet_path = tmp_path / "ref.parquet"
    pq.write_table(pa.table({"a": x[:, 0], "b": x[:, 1], "c": x[:, 2], "y": y}), parquet_path)
    return csv_path, parquet_path


def test_every_reader_gives_the_same_registration(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    csv_path, parquet_path = _write(tmp_path)
    spec = RegistrationSpec(feature_names=default_features(csv_path, ["y"]), prediction_column="y", sample_rows=300)
    assert spec.feature_names == ["a", "b", "c"]
    arrow_csv = build_from_file(csv_path, spec, "m", "1", chunk_rows=400)
    parquet = build_from_file(parquet_path, spec, "m", "1", chunk_rows=1_000)
    monkeypatch.setattr(files, "has_pyarrow", lambda: False)
    stdlib_csv = build_from_file(csv_path, spec, "m", "1", chunk_rows=333)
    for other in (parquet, stdlib_csv):
        assert other.metadata.model_copy(update={"created_at": ""}) == arrow_csv.metadata.model_copy(
            update={"created_at": ""})
        np.testing.assert_array_equal(other.reference.features, arrow_csv.reference.features)
        np.testing.assert_array_equal(other.reference.predicted_classes, arrow_csv.reference.predicted_classes)
    summary = arrow_csv.metadata.reference_summary
    assert summary is not None and summary.features[1].missing == len(range(0, 2_500, 97))


def test_parquet_without_pyarrow_says_how_to_get_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _, parquet_path = _write(tmp_path, 10)
    monkeypatch.setattr(files, "has_pyarrow", lambda: False)
    with pytest.raises(RegistrationError, match=r"driftwatch\[register\]"):
        files.column_names(parquet_path)


def test_a_ragged_csv_line_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "ragged.csv"
    path.write_text("a,y\n1,0\n2,1,9\n")
    monkeypatch.setattr(files, "has_pyarrow", lambda: False)
    spec = RegistrationSpec(feature_names=["a"], prediction_column="y")
    with pytest.raises(RegistrationError, match="line 3: 3 fields, the header has 2"):
        build_from_file(path, spec, "m", "1")
