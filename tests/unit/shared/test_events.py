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


def test_feedback_that_carries_its_prediction_decodes_beside_feedback_that_does_not():
    entries = [encode_feedback("a" * 32, 4, 123), encode_feedback("b" * 32, 1, 456, 2, 100, "v2"),
               encode_feedback("c" * 32, 0, 789, 3, 200)]
    batch = decode_feedback(entries)
    assert batch.predicted is not None and batch.predicted_ms is not None
    assert batch.predicted.tolist() == [-1, 2, 3] and batch.predicted_ms.tolist() == [-1, 100, 200]
    assert batch.versions == ["", "v2", ""]
    carried = batch.rows(batch.predicted >= 0)
    assert carried.ids == ["b" * 32, "c" * 32] and carried.labels.tolist() == [1, 0]
    with pytest.raises(ValueError, match="together"):
        encode_feedback("a" * 32, 4, 123, predicted=1)
    half = {**entries[1]}
    del half[b"pts"]
    with pytest.raises(EventDecodeError, match="'py' and 'pts' come together"):
        decode_feedback([entries[0], half])
    with pytest.raises(EventDecodeError, match="'py'"):
        decode_feedback([{**entries[1], b"py": b"two"}])


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


def test_events_logged_from_elsewhere_keep_each_rows_time_and_may_have_no_probabilities():
    ids, x, y, _ = _batch(3)
    x[1, 2] = np.nan  # a missing value stays missing
    stamps = np.array([1_000, 2_000, 3_000], dtype=np.int64)
    batch = decode_predictions(encode_predictions(ids, stamps, "m", "1", x, y, np.zeros((3, 0), np.float32)))
    assert batch.timestamps_ms.tolist() == [1_000, 2_000, 3_000]
    assert batch.probabilities.shape == (3, 0)
    np.testing.assert_array_equal(batch.features, x)  # NaN compares equal here
    assert np.isnan(batch.features[1, 2])


def test_empty_and_full_probabilities_do_not_mix_in_one_batch():
    ids, x, y, p = _batch(2)
    entries = encode_predictions(ids, 1, "m", "1", x, y, p)
    entries[1][b"p"] = b""
    with pytest.raises(EventDecodeError, match="'p'"):
        decode_predictions(entries)
    entries[0][b"x"] = b""
    with pytest.raises(EventDecodeError, match="'x'"):  # features are never empty
        decode_predictions(entries)


def test_a_foreign_id_maps_to_one_driftwatch_id_that_carries_the_prediction_time():
    from shared.ids import internal_prediction_id

    mapped = internal_prediction_id("e58f1edd-43bc-42f6-a10a-d1adb5cab831", 1_700_000_000_123)
    assert is_prediction_id(mapped) and prediction_time_ms(mapped) == 1_700_000_000_123
    assert mapped == internal_prediction_id("e58f1edd-43bc-42f6-a10a-d1adb5cab831", 1_700_000_000_123)
    assert mapped != internal_prediction_id("e58f1edd-43bc-42f6-a10a-d1adb5cab832", 1_700_000_000_123)
    import hashlib

    assert mapped[12:] == hashlib.blake2b(b"e58f1edd-43bc-42f6-a10a-d1adb5cab831").digest()[:10].hex()
    with pytest.raises(ValueError, match="outside"):
        internal_prediction_id("x", 16**12)
