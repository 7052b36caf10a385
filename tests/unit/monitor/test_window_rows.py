"""Window rows carry each event's predicted class after its features (what the agreement estimate
pairs); rows filed before that hold the features alone and still decode."""

import numpy as np
import pytest

from monitor.window_state import split_window_rows, window_rows

F = 3


def _stored(x: np.ndarray, classes: np.ndarray) -> list[bytes]:
    """Rows as the ingest script stores them: the packed batch sliced by width."""
    packed = window_rows([r.tobytes() for r in x], classes)
    width = len(packed) // len(x)
    return [packed[i * width : (i + 1) * width] for i in range(len(x))]


def test_rows_give_back_their_features_bit_for_bit_and_their_classes() -> None:
    x = np.random.default_rng(0).normal(size=(50, F)).astype(np.float32)
    x[3, 1] = np.nan
    classes = np.arange(50) % 7
    classes[0] = 899_999  # the widest class the packed class column takes
    features, got = split_window_rows(_stored(x, classes), F)
    assert features.tobytes() == x.tobytes() and got is not None and got.tolist() == classes.tolist()


def test_rows_filed_before_they_carried_a_class_decode_without_classes() -> None:
    x = np.arange(4 * F, dtype=np.float32).reshape(4, F)
    old = [r.tobytes() for r in x]
    features, classes = split_window_rows(old, F)
    assert classes is None and features.tolist() == x.tolist()
    mixed = old[:2] + _stored(x[2:], np.array([1, 2]))  # a window filed across an upgrade
    features, classes = split_window_rows(mixed, F)
    assert classes is None and features.tolist() == x.tolist()


def test_rows_of_another_width_are_refused() -> None:
    with pytest.raises(ValueError, match="do not hold 3 float32 features"):
        split_window_rows([b"\0" * 8], F)
    with pytest.raises(ValueError, match="one row of one width"):
        window_rows([b"\0" * 12, b"\0" * 8], np.array([0, 1]))
