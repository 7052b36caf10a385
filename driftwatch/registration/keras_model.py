"""``driftwatch register --keras``: a user's own Keras classifier served on the LiteRT path.

The model (a ``.keras`` file or a SavedModel directory) is converted to LiteRT
with the trainer's code (SavedModel first, then the converter: converting a
live Keras model once dropped its weights), written with the registration's
metadata and reference sample as a model directory, and loaded back the way
``driftwatch serve`` loads it (:class:`model_service.runtime.LiteRTModel`).
Its outputs must equal the Keras model's on the reference sample within
1e-4, or nothing is kept.

What the model service serves: one input of F float32 features, one output of
K class probabilities (each row sums to 1). A sigmoid's single column, logits,
several inputs or a regressor are refused with the reason.
"""

from __future__ import annotations

import dataclasses
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from shared.model_metadata import KERAS_FILE, LITERT_FILE, ModelMetadata, Reference

TOLERANCE = 1e-4
PROBABILITY_SUM_TOLERANCE = 1e-3
BATCH = 4_096

Predict = Callable[[npt.NDArray[np.float32]], npt.NDArray[np.float32]]


@dataclass(frozen=True)
class KerasSource:
    """A loaded user model: what it takes and gives, how to run it, how to convert it."""

    path: Path
    n_features: int
    n_outputs: int
    predict: Predict
    to_litert: Callable[[], bytes]

    def outputs(self, features: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        parts = [self.predict(features[i : i + BATCH]) for i in range(0, len(features), BATCH)]
        return np.concatenate(parts).astype(np.float32) if parts else np.zeros((0, self.n_outputs), np.float32)


def load_keras(path: Path) -> KerasSource:
    """A ``.keras`` file or a SavedModel directory (imports TensorFlow)."""
    from driftwatch.trainer.train import saved_model_to_litert

    if path.is_dir():
        return _load_saved_model(path, saved_model_to_litert)
    if path.suffix != ".keras":
        raise ValueError(f"{path}: expected a .keras file or a SavedModel directory")
    import keras

    model = keras.models.load_model(path, compile=False)
    if len(model.inputs) != 1 or len(model.outputs) != 1:
        raise ValueError(f"the model has {len(model.inputs)} inputs and {len(model.outputs)} outputs; "
                         "the model service serves one input of features and one output of probabilities")
    n_features, n_outputs = _width(model.inputs[0].shape, "input"), _width(model.outputs[0].shape, "output")

    def predict(x: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        return np.asarray(model(x, training=False), dtype=np.float32)

    def to_litert() -> bytes:
        with tempfile.TemporaryDirectory() as tmp:
            saved = Path(tmp) / "saved_model"
            model.export(str(saved), format="tf_saved_model", verbose=False)
            return saved_model_to_litert(saved)

    return KerasSource(path, n_features, n_outputs, predict, to_litert)


def _load_saved_model(path: Path, convert: Callable[[Path], bytes]) -> KerasSource:
    import tensorflow as tf

    loaded = tf.saved_model.load(str(path))
    if "serving_default" not in loaded.signatures:
        raise ValueError(f"{path}: the SavedModel has no serving_default signature")
    signature = loaded.signatures["serving_default"]
    inputs = signature.structured_input_signature[1]
    outputs = signature.structured_outputs
    if len(inputs) != 1 or len(outputs) != 1:
        raise ValueError(f"the SavedModel's serving_default takes {len(inputs)} inputs and gives {len(outputs)} "
                         "outputs; the model service serves one input of features and one output of probabilities")
    (input_name, spec), (output_name, out_spec) = next(iter(inputs.items())), next(iter(outputs.items()))

    def predict(x: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        return np.asarray(signature(**{input_name: tf.constant(x)})[output_name], dtype=np.float32)

    return KerasSource(path, _width(spec.shape, "input"), _width(out_spec.shape, "output"), predict,
                       lambda: convert(path))


def _width(shape: object, what: str) -> int:
    dims = list(shape)  # type: ignore[call-overload]
    if len(dims) != 2 or dims[1] is None:
        raise ValueError(f"the model's {what} has shape {tuple(dims)}; expected (batch, n)")
    return int(dims[1])


def default_class_names(source: KerasSource) -> list[str]:
    """``"0"``..``"K-1"``: the model's output columns, when the reference names no classes."""
    return [str(k) for k in range(source.n_outputs)]


def write_model_dir(
    source: KerasSource, out: Path, metadata: ModelMetadata, reference: Reference
) -> tuple[ModelMetadata, Reference, float]:
    """Convert, write the model directory, check LiteRT against Keras; returns what was written and
    the largest difference seen. Raises ValueError (the directory left as it was) when a check fails."""
    from model_service.runtime import LiteRTModel

    _check_fits(source, metadata)
    metadata, reference = _with_model_outputs(source, metadata, reference)
    complete = ~np.isnan(reference.features).any(axis=1)
    if not complete.any():
        raise ValueError("no reference row without missing features to compare the LiteRT model with Keras on")
    sample = np.ascontiguousarray(reference.features[complete])
    expected = source.outputs(sample)
    _check_probabilities(expected)
    with tempfile.TemporaryDirectory(prefix="driftwatch-keras-") as tmp:
        staged = Path(tmp) / "model"
        staged.mkdir()
        (staged / LITERT_FILE).write_bytes(source.to_litert())
        metadata.save(staged)
        reference.save(staged)
        if source.path.is_file():
            shutil.copyfile(source.path, staged / KERAS_FILE)
        served = LiteRTModel(staged)  # exactly what `driftwatch serve` loads
        got = np.concatenate([served.predict_proba(sample[i : i + BATCH]) for i in range(0, len(sample), BATCH)])
        worst = float(np.max(np.abs(got - expected)))
        if not worst <= TOLERANCE:
            raise ValueError(f"the LiteRT conversion differs from Keras by {worst:.2e} (more than {TOLERANCE:g}) "
                             "on the reference sample")
        if out.exists():
            shutil.rmtree(out)
        out.parent.mkdir(parents=True, exist_ok=True)
        shutil.copytree(staged, out)
    return metadata, reference, worst


def _check_fits(source: KerasSource, metadata: ModelMetadata) -> None:
    if metadata.task != "classification":
        raise ValueError("the model service serves classifiers; register a regressor without --keras "
                         "and log its predictions")
    if source.n_features != metadata.n_features:
        raise ValueError(f"the model takes {source.n_features} features; the reference has "
                         f"{metadata.n_features} ({', '.join(metadata.feature_names[:5])}...)")
    if source.n_outputs < 2:
        raise ValueError(f"the model gives {source.n_outputs} output column; the model service needs one "
                         "probability per class (e.g. Dense(2, activation='softmax') for two classes)")
    if source.n_outputs != metadata.n_classes:
        raise ValueError(f"the model gives {source.n_outputs} probabilities; the reference has "
                         f"{metadata.n_classes} classes {metadata.class_names[:10]} (--class-names)")


def _check_probabilities(outputs: npt.NDArray[np.float32]) -> None:
    sums = outputs.sum(axis=1)
    if not (np.isfinite(outputs).all() and (outputs >= -1e-6).all()
            and np.abs(sums - 1).max() <= PROBABILITY_SUM_TOLERANCE):
        raise ValueError("the model's outputs are not class probabilities (each row must sum to 1): "
                         "end it with a softmax")


def _with_model_outputs(
    source: KerasSource, metadata: ModelMetadata, reference: Reference
) -> tuple[ModelMetadata, Reference]:
    """The reference's probabilities (and predicted classes) from the model itself where the file gave none."""
    if reference.probabilities.shape[1] > 0 and reference.predicted_classes.size > 0:
        return metadata, reference
    if np.isnan(reference.features).any():
        raise ValueError("the reference file gives no probabilities and has missing feature values: the model "
                         "cannot score those rows; add --probability-columns or fill the gaps")
    probabilities = source.outputs(reference.features)
    _check_probabilities(probabilities)
    if reference.probabilities.shape[1] > 0:
        probabilities = reference.probabilities
    classes = reference.predicted_classes if reference.predicted_classes.size else probabilities.argmax(axis=1)
    updated = dataclasses.replace(reference, probabilities=probabilities, predicted_classes=classes.astype(np.int64))
    return metadata.model_copy(update={"has_probabilities": True}), updated
