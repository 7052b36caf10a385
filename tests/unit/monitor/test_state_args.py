"""The ingest script's call: every key it touches in KEYS, packed fixed-width columns
with the widths and offsets Python defines, windows decided by the window policy."""

import numpy as np
import pytest

from monitor.window_state import (
    CLASS_OFFSET,
    CONF_OFFSET,
    JOIN_BUCKET_MS,
    JOIN_CLASS_RADIX,
    JOIN_FAN,
    JOIN_FIELD_WIDTH,
    JOIN_SERIES_RADIX,
    POS_OFFSET,
    TS_OFFSET,
    TS_WIDTH,
    WindowState,
    join_slots,
    join_value,
    version_groups,
)
from monitor.windows import WindowPolicy
from shared.events import PredictionBatch
from shared.ids import ID_LENGTH, new_prediction_ids
from shared.keys import Keys

T0 = 1_700_000_000_123


def _batch(versions: list[str], classes: list[int], step_ms: int = 1) -> PredictionBatch:
    n = len(versions)
    probs = np.full((n, 10), 0.05, dtype=np.float32)
    probs[:, 0] = 0.55
    times = [T0 + i * step_ms for i in range(n)]
    return PredictionBatch(
        ids=[new_prediction_ids(1, t)[0] for t in times],
        timestamps_ms=np.array(times, dtype=np.int64),
        model_versions=versions,
        features=np.zeros((n, 4), dtype=np.float32),
        classes=np.array(classes, dtype=np.int64),
        probabilities=probs,
    )


def _state(policy: WindowPolicy) -> WindowState:
    return WindowState(client=_NoRedis(), keys=Keys("m"), policy=policy, retention_s=60)  # type: ignore[arg-type]


class _NoRedis:
    def register_script(self, script: str) -> None:
        return None


def test_columns_are_fixed_width_with_their_offsets() -> None:
    batch = _batch(["1", "1", "1"], [0, 7, 12])
    keys, args = _state(WindowPolicy(step=100, size=100)).prediction_call(
        batch, [b"\0" * 16] * 3, ("stream", "group", [b"1-0", b"2-0", b"3-0"]), counter=250, ordinal=3)
    slots = join_slots(batch.ids, 4_096)
    assert args[:5] == ["count", 3, len(slots.buckets), 1, 250]
    assert args[7:9] == [JOIN_FIELD_WIDTH, TS_WIDTH]
    assert args[15:17] == ["2", "300"]  # counter 250: window 2, full at 300
    bucket_positions, window_positions, ids, ts, classes, confidence, versions, rows = args[17:25]
    assert bucket_positions == b"".join(str(1 + p + POS_OFFSET).encode() for p in slots.position.tolist())
    assert window_positions == b""
    # the join fields: each id's last 13 bytes (the bucket implies the stamp's first 3)
    assert ids == b"".join(bytes.fromhex(i)[3:] for i in batch.ids) and len(ids) == 3 * JOIN_FIELD_WIDTH
    assert ts == b"".join(str(t + TS_OFFSET).encode() for t in batch.timestamps_ms)
    assert classes == b"100000100007100012" and CLASS_OFFSET == 100_000
    assert confidence == b"155" * 3 and CONF_OFFSET == 100  # top probability 0.55 -> bucket 55
    assert versions == "1"  # the one version of the call: its series
    # each row: its features' bytes as given, then its predicted class as one more float32
    assert rows == b"".join(b"\0" * 16 + np.float32(c).tobytes() for c in (0, 7, 12))
    # then the window size and the epoch expected (windows of 100 from 0)
    assert args[25:] == ["group", b"1-0,2-0,3-0", JOIN_CLASS_RADIX, 3, JOIN_SERIES_RADIX, 100, 0, 0]
    k, s1 = Keys("m"), Keys("m", "1")
    bucket = T0 // JOIN_BUCKET_MS
    assert keys[:12] == ["stream", s1.ingested, s1.windows_to_report, s1.windows_open, s1.windows_closed_upto,
                         s1.windows_late, s1.windows_index, k.confusion_total, k.label_delays_total,
                         s1.version_confusion_total, s1.version_label_delays_total, s1.windows_epoch]
    assert all(key.startswith("driftwatch:{m}:v:1:") for key in keys[1:7] + keys[9:12])
    assert set(slots.buckets) == {bucket}
    end = 12 + 3 * len(slots.buckets)
    expected_join = [(k.joined_predictions(bucket, s), k.joined_labels(bucket, s), k.waiting_labels(bucket))
                     for s in slots.shards]
    assert keys[12:end] == [key for triple in expected_join for key in triple]
    assert keys[end:] == [s1.window_rows(2), s1.window_classes(2), s1.window_confidence(2), s1.confusion(2),
                          s1.window_label_delays(2), s1.window_meta(2)]


