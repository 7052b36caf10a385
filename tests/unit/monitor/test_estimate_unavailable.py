"""What /performance says of a version without probabilities: which label-free method it still has."""

import numpy as np

from monitor.calibrations import AGREEMENT_ONLY, NEITHER_METHOD, without_probabilities
from monitor.estimate import NO_PROBABILITIES
from shared.model_metadata import Reference

RNG = np.random.default_rng(0)
X = RNG.normal(size=(50, 3)).astype(np.float32)
Y = RNG.integers(0, 2, 50)
NONE = np.zeros((50, 0), np.float32)


def test_a_classifier_without_probabilities_has_agreement_where_its_reference_gives_the_surrogate() -> None:
    labelled = Reference(features=X, predicted_classes=Y, probabilities=NONE, labels=Y, labelled_features=X)
    assert without_probabilities(2, labelled) == AGREEMENT_ONLY
    assert AGREEMENT_ONLY.startswith("doc unavailable: no probabilities")
    unlabelled = Reference(features=X, predicted_classes=Y, probabilities=NONE, labels=np.zeros(0, np.int64))
    assert without_probabilities(2, unlabelled) == NEITHER_METHOD
    assert "(doc)" in NEITHER_METHOD and "(agreement)" in NEITHER_METHOD


def test_a_regressor_has_no_accuracy_estimate_as_before() -> None:
    regressor = Reference(features=X, predicted_classes=np.zeros(0, np.int64), probabilities=NONE, labels=Y,
                          predicted_values=X[:, 0], labelled_features=X)
    assert without_probabilities(0, regressor) == NO_PROBABILITIES
