"""The ingest script against a real redis-server: mixed versions, atomic ack, redelivery."""

from __future__ import annotations

import time

import numpy as np
import redis.asyncio as aioredis

from monitor.window_state import WindowState
from monitor.windows import WindowPolicy
from shared.events import decode_predictions, encode_predictions
from shared.ids import new_prediction_ids
from shared.keys import CONSUMER_GROUP, Keys


async def test_one_script_stores_state_and_acks(aredis: aioredis.Redis) -> None:
    keys = Keys("state-test")
    await aredis.xgroup_create(keys.predictions, CONSUMER_GROUP, id="0", mkstream=True)
    n = 6
    x = np.arange(n * 4, dtype=np.float32).reshape(n, 4)
    probs = np.eye(10, dtype=np.float32)[[1, 2, 2, 3, 3, 3]]
    now = int(time.time() * 1000)
    entries = encode_predictions(new_prediction_ids(n, now), now, keys.model, "1", x, probs.argmax(1), probs)
    entries[-1][b"mv"] = b"2"  # the last event comes from a newer model version
    for entry in entries:
        await aredis.xadd(keys.predictions, entry)
    read = (await aredis.xreadgroup(CONSUMER_GROUP, "c", {keys.predictions: ">"}))[0][1]
    batch = decode_predictions([f for _, f in read])
    state = WindowState(aredis, keys, WindowPolicy(step=100, size=100), retention_s=600)
    ack = (keys.predictions, CONSUMER_GROUP, [entry_id for entry_id, _ in read])

    result = await state.ingest_predictions(batch, [f[b"x"] for _, f in read], ack)
    assert result.new == n
    assert (await aredis.xpending(keys.predictions, CONSUMER_GROUP))["pending"] == 0
    assert await aredis.hgetall(keys.window_classes(0)) == {b"1": b"1", b"2": b"2", b"3": b"3"}
    assert await aredis.hget(keys.window_meta(0), "model_version") == b"2"
    meta = await aredis.hgetall(keys.window_meta(0))
    assert int(meta[b"first_ts"]) == now and int(meta[b"last_ts"]) == now
    rows = await aredis.lrange(keys.window_rows(0), 0, -1)
    np.testing.assert_array_equal(np.frombuffer(b"".join(rows), dtype=np.float32).reshape(n, 4), x)

    again = await state.ingest_predictions(batch, [f[b"x"] for _, f in read], ack)  # a redelivery
    assert again.new == 0 and int(await aredis.get(keys.ingested)) == n
