import numpy as np
import pytest

from shared.events import (
    EventDecodeError,
    decode_feedback,
    decode_predictions,
    encode_feedback,
    encode_predictions,
)
from shared.ids import is_prediction_id, new_prediction_ids, prediction_time_ms


def _batch(n: int = 5, f: int = 4, k: int = 3):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(n, f)).astype(np.float32)
    p = rng.dirichlet(np.ones(k), size=n).astype(np.float32)
    ids = new_prediction_ids(n, 1_700_000_000_123)
    return ids, x, p.argmax(1), p


def test_predictions_round_trip_exactly():
    ids, x, y, p = _batch()
    entries = encode_predictions(ids, 1_700_000_000_123, "m", "7", x, y, p)
    batch = decode_predictions(entries)
    assert batch.ids == ids
    np.testing.assert_array_equal(batch.features, x)
    np.testing.assert_array_equal(batch.probabilities, p)
    np.testing.assert_array_equal(batch.classes, y)
    assert batch.model_versions == ["7"] * 5
    assert (batch.timestamps_ms == 1_700_000_000_123).all()


def test_feedback_round_trip():
    entry = encode_feedback("a" * 32, 4, 123)
    batch = decode_feedback([entry])
    assert batch.ids == ["a" * 32] and batch.labels.tolist() == [4] and batch.timestamps_ms.tolist() == [123]


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda e: e.pop(b"x"), "missing field 'x'"),
        (lambda e: e.__setitem__(b"x", b"abc"), "'x'"),
        (lambda e: e.__setitem__(b"y", b"seven"), "'y'"),
        (lambda e: e.__setitem__(b"v", b"99"), "schema version"),
    ],
)
def test_malformed_prediction_is_a_decode_error(mutate, message):
    ids, x, y, p = _batch(2)
    entries = encode_predictions(ids, 1, "m", "1", x, y, p)
    mutate(entries[1])
    with pytest.raises(EventDecodeError, match=message):
        decode_predictions(entries)


def test_rows_of_different_widths_are_rejected():
    ids, x, y, p = _batch(1)
    wide = encode_predictions(ids, 1, "m", "1", np.zeros((1, 5), np.float32), y, p)
    with pytest.raises(EventDecodeError):
        decode_predictions(encode_predictions(ids, 1, "m", "1", x, y, p) + wide)


def test_ids_are_unique_time_ordered_and_carry_their_time():
    early = new_prediction_ids(1000, 1_000)
    late = new_prediction_ids(1, 2_000)
    assert len(set(early)) == 1000
    assert all(is_prediction_id(i) for i in early)
    assert max(early) < late[0]
    assert prediction_time_ms(late[0]) == 2_000
