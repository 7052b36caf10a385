"""The reference builder: exact summaries of the whole reference, a bounded seeded sample, labels of every kind."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from shared.registration import ReferenceBuilder, RegistrationError, RegistrationSpec
from shared.registration.builder import QUANTILE_LEVELS


def _chunks(columns: dict[str, np.ndarray], size: int) -> list[dict[str, np.ndarray]]:
    n = len(next(iter(columns.values())))
    return [{k: v[i : i + size] for k, v in columns.items()} for i in range(0, n, size)]


def _build(spec: RegistrationSpec, columns: dict[str, np.ndarray], chunk: int = 1_000, spill: Path | None = None):
    builder = ReferenceBuilder(spec, spill_dir=spill)
    for part in _chunks(columns, chunk):
        builder.add(part)
    return builder.finish("m", "1", created_at="2026-01-01T00:00:00+00:00")


def _data(n: int, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    age = rng.normal(40, 12, n)
    age[rng.random(n) < 0.05] = np.nan  # missing values
    probs = rng.dirichlet([1, 1, 1], n)
    return {
        "age": age,
        "income": rng.lognormal(10, 1, n),
        "colour": rng.integers(0, 4, n).astype(np.float64),
        "pred": np.array(["cat", "dog", "eel"])[probs.argmax(axis=1)],
        "p_cat": probs[:, 0], "p_dog": probs[:, 1], "p_eel": probs[:, 2],
        "truth": np.where(rng.random(n) < 0.3, "", np.array(["cat", "dog", "eel"])[rng.integers(0, 3, n)]),
    }


SPEC = RegistrationSpec(
    feature_names=["age", "income", "colour"], prediction_column="pred",
    probability_columns=["p_cat", "p_dog", "p_eel"], label_column="truth", sample_rows=500,
)


def test_summaries_are_exact_over_the_whole_reference_not_the_sample(tmp_path: Path) -> None:
    data = _data(20_000)
    metadata, reference = _build(SPEC, data, chunk=3_001, spill=tmp_path)
    summary = metadata.reference_summary
    assert summary is not None and summary.rows == 20_000 and summary.sample_rows == 500
    for feature in summary.features:
        values = data[feature.name].astype(np.float32)  # events carry float32: summaries are of those values
        present = values[~np.isnan(values)]
        assert feature.count == present.size and feature.missing == values.size - present.size
        assert feature.min == float(present.min()) and feature.max == float(present.max())
        np.testing.assert_array_equal(feature.quantiles, np.quantile(present.astype(np.float64), QUANTILE_LEVELS))
        assert feature.mean == pytest.approx(float(present.astype(np.float64).mean()), rel=1e-12)
    assert len(list(tmp_path.iterdir())) == 3  # one spill file per feature column
    assert reference.features.shape == (500, 3) and reference.probabilities.shape == (500, 3)
    np.testing.assert_array_equal(reference.labelled_features, reference.features)  # one sample: the same rows
    assert metadata.class_names == ["cat", "dog", "eel"] and metadata.label_kind == "string"
    assert metadata.categorical == [False, False, True]  # 4 integer levels: chi-squared, as the trainer decides
    assert metadata.training is None and metadata.has_probabilities


def test_the_sample_is_uniform_seeded_and_the_same_in_any_chunking() -> None:
    data = _data(30_000)
    data["row"] = np.arange(30_000, dtype=np.float64)
    spec = SPEC.model_copy(update={"feature_names": [*SPEC.feature_names, "row"]})
    _, small_chunks = _build(spec, data, chunk=777)
    _, one_chunk = _build(spec, data, chunk=30_000)
    np.testing.assert_array_equal(small_chunks.features, one_chunk.features)
    rows = small_chunks.features[:, 3].astype(np.int64)
    assert len(np.unique(rows)) == 500 and (np.diff(rows) > 0).all()  # without replacement, in file order
    # Uniform: the rows kept spread over the file like a uniform sample (KS against the uniform law).
    from scipy import stats
    assert stats.kstest(rows / 30_000, "uniform").pvalue > 0.01
    _, other_seed = _build(spec.model_copy(update={"sample_seed": 1}), data)
    assert not np.array_equal(other_seed.features, small_chunks.features)
    # The aligned columns stay aligned: each kept row's prediction is its own.
    index = {"cat": 0, "dog": 1, "eel": 2}
    expected = np.array([index[p] for p in data["pred"][rows]])
    np.testing.assert_array_equal(small_chunks.predicted_classes, expected)
    np.testing.assert_array_equal(small_chunks.probabilities[:, 0], data["p_cat"][rows].astype(np.float32))
    truth = data["truth"][rows]
    np.testing.assert_array_equal(small_chunks.labels, [index.get(t, -1) for t in truth])  # -1: no label


def test_the_content_hash_is_the_datas_not_the_chunkings() -> None:
    data = _data(5_000)
    a, _ = _build(SPEC, data, chunk=333)
    b, _ = _build(SPEC, data, chunk=5_000)
    assert a.data.sha256 == b.data.sha256
    data["age"][17] += 1
    c, _ = _build(SPEC, data, chunk=5_000)
    assert c.data.sha256 != a.data.sha256


@pytest.mark.parametrize(
    ("labels", "kind", "classes"),
    [
        (np.array(["1", "0", "10", "2.0"]), "integer", ["0", "1", "2", "10"]),
        (np.array([3, 1, 2, 1]), "integer", ["1", "2", "3"]),
        (np.array(["True", "false", "TRUE", "False"]), "boolean", ["false", "true"]),
        (np.array([True, False, True, True]), "boolean", ["false", "true"]),
        (np.array(["yes", "no", "1", "no"]), "string", ["1", "no", "yes"]),
    ],
)
def test_label_kinds_and_class_order(labels: np.ndarray, kind: str, classes: list[str]) -> None:
    spec = RegistrationSpec(feature_names=["x"], prediction_column="y")
    metadata, reference = _build(spec, {"x": np.arange(len(labels), dtype=float), "y": labels})
    assert (metadata.label_kind, metadata.class_names) == (kind, classes)
    assert [metadata.class_names[c] for c in reference.predicted_classes] == [
        str(v).lower() if kind == "boolean" else str(int(float(v))) if kind == "integer" else str(v) for v in labels
    ]


def test_declared_class_names_fix_the_order_and_refuse_other_labels() -> None:
    spec = RegistrationSpec(feature_names=["x"], prediction_column="y", class_names=["no", "yes", "maybe"])
    metadata, reference = _build(spec, {"x": np.zeros(3), "y": np.array(["yes", "no", "yes"])})
    assert metadata.class_names == ["no", "yes", "maybe"] and reference.predicted_classes.tolist() == [1, 0, 1]
    with pytest.raises(RegistrationError) as refused:
        _build(spec, {"x": np.zeros(3), "y": np.array(["yes", "nope", "yes"])})
    assert refused.value.loc == ("reference", "y") and "'nope' is not one of class_names" in refused.value.msg


def test_a_label_outside_the_sample_is_still_checked_against_class_names() -> None:
    n = 5_000
    y = np.full(n, "no", dtype="<U10")
    y[4_321] = "perhaps"
    spec = RegistrationSpec(feature_names=["x"], prediction_column="y", class_names=["no", "yes"], sample_rows=10)
    with pytest.raises(RegistrationError, match="'perhaps' is not one of class_names"):
        _build(spec, {"x": np.zeros(n), "y": y})


def test_a_regressor_keeps_its_numeric_predictions_and_their_summary() -> None:
    rng = np.random.default_rng(3)
    x, pred = rng.normal(size=2_000), rng.normal(5, 2, 2_000)
    spec = RegistrationSpec(feature_names=["x"], prediction_column="price", task="regression", sample_rows=100)
    metadata, reference = _build(spec, {"x": x, "price": pred})
    assert metadata.task == "regression" and metadata.class_names == [] and not metadata.has_probabilities
    assert reference.predicted_values.shape == (100,) and reference.predicted_classes.size == 0
    assert reference.probabilities.shape == (100, 0)
    summary = metadata.reference_summary
    assert summary is not None and summary.prediction is not None
    assert summary.prediction.max == float(pred.astype(np.float32).max())


def test_a_model_without_predictions_takes_its_most_probable_class() -> None:
    probs = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4]])
    spec = RegistrationSpec(feature_names=["x"], probability_columns=["p0", "p1"], class_names=["0", "1"])
    _, reference = _build(spec, {"x": np.zeros(3), "p0": probs[:, 0], "p1": probs[:, 1]})
    assert reference.predicted_classes.tolist() == [0, 1, 0]


def test_a_classifier_without_probabilities() -> None:
    spec = RegistrationSpec(feature_names=["x"], prediction_column="y")
    metadata, reference = _build(spec, {"x": np.zeros(4), "y": np.array([1, 0, 1, 1])})
    assert not metadata.has_probabilities and reference.probabilities.shape == (4, 0)
    assert reference.labels.size == 0  # no label column
    assert reference.labelled_features.size == 0


@pytest.mark.parametrize(
    ("columns", "loc", "message"),
    [
        ({"x": np.array([1.0, np.inf]), "y": np.array(["a", "b"])}, ("reference", "x", 1), "not a finite float32"),
        ({"x": np.array([1.0, 1e39]), "y": np.array(["a", "b"])}, ("reference", "x", 1), "not a finite float32"),
        ({"x": np.array(["1", "abc"], dtype=object), "y": np.array(["a", "b"])}, ("reference", "x", 1),
         "'abc' is not a number"),
        ({"x": np.array([1.0, 2.0]), "y": np.array(["a", ""])}, ("reference", "y", 1), "every row needs a prediction"),
        ({"x": np.array([1.0, 2.0])}, ("reference", "y"), "no such column"),
        ({"x": np.array([1.0, 2.0]), "y": np.array(["a"])}, ("reference", "y"), "lengths differ"),
    ],
)
def test_bad_reference_values_are_named_by_column_and_row(
    columns: dict[str, np.ndarray], loc: tuple[object, ...], message: str
) -> None:
    with pytest.raises(RegistrationError) as refused:
        _build(RegistrationSpec(feature_names=["x"], prediction_column="y"), columns)
    assert refused.value.loc == loc and message in refused.value.msg


def test_probabilities_must_be_probabilities_and_match_the_classes() -> None:
    spec = RegistrationSpec(feature_names=["x"], prediction_column="y", probability_columns=["p0", "p1"])
    with pytest.raises(RegistrationError) as refused:
        _build(spec, {"x": np.zeros(2), "y": np.array(["a", "b"]), "p0": np.array([0.5, 1.5]),
                      "p1": np.array([0.5, 0.5])})
    assert refused.value.loc == ("reference", "p0", 1)
    with pytest.raises(RegistrationError, match="2 probability columns but 3 classes seen"):
        _build(spec, {"x": np.zeros(3), "y": np.array(["a", "b", "c"]), "p0": np.full(3, 0.5),
                      "p1": np.full(3, 0.5)})


def test_categorical_declared_by_name() -> None:
    spec = RegistrationSpec(feature_names=["a", "b"], prediction_column="y", categorical=["b"])
    metadata, _ = _build(spec, {"a": np.zeros(4), "b": np.zeros(4), "y": np.array([0, 1, 0, 1])})
    assert metadata.categorical == [False, True]
    with pytest.raises(RegistrationError) as refused:
        _build(spec.model_copy(update={"categorical": ["c"]}), {"a": np.zeros(4), "b": np.zeros(4),
                                                                "y": np.array([0, 1, 0, 1])})
    assert refused.value.loc == ("metadata", "categorical")


def test_a_spec_gives_each_column_one_role() -> None:
    with pytest.raises(ValueError, match="columns named twice"):
        RegistrationSpec(feature_names=["x", "y"], prediction_column="y")
    with pytest.raises(ValueError, match="regressor"):
        RegistrationSpec(feature_names=["x"], prediction_column="y", task="regression", class_names=["a"])
    with pytest.raises(ValueError, match="a regressor's reference needs its predictions"):
        RegistrationSpec(feature_names=["x"], task="regression")
