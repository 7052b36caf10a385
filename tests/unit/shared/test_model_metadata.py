"""Metadata generalised to models Driftwatch did not train (issue 15, part 1): old files stay valid."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
from pydantic import ValidationError

from shared.model_metadata import ModelMetadata, Reference

TRAINED_BEFORE = {  # a metadata.json as the trainer wrote it before task/label kinds existed
    "name": "digits-mlp", "version": "1", "feature_names": ["a", "b"], "class_names": ["0", "1"],
    "categorical": [False, False],
    "training": {"test_accuracy": 0.97, "test_loss": 0.1, "epochs": 3, "batch_size": 32, "learning_rate": 0.001,
                 "seed": 0, "n_train": 10, "n_reference": 5, "n_test": 5},
    "data": {"source": "digits", "sha256": "0" * 64, "label_column": None},
    "created_at": "2026-01-01T00:00:00+00:00",
}


def test_a_trained_models_metadata_from_before_reads_as_a_probabilistic_integer_classifier(tmp_path: Path) -> None:
    (tmp_path / "metadata.json").write_text(json.dumps(TRAINED_BEFORE))
    metadata = ModelMetadata.load(tmp_path)
    assert (metadata.task, metadata.label_kind, metadata.has_probabilities) == ("classification", "integer", True)
    assert metadata.training is not None and metadata.training.test_accuracy == 0.97
    assert metadata.reference_summary is None


def test_a_registered_regressor_needs_no_training_summary() -> None:
    fields = {k: v for k, v in TRAINED_BEFORE.items() if k != "training"}
    metadata = ModelMetadata.model_validate(
        {**fields, "class_names": [], "task": "regression", "has_probabilities": False})
    assert metadata.training is None and metadata.n_classes == 0
    with pytest.raises(ValidationError, match="label_kind"):
        ModelMetadata.model_validate({**fields, "label_kind": "float"})


def test_a_reference_written_before_regressors_existed_loads_with_no_predicted_values() -> None:
    buffer = io.BytesIO()
    np.savez_compressed(buffer, features=np.ones((3, 2), np.float32), predicted_classes=np.zeros(2, np.int64),
                        probabilities=np.ones((2, 2), np.float32), labels=np.zeros(2, np.int64))
    reference = Reference.from_bytes(buffer.getvalue())
    assert reference.predicted_values.shape == (0,) and reference.features.shape == (3, 2)

    regressor = Reference(features=np.ones((3, 2), np.float32), predicted_classes=np.zeros(0, np.int64),
                          probabilities=np.zeros((3, 0), np.float32), labels=np.zeros(0, np.int64),
                          predicted_values=np.array([1.5, 2.5, 3.5], np.float32))
    again = Reference.from_bytes(regressor.to_bytes())
    np.testing.assert_array_equal(again.predicted_values, [1.5, 2.5, 3.5])
    assert again.probabilities.shape == (3, 0)


def test_labelled_features_round_trip_and_are_empty_in_a_reference_from_before() -> None:
    buffer = io.BytesIO()
    np.savez_compressed(buffer, features=np.ones((3, 2), np.float32), predicted_classes=np.zeros(2, np.int64),
                        probabilities=np.ones((2, 2), np.float32), labels=np.zeros(2, np.int64))
    assert Reference.from_bytes(buffer.getvalue()).labelled_features.shape == (0, 0)

    held_out = np.arange(4, dtype=np.float32).reshape(2, 2)
    reference = Reference(features=np.ones((3, 2), np.float32), predicted_classes=np.zeros(2, np.int64),
                          probabilities=np.ones((2, 2), np.float32), labels=np.zeros(2, np.int64),
                          labelled_features=held_out)
    np.testing.assert_array_equal(Reference.from_bytes(reference.to_bytes()).labelled_features, held_out)


def test_feature_labels_round_trip_and_are_empty_in_a_reference_from_before() -> None:
    buffer = io.BytesIO()
    np.savez_compressed(buffer, features=np.ones((3, 2), np.float32), predicted_classes=np.zeros(2, np.int64),
                        probabilities=np.ones((2, 2), np.float32), labels=np.zeros(2, np.int64))
    assert Reference.from_bytes(buffer.getvalue()).feature_labels.shape == (0,)

    reference = Reference(features=np.ones((3, 2), np.float32), predicted_classes=np.zeros(2, np.int64),
                          probabilities=np.ones((2, 2), np.float32), labels=np.zeros(2, np.int64),
                          feature_labels=np.array([2, 0, 1]))
    np.testing.assert_array_equal(Reference.from_bytes(reference.to_bytes()).feature_labels, [2, 0, 1])
