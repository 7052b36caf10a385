"""``driftwatch register --keras``: a user's own Keras classifier, converted to LiteRT, checked against Keras,
written as a model directory the model service serves (issue 15 part 1)."""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np
import pytest
import redis
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from driftwatch.cli import app
from driftwatch.registration.keras_model import load_keras, write_model_dir
from model_service.app import create_app
from model_service.runtime import LiteRTModel
from model_service.serving_settings import ModelServiceSettings
from shared.keys import Keys
from shared.model_metadata import LITERT_FILE, ModelMetadata, Reference
from shared.registry import read_registered_model

N_FEATURES, N_CLASSES = 4, 3


def small_classifier(seed: int = 0, activation: str = "softmax", outputs: int = N_CLASSES) -> keras.Model:
    keras.utils.set_random_seed(seed)
    model = keras.Sequential([keras.Input(shape=(N_FEATURES,)), keras.layers.Dense(8, activation="relu"),
                              keras.layers.Dense(outputs, activation=activation)])
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(256, N_FEATURES)).astype(np.float32)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy" if outputs > 1 else "mse")
    model.fit(x, rng.integers(0, outputs if outputs > 1 else 2, 256), epochs=2, verbose=0)
    return model


@pytest.fixture(scope="module")
def keras_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("keras") / "mine.keras"
    small_classifier().save(path)
    return path


def reference_csv(path: Path, n: int = 600, label: bool = True) -> Path:
    rng = np.random.default_rng(3)
    x = rng.normal(size=(n, N_FEATURES))
    header = [f"x{j}" for j in range(N_FEATURES)] + (["truth"] if label else [])
    rows = [[f"{v:.5f}" for v in row] + ([str(rng.integers(0, N_CLASSES))] if label else []) for row in x]
    path.write_text(",".join(header) + "\n" + "".join(",".join(r) + "\n" for r in rows))
    return path


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["register", *args], env={"COLUMNS": "200"})
    return result.exit_code, result.output


def test_a_keras_file_becomes_a_served_model_directory(
    keras_file: Path, tmp_path: Path, redis_url: str, redis_client: redis.Redis
) -> None:
    out = tmp_path / "served"
    code, output = run("--name", "mine", "--version", "1", "--reference", str(reference_csv(tmp_path / "r.csv")),
                       "--label-column", "truth", "--keras", str(keras_file), "--out", str(out),
                       "--redis-url", redis_url)
    assert code == 0, output
    assert "LiteRT matches Keras within" in output and "Registered model mine version 1" in output
    assert {p.name for p in out.iterdir()} == {"model.tflite", "model.keras", "metadata.json", "reference.npz"}

    metadata, reference = ModelMetadata.load(out), Reference.load(out)
    assert metadata.class_names == ["0", "1", "2"] and metadata.has_probabilities and metadata.training is None
    # The reference's probabilities are the model's own on the sample (the file gave none).
    expected = np.asarray(keras.models.load_model(keras_file)(reference.features), dtype=np.float32)
    np.testing.assert_allclose(reference.probabilities, expected, atol=1e-6)
    np.testing.assert_array_equal(reference.predicted_classes, expected.argmax(axis=1))
    litert = LiteRTModel(out).predict_proba(reference.features[:50])
    np.testing.assert_allclose(litert, expected[:50], atol=1e-4)

    # `driftwatch serve` runs it: the model service starts on the directory (registering the same model
    # it finds in Redis) and answers with the Keras model's probabilities.
    service = create_app(ModelServiceSettings(REDIS_URL=redis_url, DRIFTWATCH_MODEL_DIR=str(out)))
    with TestClient(service) as client:
        answer = client.post("/predict", json={"features": reference.features[0].tolist()})
        assert answer.status_code == 200, answer.text
        np.testing.assert_allclose(answer.json()["probabilities"], expected[0], atol=1e-4)
    import asyncio

    import redis.asyncio as aioredis

    async def registered() -> ModelMetadata | None:
        client = aioredis.Redis.from_url(redis_url)
        try:
            found = await read_registered_model(client, Keys("mine"), "1")
            return found[0] if found else None
        finally:
            await client.aclose()

    stored = asyncio.run(registered())
    assert stored is not None and stored.data.sha256 == metadata.data.sha256


def test_a_saved_model_directory_is_accepted(tmp_path: Path) -> None:
    model = small_classifier(seed=1)
    saved = tmp_path / "saved"
    model.export(str(saved), format="tf_saved_model", verbose=False)
    out = tmp_path / "served"
    code, output = run("--name", "sm", "--version", "1", "--reference",
                       str(reference_csv(tmp_path / "r.csv", label=False)), "--keras", str(saved), "--out", str(out))
    assert code == 0, output
    assert "Registered" not in output  # --keras alone: the model service registers it when it starts
    reference = Reference.load(out)
    np.testing.assert_allclose(LiteRTModel(out).predict_proba(reference.features[:20]),
                               np.asarray(model(reference.features[:20])), atol=1e-4)


@pytest.mark.parametrize(
    ("model_args", "message"),
    [
        ({"activation": "linear"}, "not class probabilities"),  # logits
        ({"outputs": 1, "activation": "sigmoid"}, "1 output column"),
    ],
)
def test_models_the_service_cannot_serve_are_refused(tmp_path: Path, model_args: dict[str, object],
                                                     message: str) -> None:
    path = tmp_path / "odd.keras"
    small_classifier(**model_args).save(path)  # type: ignore[arg-type]
    out = tmp_path / "served"
    code, output = run("--name", "odd", "--version", "1", "--reference", str(reference_csv(tmp_path / "r.csv")),
                       "--label-column", "truth", "--keras", str(path), "--out", str(out),
                       *(["--class-names", "0,1,2"] if model_args.get("outputs") == 1 else []))
    assert code == 2 and message in output, output
    assert not out.exists()


def test_a_conversion_that_differs_from_keras_writes_nothing(keras_file: Path, tmp_path: Path) -> None:
    from driftwatch.registration.build import build_from_file
    from shared.registration import RegistrationSpec

    source = load_keras(keras_file)
    other = tmp_path / "other.keras"
    small_classifier(seed=5).save(other)
    wrong = load_keras(other)  # a real LiteRT model, of other weights
    spec = RegistrationSpec(feature_names=[f"x{j}" for j in range(N_FEATURES)], class_names=["0", "1", "2"])
    built = build_from_file(reference_csv(tmp_path / "r.csv", label=False), spec, "m", "1")
    import dataclasses
    mismatched = dataclasses.replace(source, to_litert=wrong.to_litert)
    out = tmp_path / "served"
    with pytest.raises(ValueError, match="differs from Keras by"):
        write_model_dir(mismatched, out, built.metadata, built.reference)
    assert not out.exists()
    write_model_dir(source, out, built.metadata, built.reference)
    assert (out / LITERT_FILE).exists()


def test_the_feature_count_must_match(keras_file: Path, tmp_path: Path) -> None:
    path = tmp_path / "r.csv"
    path.write_text("a,b\n1,2\n3,4\n")
    code, output = run("--name", "m", "--version", "1", "--reference", str(path), "--keras", str(keras_file),
                       "--out", str(tmp_path / "o"))
    assert code == 2 and "the model takes 4 features; the reference has 2" in output, output
