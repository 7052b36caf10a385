"""What the client sends: the caller's arrays checked at ``log`` time, bodies as CONTRACTS.md says."""

from __future__ import annotations

import datetime as dt

import numpy as np
import orjson
import pandas as pd
import pytest

from driftwatch.client_batches import encode, feedback_block, prediction_block
from shared.ids import is_prediction_id, prediction_time_ms


def test_rows_by_position_with_nulls_as_null_and_fresh_ids() -> None:
    x = np.array([[1.5, np.nan], [2.0, 3.0]])
    block = prediction_block("m", x, np.array([0, 1]), probabilities=[[0.9, 0.1], [0.2, 0.8]])
    assert len(block) == 2 and all(is_prediction_id(i) for i in block.ids) and len(set(block.ids)) == 2
    body = orjson.loads(encode(block))
    first = body["rows"][0]
    assert first["features"] == [1.5, None]  # a missing value stays missing: never a number
    assert first["prediction"] == 0 and first["probabilities"] == [0.9, 0.1] and first["id"] == block.ids[0]
    assert first["timestamp"] == prediction_time_ms(block.ids[0])


def test_a_dataframe_is_sent_by_feature_name_with_pandas_nulls_missing() -> None:
    frame = pd.DataFrame({"b": [1.0, None], "a": pd.array([1, pd.NA], dtype="Int64")})
    block = prediction_block("m", frame, pd.Series(["yes", "no"]))
    rows = orjson.loads(encode(block))["rows"]
    assert rows[0]["features"] == {"b": 1.0, "a": 1.0}
    assert rows[1]["features"] == {"b": None, "a": None}
    assert [r["prediction"] for r in rows] == ["yes", "no"]


def test_labels_keep_their_json_type() -> None:
    for labels, expected in (([True, False], [True, False]), ([3, 7], [3, 7]), (["cat", "dog"], ["cat", "dog"])):
        block = prediction_block("m", np.zeros((2, 1)), np.array(labels))
        assert [r["prediction"] for r in orjson.loads(encode(block))["rows"]] == expected


def test_timestamps_in_every_form_and_ids_stamped_with_them() -> None:
    at = dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.UTC)
    ms = int(at.timestamp() * 1000)
    for given in ([at, at], np.array([ms, ms]), np.array(["2026-03-01T12:00"] * 2, dtype="datetime64[ms]"),
                  pd.Series(pd.to_datetime(["2026-03-01 12:00"] * 2, utc=True)), ms):
        block = prediction_block("m", np.zeros((2, 1)), [0, 1], timestamps=given)
        assert block.timestamps_ms.tolist() == [ms, ms]
        assert [prediction_time_ms(i) for i in block.ids] == [ms, ms]
    with pytest.raises(ValueError, match="timezone-aware"):
        prediction_block("m", np.zeros((1, 1)), [0], timestamps=[dt.datetime(2026, 3, 1)])


def test_arguments_that_cannot_be_sent_are_refused_at_once() -> None:
    with pytest.raises(ValueError, match="infinite"):
        prediction_block("m", np.array([[np.inf]]), [0])
    with pytest.raises(ValueError, match="float32"):
        prediction_block("m", np.array([[1e39]]), [0])  # would become infinite on the stream
    with pytest.raises(ValueError, match="predictions has 1 entries for 2 rows"):
        prediction_block("m", np.zeros((2, 3)), [0])
    with pytest.raises(ValueError, match="probabilities must have shape"):
        prediction_block("m", np.zeros((2, 3)), [0, 1], probabilities=np.zeros((3, 2)))
    with pytest.raises(ValueError, match="features must be numbers"):
        prediction_block("m", [["a", "b"]], [0])
    with pytest.raises(ValueError, match="ids has 1 entries"):
        prediction_block("m", np.zeros((2, 1)), [0, 1], ids=["x"])


