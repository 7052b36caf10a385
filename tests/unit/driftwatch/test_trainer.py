"""Training writes a complete, self-describing model directory that serves what Keras learned."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from driftwatch.trainer.datasets import load_dataset
from driftwatch.trainer.train import TrainConfig, train
from model_service.runtime import LiteRTModel
from shared.model_metadata import HOLDOUT_FILE, KERAS_FILE, LITERT_FILE, ModelMetadata, Reference


def test_default_model_directory(model_dir: Path) -> None:
    metadata = ModelMetadata.load(model_dir)
    assert {p.name for p in model_dir.iterdir()} >= {KERAS_FILE, LITERT_FILE, "reference.npz", HOLDOUT_FILE,
                                                     "metadata.json"}
    assert metadata.training.test_accuracy >= 0.95
    assert metadata.categorical == [False] * 64  # digits declare their pixels ordinal
    assert len(metadata.data.sha256) == 64
    reference = Reference.load(model_dir)
    assert reference.features.shape == (metadata.training.n_train, 64)
    assert reference.probabilities.shape == (metadata.training.n_reference, 10)
    assert (reference.predicted_classes == reference.probabilities.argmax(axis=1)).all()
    # The held-out rows the probabilities and labels describe, for the class-mix accuracy bound.
    assert reference.labelled_features.shape == (metadata.training.n_reference, 64)
    probs = LiteRTModel(model_dir).predict_proba(reference.labelled_features)
    np.testing.assert_allclose(probs, reference.probabilities, atol=1e-4)
    # The training rows' own classes, for the agreement estimate's neighbour vote: the digits'
    # labels of exactly those rows (each training row's features are one digit's in the data set).
    data = load_dataset("digits")
    assert reference.feature_labels.shape == (metadata.training.n_train,)
    match = (reference.features[:, None, :] == data.features[None, :, :]).all(axis=2)
    assert match.any(axis=1).all()
    assert all(reference.feature_labels[i] in data.labels[match[i]] for i in range(len(match)))


def test_litert_export_serves_the_trained_weights(model_dir: Path) -> None:
    """Converting the live Keras model once produced a file without its weights."""
    import keras

    with np.load(model_dir / HOLDOUT_FILE) as holdout:
        x = holdout["features"].astype(np.float32)
    expected = keras.models.load_model(model_dir / KERAS_FILE)(x).numpy()
    np.testing.assert_allclose(LiteRTModel(model_dir).predict_proba(x), expected, atol=1e-4)


def _write_csv(path: Path, rows: int = 240, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    label = rng.integers(0, 3, rows)
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["size", "colour_code", "weight", "species"])
        for i in range(rows):
            species = ["ant", "bee", "cat"][label[i]]
            writer.writerow([label[i] * 2.0 + rng.normal(), rng.integers(0, 4), rng.normal(), species])


def test_csv_with_a_label_column(tmp_path: Path) -> None:
    _write_csv(tmp_path / "data.csv")
    out = tmp_path / "model"
    metadata = train(load_dataset(str(tmp_path / "data.csv"), "species"), out, TrainConfig(epochs=20, seed=1))
    assert metadata.feature_names == ["size", "colour_code", "weight"]
    assert metadata.class_names == ["ant", "bee", "cat"]
    assert metadata.categorical == [False, True, False]  # a 4-level integer code is detected
    assert metadata.training.test_accuracy > 0.6  # "size" separates the classes
    assert LiteRTModel(out).predict_proba(np.zeros((2, 3), np.float32)).shape == (2, 3)
    assert json.loads((out / "metadata.json").read_text())["data"]["label_column"] == "species"


def test_categorical_can_be_declared(tmp_path: Path) -> None:
    _write_csv(tmp_path / "data.csv")
    assert load_dataset(str(tmp_path / "data.csv"), "species", "none").categorical == [False, False, False]
    assert load_dataset(str(tmp_path / "data.csv"), "species", "weight").categorical == [False, False, True]
    with pytest.raises(ValueError, match="unknown features"):
        load_dataset(str(tmp_path / "data.csv"), "species", "nope")


@pytest.mark.parametrize(
    ("content", "message"),
    [("", "empty"), ("a,b\n", "no rows"), ("a,label\nx,1\ny,2\n", "numeric"), ("a,label\n1,1\n2,1\n", "two classes")],
)
def test_bad_csv_is_a_clear_error(tmp_path: Path, content: str, message: str) -> None:
    (tmp_path / "bad.csv").write_text(content)
    with pytest.raises(ValueError, match=message):
        load_dataset(str(tmp_path / "bad.csv"), "label" if "label" in content else "b")


def test_missing_label_column_is_a_clear_error(tmp_path: Path) -> None:
    _write_csv(tmp_path / "data.csv")
    with pytest.raises(ValueError, match="label column 'y'"):
        load_dataset(str(tmp_path / "data.csv"), "y")


def test_cli_names_a_csv_model_after_its_file_and_versions_each_run(tmp_path: Path) -> None:
    """Two models trained with the defaults never share a name+version by accident: the
    issue's CSV model was registered as digits-mlp v1 over the digits model's state."""
    from datetime import UTC, datetime

    from typer.testing import CliRunner

    from driftwatch.cli.main import app

    _write_csv(tmp_path / "my.csv")
    out = tmp_path / "mine"
    result = CliRunner().invoke(app, ["train", "--data", str(tmp_path / "my.csv"), "--label-column", "species",
                                      "--out", str(out), "--epochs", "1"])
    assert result.exit_code == 0, result.output
    metadata = ModelMetadata.load(out)
    dataset = load_dataset(str(tmp_path / "my.csv"), "species")
    assert metadata.name == "my"
    stamp, digest = metadata.version.rsplit("-", 1)
    assert digest == dataset.sha256[:8] and datetime.strptime(stamp, "%Y%m%d-%H%M%S")  # UTC time of the run
    later = dataset.new_version(datetime(2030, 1, 1, tzinfo=UTC))
    assert later != metadata.version and later == f"20300101-000000-{dataset.sha256[:8]}"
    assert load_dataset("digits").default_model_name == "digits-mlp"


@pytest.mark.skipif(Path("/dev/nvidiactl").exists(), reason="a machine with an NVIDIA driver probes its GPU for real")
def test_training_log_has_no_gpu_probe_error_without_a_gpu() -> None:
    """TensorFlow logged ``E... failed call to cuInit`` on every CPU-only training run."""
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    code = "import driftwatch.trainer.train\nimport tensorflow as tf\nprint(float(tf.constant(1.0) + 1))"
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "2.0"
    assert "cuInit" not in done.stderr
    assert not [line for line in done.stderr.splitlines() if line.startswith("E0")], done.stderr
