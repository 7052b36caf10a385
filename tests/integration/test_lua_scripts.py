"""Every Redis script: lint-clean (luacheck), and a bad call answers a clear error.

Each script runs against a real redis-server with wrong counts, wrong widths
and missing keys, and must answer the ``redis.error_reply`` of its argument
checks (naming the script and the argument) before any write, never a Lua
runtime error such as ``attempt to index a nil value``.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import msgpack
import numpy as np
import pytest
import redis

from monitor.window_state import SeriesWindow, WindowState
from monitor.windows import WindowPolicy
from shared.events import FeedbackBatch, PredictionBatch
from shared.keys import ALERT_LEADER, ALERT_RULES, Keys
from shared.redis_scripts import lint, lua_source, script_files

ROOT = Path(__file__).resolve().parents[2]
SCRIPTS = list(script_files(ROOT))
NAMES = [f"{package}/{name}" for package, name in SCRIPTS]
KEYS = Keys("lua-test")


def test_every_service_script_is_found() -> None:
    assert {name for _, name in SCRIPTS} >= {
        "ingest_predictions.lua", "ingest_feedback.lua", "ingest_carried_feedback.lua", "store_report.lua",
        "store_sliding_time_report.lua", "dead_letter.lua",
        "close_elapsed.lua", "write_entries.lua", "write_predictions.lua", "ensure_default_rules.lua",
        "renew_lease.lua", "release_lease.lua"}


@pytest.mark.skipif(shutil.which("luacheck") is None, reason="luacheck not installed (Debian package lua-check)")
@pytest.mark.parametrize(("package", "name"), SCRIPTS, ids=NAMES)
def test_luacheck_passes(package: str, name: str) -> None:
    """Linted as Redis runs it: the prelude, its libraries, then the script."""
    result = lint(ROOT, package, name)
    assert result.returncode == 0, result.stdout + result.stderr


def _run(client: redis.Redis, package: str, name: str, keys: list[str], args: list[object]) -> str:
    before = client.dbsize()
    with pytest.raises(redis.ResponseError) as raised:
        client.eval(lua_source(package, name), len(keys), *keys, *args)
    message = str(raised.value)
    script = name.removesuffix(".lua")
    assert message.startswith(f"{script}: "), message
    assert "attempt to" not in message and "user_script:1:" not in message, message
    assert client.dbsize() == before, f"{name} wrote before failing"
    return message


@pytest.mark.parametrize(("package", "name"), SCRIPTS, ids=NAMES)
def test_a_call_without_keys_or_arguments_is_refused_clearly(
    redis_client: redis.Redis, package: str, name: str
) -> None:
    message = _run(redis_client, package, name, [], [])
    assert "expected" in message


def _prediction_call(policy: WindowPolicy, counter: int = 0) -> tuple[list[str], list[object]]:
    n, at = 3, 1_700_000_000_000
    probs = np.full((n, 4), 0.25, dtype=np.float32)
    batch = PredictionBatch(
        ids=[f"{at:012x}" + "00" * 9 + f"{16 * i + 1:02x}" for i in range(n)],  # one join hash (same fan)
        timestamps_ms=np.full(n, at, dtype=np.int64), model_versions=["1"] * n,
        features=np.zeros((n, 2), dtype=np.float32), classes=np.zeros(n, dtype=np.int64), probabilities=probs,
    )
    state = WindowState(_NoScripts(), KEYS, policy, retention_s=60)  # type: ignore[arg-type]
    keys, args = state.prediction_call(batch, [b"\0" * 8] * n, counter=counter, ordinal=1)
    return keys, list(args)


class _NoScripts:
    def register_script(self, script: str) -> None:
        return None


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (lambda keys, args: (keys[:-1], args), "keys"),
        (lambda keys, args: (keys, args[:-1]), "expected 33 arguments"),
        (lambda keys, args: (keys, [*args[:19], args[19][:-1], *args[20:]]), "ids (ARGV[20]) must be 3 values"),
        (lambda keys, args: (keys, [*args[:20], args[20] + b"1", *args[21:]]), "timestamps (ARGV[21])"),
        (lambda keys, args: (keys, [*args[:21], args[21][:-2], *args[22:]]), "classes (ARGV[22])"),
        (lambda keys, args: (keys, [*args[:24], args[24][:-1], *args[25:]]), "rows (ARGV[25])"),
        (lambda keys, args: (keys, ["sliding", *args[1:]]), "mode (ARGV[1])"),
        (lambda keys, args: (keys, [*args[:7], "wide", *args[8:]]), "id width (ARGV[8])"),
        (lambda keys, args: (keys, [*args[:15], "1,2", *args[16:]]), "window indexes (ARGV[16])"),
        (lambda keys, args: (keys, [*args[:23], "", *args[24:]]), "model version (ARGV[24])"),
        (lambda keys, args: (keys, [*args[:28], 0, *args[29:]]), "series ordinal (ARGV[29])"),
        (lambda keys, args: (keys, [*args[:29], 1, *args[30:]]), "join series radix (ARGV[30])"),
    ],
    ids=["missing-key", "missing-argument", "short-ids", "wide-timestamps", "short-classes", "ragged-rows",
         "unknown-mode", "non-numeric-width", "window-count", "no-version", "no-ordinal", "series-radix"],
)
def test_ingest_predictions_refuses_bad_calls(redis_client: redis.Redis, change, expected: str) -> None:  # type: ignore[no-untyped-def]
    keys, args = change(*_prediction_call(WindowPolicy(step=100, size=100)))
    assert expected in _run(redis_client, "monitor", "ingest_predictions.lua", keys, args)


def test_ingest_predictions_refuses_a_bucket_position_outside_the_call(redis_client: redis.Redis) -> None:
    keys, args = _prediction_call(WindowPolicy("time", seconds=60))
    args[17] = args[17][:-1] + b"9"  # the third event names bucket 9 of 1
    assert "bucket position 9 outside 1..1" in _run(redis_client, "monitor", "ingest_predictions.lua", keys, args)


def test_ingest_predictions_answers_retry_when_the_counter_moved(redis_client: redis.Redis) -> None:
    keys, args = _prediction_call(WindowPolicy(step=100, size=100), counter=0)
    redis_client.set(KEYS.for_version("1").ingested, 7)  # another replica ingested 7
    new, closed, counter, start, first = redis_client.eval(
        lua_source("monitor", "ingest_predictions.lua"), len(keys), *keys, *args)
    assert (new, closed, counter, start, first) == (-1, [], 7, 0, 0)
    assert redis_client.dbsize() == 1  # nothing written


def _feedback_call() -> tuple[list[str], list[object]]:
    stamp = f"{1_700_000_000_000:012x}"  # both ids in one join hash: same millisecond, same fan (last byte % 16)
    batch = FeedbackBatch(ids=[stamp + "00" * 9 + "01", stamp + "00" * 9 + "11"], labels=np.array([1, 2]),
                          timestamps_ms=np.array([1_700_000_001_000] * 2, dtype=np.int64))
    state = WindowState(_NoScripts(), KEYS, WindowPolicy(), retention_s=60)  # type: ignore[arg-type]
    keys, args = state.feedback_call(batch, windows=[SeriesWindow("1", 1, 4)])
    return keys, list(args)


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (lambda keys, args: (keys[:-1], args), "expected 10 keys"),
        (lambda keys, args: (keys, args[:-1]), "expected 17 arguments"),
        (lambda keys, args: (keys, [*args[:11], 2, *args[12:]]), "bucket position 2 outside 1..1"),
        (lambda keys, args: (keys, [*args[:9], "soon", *args[10:]]), "feedback time (ARGV[10])"),
        (lambda keys, args: (keys, [*args[:4], "1/4,1/5", *args[5:]]), "series windows (ARGV[5]) must hold 1"),
        (lambda keys, args: (keys, [*args[:4], "4", *args[5:]]), "not ordinal/window"),
        (lambda keys, args: (keys, [*args[:6], 1, *args[7:]]), "join series radix (ARGV[7])"),
    ],
    ids=["missing-key", "missing-argument", "bucket-outside", "non-numeric-time", "window-count", "window-form",
         "series-radix"],
)
def test_ingest_feedback_refuses_bad_calls(redis_client: redis.Redis, change, expected: str) -> None:  # type: ignore[no-untyped-def]
    keys, args = change(*_feedback_call())
    assert expected in _run(redis_client, "monitor", "ingest_feedback.lua", keys, args)


def _carried_feedback_call() -> tuple[list[str], list[object]]:
    stamp = f"{1_700_000_000_000:012x}"  # both ids in one join hash
    batch = FeedbackBatch(ids=[stamp + "00" * 9 + "01", stamp + "00" * 9 + "11"], labels=np.array([1, 2]),
                          timestamps_ms=np.array([1_700_000_001_000] * 2, dtype=np.int64),
                          predicted=np.array([1, 0]), predicted_ms=np.array([1_700_000_000_000] * 2),
                          versions=["1", "1"])
    state = WindowState(_NoScripts(), KEYS, WindowPolicy(), retention_s=60)  # type: ignore[arg-type]
    keys, args = state.carried_feedback_call(batch, ["1"], [SeriesWindow("1", 0, 4)], np.array([1, 1]),
                                             np.array([1, 0]))
    return keys, list(args)


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (lambda keys, args: (keys[:-1], args), "expected 8 keys"),
        (lambda keys, args: (keys, args[:-1]), "expected 21 arguments"),
        (lambda keys, args: (keys, [*args[:10], 2, *args[11:]]), "bucket position 2 outside 1..1"),
        (lambda keys, args: (keys, [*args[:11], 2, *args[12:]]), "version position 2 outside 1..1"),
        (lambda keys, args: (keys, [*args[:12], 2, *args[13:]]), "window position 2 outside 0..1"),
        (lambda keys, args: (keys, [*args[:9], -1, *args[10:]]), "predicted class (ARGV[10])"),
        (lambda keys, args: (keys, [*args[:7], "soon", *args[8:]]), "feedback time (ARGV[8])"),
        (lambda keys, args: (keys, [*args[:6], "cat", *args[7:]]), "label (ARGV[7])"),
        (lambda keys, args: (keys, [*args[:5], "", *args[6:]]), "join field (ARGV[6])"),
        (lambda keys, args: (keys, [*args[:2], 0, *args[3:]]), "versions (ARGV[3])"),
    ],
    ids=["missing-key", "missing-argument", "bucket-outside", "version-outside", "window-outside", "negative-class",
         "non-numeric-time", "non-numeric-label", "empty-field", "no-version"],
)
def test_ingest_carried_feedback_refuses_bad_calls(redis_client: redis.Redis, change, expected: str) -> None:  # type: ignore[no-untyped-def]
    keys, args = change(*_carried_feedback_call())
    assert expected in _run(redis_client, "monitor", "ingest_carried_feedback.lua", keys, args)


def test_ingest_predictions_without_join_state_refuses_entry_ids_that_do_not_match(redis_client: redis.Redis) -> None:
    n, at = 3, 1_700_000_000_000
    batch = PredictionBatch(
        ids=[f"{at:012x}" + "00" * 9 + f"{i:02x}" for i in range(n)], timestamps_ms=np.full(n, at, dtype=np.int64),
        model_versions=["1"] * n, features=np.zeros((n, 2), dtype=np.float32), classes=np.zeros(n, dtype=np.int64),
        probabilities=np.full((n, 4), 0.25, dtype=np.float32),
    )
    state = WindowState(_NoScripts(), KEYS, WindowPolicy(step=100, size=100), retention_s=60)  # type: ignore[arg-type]
    ack = (KEYS.predictions, "monitor", [b"1-1", b"1-2"])  # two entry ids for three events
    keys, args = state.prediction_call(batch, [b"\0" * 8] * n, ack, ordinal=1, join=False)
    assert "entry ids (ARGV[27]) must hold 3, got 2" in _run(redis_client, "monitor", "ingest_predictions.lua", keys,
                                                              list(args))


def test_window_scripts_refuse_bad_calls(redis_client: redis.Redis) -> None:
    k = KEYS.for_version("1")
    head = [k.drift_reports, k.drift_index, k.windows_to_report]
    assert "(used-by, rows) pair" in _run(redis_client, "monitor", "store_report.lua",
                                          [*head, k.window_used_by(1)], [1, 2, "{}"])
    assert "span (ARGV[2])" in _run(redis_client, "monitor", "store_report.lua",
                                    [*head, k.window_used_by(1), k.window_rows(1)], [1, 0, "{}"])
    sliding = [*head, k.windows_retained, k.windows_closed_upto, k.window_rows(3)]
    assert "candidate slots (ARGV[4]) must hold 1" in _run(
        redis_client, "monitor", "store_sliding_time_report.lua", sliding, [3, 2, "{}", "2,3"])
    assert "last window (ARGV[1])" in _run(
        redis_client, "monitor", "close_elapsed.lua", [k.windows_open, k.windows_to_report, k.windows_closed_upto],
        ["yesterday"])


def test_dead_letter_script_refuses_bad_calls(redis_client: redis.Redis) -> None:
    keys = [KEYS.predictions, KEYS.dlq]
    assert "DLQ length (ARGV[2])" in _run(redis_client, "monitor", "dead_letter.lua", keys, ["monitor", 0])
    assert "even field count" in _run(redis_client, "monitor", "dead_letter.lua", keys,
                                      ["monitor", 100, "1-1", 2, "reason", "x", "1-2", 4, "reason", "y"])
    assert "field count of entry 1-1" in _run(redis_client, "monitor", "dead_letter.lua", keys,
                                              ["monitor", 100, "1-1"])


def test_publisher_scripts_refuse_bad_calls(redis_client: redis.Redis) -> None:
    marker = KEYS.publish_batch("ab")
    assert "entry 1 must be [a stream index in 2..2" in _run(
        redis_client, "model_service", "write_entries.lua", [marker, KEYS.predictions],
        [1000, 1000, msgpack.packb([[3, "f", "v"]], use_bin_type=False)])
    assert "MessagePack array" in _run(
        redis_client, "model_service", "write_entries.lua", [marker, KEYS.predictions], [1000, 1000, "not msgpack"])
    args = [1000, 1000, 2, 8, 8, "1", "m", "1", "a" * 64, "1,2", "0,1", b"\0" * 15, b"\0" * 16, 32,
            "v,id,ts,m,mv,x,y,p"]
    assert "features (ARGV[12]) must be 2 values of 8 bytes" in _run(
        redis_client, "model_service", "write_predictions.lua", [marker, KEYS.predictions], args)
    args[11], args[9] = b"\0" * 16, "1"
    assert "timestamps (ARGV[10]) must hold 2 values, got 1" in _run(
        redis_client, "model_service", "write_predictions.lua", [marker, KEYS.predictions], args)


def test_alert_scripts_refuse_bad_calls(redis_client: redis.Redis) -> None:
    assert "(name, rule) pairs" in _run(redis_client, "monitor.alerts", "ensure_default_rules.lua",
                                        [ALERT_RULES], ["#initialized", "rule-without-body"])
    assert "TTL (ms) (ARGV[2])" in _run(redis_client, "monitor.alerts", "renew_lease.lua",
                                        [ALERT_LEADER], ["me", "forever"])
    assert "expected 1 keys, got 2" in _run(redis_client, "monitor.alerts", "release_lease.lua",
                                            [ALERT_LEADER, ALERT_RULES], ["me"])


def test_series_ordinal_script_refuses_bad_calls_and_allocates_once(redis_client: redis.Redis) -> None:
    assert "expected 1 keys" in _run(redis_client, "shared", "series_ordinal.lua", [], ["v:1", "next", "n:", "1"])
    assert "expected 4 arguments" in _run(redis_client, "shared", "series_ordinal.lua", [KEYS.series], ["v:1"])
    source = lua_source("shared", "series_ordinal.lua")
    first = [redis_client.eval(source, 1, KEYS.series, f"v:{v}", "next", "n:", v) for v in ("a", "b", "a")]
    assert first == [1, 2, 1]
    assert redis_client.hgetall(KEYS.series) == {b"v:a": b"1", b"n:1": b"a", b"v:b": b"2", b"n:2": b"b",
                                                 b"next": b"2"}