def test_feedback_for_foreign_ids_needs_prediction_timestamps() -> None:
    with pytest.raises(ValueError, match="prediction_timestamps"):
        feedback_block("m", ["req-1"], ["yes"])
    block = feedback_block("m", ["req-1"], ["yes"], prediction_timestamps=[1_700_000_000_000])
    (label,) = orjson.loads(encode(block))["labels"]
    assert label["id"] == "req-1" and label["label"] == "yes" and label["prediction_timestamp"] == 1_700_000_000_000
    own = prediction_block("m", np.zeros((1, 1)), [0]).ids
    (label,) = orjson.loads(encode(feedback_block("m", own, np.array([1]))))["labels"]
    assert label == {"id": own[0], "label": 1, "timestamp": label["timestamp"]}


def test_feedback_carrying_predictions_needs_their_times_and_sends_them_with_the_version() -> None:
    own = prediction_block("m", np.zeros((1, 1)), ["no"]).ids
    with pytest.raises(ValueError, match="predictions need prediction_timestamps"):
        feedback_block("m", own, ["yes"], predictions=["no"])
    with pytest.raises(ValueError, match="version comes with predictions"):
        feedback_block("m", ["req-1"], ["yes"], prediction_timestamps=[1], version="2")
    with pytest.raises(ValueError, match="predictions has 1 entries for 2 labels"):
        feedback_block("m", ["a", "b"], ["yes", "no"], prediction_timestamps=[1, 2], predictions=["no"])
    block = feedback_block("m", ["a", "b"], ["yes", "no"], prediction_timestamps=[1, 2], predictions=["no", "no"],
                           version="2")
    first, _ = orjson.loads(encode(block))["labels"]
    assert first == {"id": "a", "label": "yes", "timestamp": first["timestamp"], "prediction_timestamp": 1,
                     "prediction": "no", "version": "2"}
    head, tail = block.split(1)
    assert head.version == tail.version == "2" and head.join_key() != feedback_block(
        "m", ["a"], ["yes"], prediction_timestamps=[1], predictions=["no"]).join_key()


def test_blocks_split_into_views_and_keep_order() -> None:
    block = prediction_block("m", np.arange(10.0).reshape(5, 2), np.arange(5), probabilities=np.eye(5))
    head, tail = block.split(2)
    assert len(head) == 2 and len(tail) == 3 and head.ids + tail.ids == block.ids
    assert np.shares_memory(head.values, block.values)
    assert [r["prediction"] for r in orjson.loads(encode(tail))["rows"]] == [2, 3, 4]


def test_features_travel_as_the_float32_the_stream_keeps_in_their_shortest_form() -> None:
    x = np.array([[0.1, 1 / 3, 123456.789]])
    body = encode(prediction_block("m", x, [0]))
    assert b'"features":[0.1,0.33333334,123456.79]' in body
    sent = np.array(orjson.loads(body)["rows"][0]["features"], dtype=np.float32)
    np.testing.assert_array_equal(sent, x[0].astype(np.float32))  # the same float32 values, no loss


def test_arrays_in_any_memory_order_are_sent() -> None:
    """A DataFrame's ``to_numpy()`` (and ``predict_proba`` of some models) is column-major, and
    orjson refuses non-contiguous numpy rows: such a batch was dropped whole by the sender."""
    frame = pd.DataFrame({"a": [1.0, 2.0, 3.0], "b": [4.0, 5.0, 6.0]})
    x, probs = frame.to_numpy(), frame[["a", "b"]].to_numpy() / 10
    assert not x.flags.c_contiguous and not probs.flags.c_contiguous
    block = prediction_block("m", x, np.array([0, 1, 0]), probabilities=probs)
    for part in block.split(1):  # what the sender sends: views of the block
        assert orjson.loads(encode(part))["rows"][0]["features"] == part.values[0].tolist()
    rows = orjson.loads(encode(block))["rows"]
    assert [r["features"] for r in rows] == [[1.0, 4.0], [2.0, 5.0], [3.0, 6.0]]
    np.testing.assert_allclose([r["probabilities"] for r in rows], [[0.1, 0.4], [0.2, 0.5], [0.3, 0.6]], rtol=1e-6)
