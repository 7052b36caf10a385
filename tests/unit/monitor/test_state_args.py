"""The ingest script's packed columns: fixed widths the Lua slices by position."""

import numpy as np
import pytest

from monitor.window_state import CLASS_OFFSET, CONF_OFFSET, TS_OFFSET, WindowState, _packed_versions
from shared.events import PredictionBatch
from shared.keys import Keys


def _batch(versions: list[str], classes: list[int]) -> PredictionBatch:
    n = len(versions)
    probs = np.full((n, 10), 0.05, dtype=np.float32)
    probs[:, 0] = 0.55
    return PredictionBatch(
        ids=[f"{i:032x}" for i in range(n)],
        timestamps_ms=np.array([1_700_000_000_123 + i for i in range(n)], dtype=np.int64),
        model_versions=versions,
        features=np.zeros((n, 4), dtype=np.float32),
        classes=np.array(classes, dtype=np.int64),
        probabilities=probs,
    )


def _state() -> WindowState:
    return WindowState(client=_NoRedis(), keys=Keys("m"), window_size=100, retention_s=60)  # type: ignore[arg-type]


class _NoRedis:
    def register_script(self, script: str) -> None:
        return None


def test_columns_are_fixed_width_with_their_offsets() -> None:
    batch = _batch(["1", "1", "1"], [0, 7, 12])
    args = _state().prediction_args(batch, [b"\0" * 16] * 3, ("stream", "group", [b"1-0", b"2-0", b"3-0"]))
    ids, ts, classes, confidence, versions, rows = args[6:12]
    assert ids == "".join(batch.ids) and len(ids) == 3 * 32
    assert ts == b"".join(str(t + TS_OFFSET).encode() for t in batch.timestamps_ms)
    assert classes == b"100000100007100012" and all(c >= CLASS_OFFSET for c in [100000])
    assert confidence == b"155" * 3 and CONF_OFFSET == 100  # top probability 0.55 -> bucket 55
    assert versions == "1\x1f"  # one version for the whole batch
    assert rows == b"\0" * 48
    assert args[12:15] == ["stream", "group", b"1-0,2-0,3-0"]


def test_mixed_versions_travel_one_per_event() -> None:
    assert _packed_versions(["1", "2", "1"]) == "1\x1f2\x1f1\x1f"


def test_ids_of_the_wrong_width_are_refused() -> None:
    batch = _batch(["1"], [0])
    object.__setattr__(batch, "ids", ["short"])
    with pytest.raises(ValueError, match="32 characters"):
        _state().prediction_args(batch, [b"\0" * 16])