def test_time_windows_come_from_the_policy_with_a_position_per_event() -> None:
    batch = _batch(["1"] * 4, [0] * 4, step_ms=40_000)  # 0, 40, 80, 120 s after T0
    policy = WindowPolicy("time", seconds=60)
    keys, args = _state(policy).prediction_call(batch, [b"\0" * 16] * 4, ordinal=1)
    slots = policy.slots_of(batch.timestamps_ms).tolist()
    distinct = sorted(set(slots))
    assert args[0] == "time" and args[3] == len(distinct) and args[4] == -1
    assert args[15] == ",".join(map(str, distinct))
    positions = [distinct.index(s) + 1 + POS_OFFSET for s in slots]
    assert args[18] == b"".join(str(p).encode() for p in positions)
    assert keys[-6:] == [Keys("m", "1").window_rows(distinct[-1]), *keys[-5:]]


def test_a_call_holds_one_version_and_a_batch_splits_by_version_in_order() -> None:
    with pytest.raises(ValueError, match="one model version"):
        _state(WindowPolicy()).prediction_call(_batch(["1", "2"], [0, 0]), [b"\0" * 16] * 2, ordinal=1)
    assert [(v, rows.tolist()) for v, rows in version_groups(["2", "1", "2", "3", "1"])] == [
        ("2", [0, 2]), ("1", [1, 4]), ("3", [3])]
    assert [(v, rows.tolist()) for v, rows in version_groups([b"1"] * 3)] == [(b"1", [0, 1, 2])]


def test_join_values_name_the_series_and_stay_small() -> None:
    """Series, window and class in one integer while the ordinal and class fit their radixes;
    text past them. A series' first 128 windows stay 24-bit listpack integers, its first 32,768 32-bit."""
    assert int(join_value(JOIN_SERIES_RADIX - 1, 127, JOIN_CLASS_RADIX - 1)) < 2**23
    assert int(join_value(JOIN_SERIES_RADIX - 1, 32_767, JOIN_CLASS_RADIX - 1)) < 2**31
    assert join_value(JOIN_SERIES_RADIX, 5, 1) == f"5:1:{JOIN_SERIES_RADIX}".encode()
    assert join_value(2, 5, JOIN_CLASS_RADIX) == f"5:{JOIN_CLASS_RADIX}:2".encode()


def test_ids_of_the_wrong_width_are_refused() -> None:
    batch = _batch(["1"], [0])
    object.__setattr__(batch, "ids", ["short"])
    with pytest.raises(ValueError, match=f"{ID_LENGTH} characters"):
        _state(WindowPolicy()).prediction_call(batch, [b"\0" * 16], ordinal=1)


def test_join_slots_spread_one_millisecond_over_the_fan_and_keep_time_slices_apart() -> None:
    """A burst sharing one stamp spreads over JOIN_FAN hashes; ids far apart in the hour never share one;
    key and field together give the id back."""
    burst = new_prediction_ids(4_000, T0)
    slots = join_slots(burst, 4_096)
    assert len(slots.shards) == JOIN_FAN and np.bincount(slots.position).max() < 300
    later = new_prediction_ids(1, T0 + JOIN_BUCKET_MS // 2)
    assert not set(join_slots(later, 4_096).shards) & set(slots.shards)
    stamp = f"{T0:012x}"
    bucket = T0 // JOIN_BUCKET_MS
    assert all(slots.field(i).hex()[:6] == stamp[6:] and bytes.fromhex(burst[i])[3:] == slots.field(i)
               for i in range(0, 4_000, 997))
    assert slots.buckets[0] == bucket
    with pytest.raises(ValueError, match="multiple of 16"):
        join_slots(burst, 100)
