"""Train the default MLP and write a self-describing model directory.

The directory holds the Keras model (to retrain or inspect), the LiteRT export
that serving runs, ``reference.npz`` for the monitor and ``metadata.json``.
Serving never imports TensorFlow: everything it needs is in the LiteRT file
and the metadata.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from driftwatch.trainer.datasets import Dataset, categorical_mask
from shared.model_metadata import (
    HOLDOUT_FILE,
    KERAS_FILE,
    LITERT_FILE,
    DataSummary,
    ModelMetadata,
    Reference,
    TrainingSummary,
)

NVIDIA_DEVICE = Path("/dev/nvidiactl")
"""Present where an NVIDIA driver is loaded: the only place TensorFlow's GPU probe can succeed."""

# TensorFlow's C++ log: info and warnings off (2), and on a machine without an NVIDIA
# device its errors too (3). There the one error it prints is the GPU probe failing as
# expected ("failed call to cuInit"), which read as a fault in every training log.
# Python exceptions are unaffected, and a user's own setting wins.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2" if NVIDIA_DEVICE.exists() else "3")

# Cap on the stored reference: KS on 50k rows already resolves shifts far below
# anything that matters, and the reference travels through Redis.
MAX_REFERENCE_ROWS = 50_000

EpochCallback = Callable[[int, int, dict[str, float]], None]


@dataclass(frozen=True, slots=True)
class TrainConfig:
    epochs: int = 40
    batch_size: int = 32
    learning_rate: float = 1e-3
    seed: int = 0
    model_name: str = "digits-mlp"
    version: str = "1"


@dataclass(frozen=True, slots=True)
class Split:
    train: npt.NDArray[np.int64]
    reference: npt.NDArray[np.int64]
    test: npt.NDArray[np.int64]


def split_indices(labels: npt.NDArray[np.int64], seed: int) -> Split:
    """Stratified 60/20/20 split: train, held-out reference, test."""
    from sklearn.model_selection import train_test_split

    idx = np.arange(len(labels))
    train, rest = train_test_split(idx, test_size=0.4, stratify=labels, random_state=seed)
    reference, test = train_test_split(rest, test_size=0.5, stratify=labels[rest], random_state=seed)
    return Split(np.sort(train), np.sort(reference), np.sort(test))


def build_model(features: npt.NDArray[np.float32], n_classes: int, learning_rate: float) -> Any:
    """The MLP of DESIGN.md, with input normalisation baked in so serving takes raw features."""
    import keras

    # A feature constant in training (digits' corner pixels) would be divided by
    # ~0 and explode on the first unseen value: centre it, leave it unscaled.
    variance = features.var(axis=0)
    norm = keras.layers.Normalization(
        name="standardise",
        mean=features.mean(axis=0),
        variance=np.where(variance > 0, variance, 1.0),
    )
    model = keras.Sequential(
        [
            keras.Input(shape=(features.shape[1],), name="features"),
            norm,
            keras.layers.Dense(128, activation="relu"),
            keras.layers.Dropout(0.2),
            keras.layers.Dense(64, activation="relu"),
            keras.layers.Dense(n_classes, activation="softmax", name="probabilities"),
        ]
    )
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=learning_rate),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    return model


def saved_model_to_litert(saved_model_dir: Path) -> bytes:
    """A SavedModel directory as a LiteRT (TFLite) flatbuffer."""
    import tensorflow as tf

    return bytes(tf.lite.TFLiteConverter.from_saved_model(str(saved_model_dir)).convert())


def export_litert(model: Any, out_dir: Path) -> Path:
    """SavedModel first, then convert: converting the live Keras model dropped the weights here."""
    with tempfile.TemporaryDirectory() as tmp:
        saved = Path(tmp) / "saved_model"
        model.export(str(saved), format="tf_saved_model", verbose=False)
        tflite = saved_model_to_litert(saved)
    path = out_dir / LITERT_FILE
    path.write_bytes(tflite)
    return path


def train(
    dataset: Dataset,
    out_dir: Path,
    config: TrainConfig = TrainConfig(),
    on_epoch: EpochCallback | None = None,
) -> ModelMetadata:
    """Train the MLP on ``dataset`` and write a complete model directory to ``out_dir``.

    Longer than 60 lines on purpose: it is the training run read top to bottom
    (seed, split, fit, evaluate, export SavedModel then LiteRT, reference
    sample, metadata), each step a few lines whose order matters; split up, the
    reader would chase the order through helpers that have one caller.
    """
    import keras

    keras.utils.set_random_seed(config.seed)
    split = split_indices(dataset.labels, config.seed)
    x, y = dataset.features, dataset.labels
    model = build_model(x[split.train], len(dataset.class_names), config.learning_rate)

    callbacks: list[keras.callbacks.Callback] = []
    if on_epoch is not None:
        callback = on_epoch
        callbacks.append(
            keras.callbacks.LambdaCallback(
                on_epoch_end=lambda epoch, logs: callback(
                    epoch + 1, config.epochs, {k: float(v) for k, v in (logs or {}).items()}
                )
            )
        )
    model.fit(
        x[split.train],
        y[split.train],
        validation_data=(x[split.reference], y[split.reference]),
        epochs=config.epochs,
        batch_size=config.batch_size,
        shuffle=True,
        verbose=0,
        callbacks=callbacks,
    )
    test_loss, test_accuracy = model.evaluate(x[split.test], y[split.test], verbose=0)

    out_dir.mkdir(parents=True, exist_ok=True)
    model.save(out_dir / KERAS_FILE)
    export_litert(model, out_dir)

    reference_probs = np.asarray(model.predict(x[split.reference], verbose=0), dtype=np.float32)
    rng = np.random.default_rng(config.seed)
    ref_rows = split.train
    if len(ref_rows) > MAX_REFERENCE_ROWS:
        ref_rows = np.sort(rng.choice(ref_rows, MAX_REFERENCE_ROWS, replace=False))
    Reference(
        features=x[ref_rows],
        predicted_classes=reference_probs.argmax(axis=1).astype(np.int64),
        probabilities=reference_probs,
        labels=y[split.reference],
        labelled_features=x[split.reference].astype(np.float32),
        feature_labels=y[ref_rows].astype(np.int64),
    ).save(out_dir)
    # The test split never touched training: `driftwatch simulate` replays it.
    np.savez_compressed(out_dir / HOLDOUT_FILE, features=x[split.test], labels=y[split.test])

    metadata = ModelMetadata(
        name=config.model_name,
        version=config.version,
        feature_names=dataset.feature_names,
        class_names=dataset.class_names,
        categorical=dataset.categorical if dataset.categorical is not None else categorical_mask(x[split.train]),
        training=TrainingSummary(
            test_accuracy=float(test_accuracy),
            test_loss=float(test_loss),
            epochs=config.epochs,
            batch_size=config.batch_size,
            learning_rate=config.learning_rate,
            seed=config.seed,
            n_train=len(split.train),
            n_reference=len(split.reference),
            n_test=len(split.test),
        ),
        data=DataSummary(source=dataset.source, sha256=dataset.sha256, label_column=dataset.label_column),
        created_at=datetime.now(UTC).isoformat(timespec="seconds"),
    )
    metadata.save(out_dir)
    return metadata
