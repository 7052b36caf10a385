"""Window and join state, updated atomically inside Redis.

Every change to the monitor's counts happens in one of two Lua scripts, each
run once per batch of stream entries:

- a prediction is counted only if its id was never seen (``HEXISTS`` on the
  join hash), so a redelivered entry changes nothing;
- a label is kept only the first time (``HSETNX``), and joined to its
  prediction whichever arrives second.

Because the state lives in Redis and the scripts are atomic, any number of
monitor replicas in one consumer group build one set of windows: replica A's
events and replica B's events land in the same window counter. A monitor
killed between two batches loses nothing: it acked only what the scripts had
stored, and the rest is redelivered.

Join state is filed by the prediction's time bucket (read from the id) with a
TTL, so it is bounded by the retention, not by traffic since the start.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import redis.asyncio as aioredis

from shared.events import FeedbackBatch, PredictionBatch
from shared.keys import Keys

JOIN_BUCKET_MS = 3_600_000

# Label delays are counted in quarter-octave buckets of seconds (bucket b holds
# delays in [2^(b/4) - 1, 2^((b+1)/4) - 1) s): a median or p95 read back is
# within 9% of the truth, from a hash of a few dozen fields per window.
_DELAY_BUCKET = """
local function delay_bucket(delay_ms)
  if delay_ms < 0 then delay_ms = 0 end
  return math.floor(4 * math.log(delay_ms / 1000 + 1) / math.log(2))
end
"""

_INGEST_PREDICTIONS = _DELAY_BUCKET + """
local prefix = ARGV[1]
local size = tonumber(ARGV[2])
local ttl = tonumber(ARGV[3])
local bucket_ms = tonumber(ARGV[4])
local new = 0
local closed = {}
for i = 5, #ARGV, 6 do
  local id, ts, mv, cls, x, conf = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3], ARGV[i + 4], ARGV[i + 5]
  local bucket = math.floor(tonumber(string.sub(id, 1, 12), 16) / bucket_ms)
  local join = prefix .. ':join:' .. bucket
  if redis.call('HEXISTS', join .. ':pred', id) == 0 then
    local n = redis.call('INCR', prefix .. ':ingested')
    local w = math.floor((n - 1) / size)
    local wk = prefix .. ':window:' .. w
    redis.call('RPUSH', wk .. ':rows', x)
    redis.call('HINCRBY', wk .. ':classes', cls, 1)
    redis.call('HINCRBY', wk .. ':confidence', conf, 1)
    local first = redis.call('HGET', wk .. ':meta', 'first_ts')
    if (not first) or tonumber(ts) < tonumber(first) then
      redis.call('HSET', wk .. ':meta', 'first_ts', ts)
    end
    local last = redis.call('HGET', wk .. ':meta', 'last_ts')
    if (not last) or tonumber(ts) > tonumber(last) then
      redis.call('HSET', wk .. ':meta', 'last_ts', ts)
    end
    redis.call('HSET', wk .. ':meta', 'model_version', mv)
    redis.call('HSET', join .. ':pred', id, w .. ':' .. cls)
    redis.call('EXPIRE', join .. ':pred', ttl)
    local stored = redis.call('HGET', join .. ':label', id)
    if stored then
      local sep = string.find(stored, ':')
      local label, feedback_ts = string.sub(stored, 1, sep - 1), tonumber(string.sub(stored, sep + 1))
      redis.call('HINCRBY', wk .. ':confusion', label .. ':' .. cls, 1)
      redis.call('HINCRBY', prefix .. ':confusion:total', label .. ':' .. cls, 1)
      local d = delay_bucket(feedback_ts - tonumber(ts))
      redis.call('HINCRBY', wk .. ':label-delay', d, 1)
      redis.call('HINCRBY', prefix .. ':label-delay:total', d, 1)
    end
    if n % size == 0 then
      redis.call('SADD', prefix .. ':windows:to-report', w)
      closed[#closed + 1] = w
    end
    new = new + 1
  end
end
return {new, closed}
"""

_INGEST_FEEDBACK = _DELAY_BUCKET + """
local prefix = ARGV[1]
local ttl = tonumber(ARGV[2])
local bucket_ms = tonumber(ARGV[3])
local counts = prefix .. ':feedback:counts'
local new = 0
for i = 4, #ARGV, 3 do
  local id, label, feedback_ts = ARGV[i], ARGV[i + 1], ARGV[i + 2]
  local predicted_ts = tonumber(string.sub(id, 1, 12), 16)
  local bucket = math.floor(predicted_ts / bucket_ms)
  local join = prefix .. ':join:' .. bucket
  if redis.call('HSETNX', join .. ':label', id, label .. ':' .. feedback_ts) == 1 then
    redis.call('EXPIRE', join .. ':label', ttl)
    redis.call('HINCRBY', counts, 'received', 1)
    new = new + 1
    local pred = redis.call('HGET', join .. ':pred', id)
    if pred then
      local sep = string.find(pred, ':')
      local w, cls = string.sub(pred, 1, sep - 1), string.sub(pred, sep + 1)
      redis.call('HINCRBY', prefix .. ':window:' .. w .. ':confusion', label .. ':' .. cls, 1)
      redis.call('HINCRBY', prefix .. ':confusion:total', label .. ':' .. cls, 1)
      local d = delay_bucket(tonumber(feedback_ts) - predicted_ts)
      redis.call('HINCRBY', prefix .. ':window:' .. w .. ':label-delay', d, 1)
      redis.call('HINCRBY', prefix .. ':label-delay:total', d, 1)
    end
  else
    redis.call('HINCRBY', counts, 'duplicate', 1)
  end
end
return new
"""


CONFIDENCE_BUCKETS = 100


def confidence_buckets(probabilities: npt.NDArray[np.float32]) -> npt.NDArray[np.int64]:
    """Top-class probability in percent buckets (0..99; 1.0 joins 99): what the
    label-free accuracy estimate reads, kept per window as a 100-field histogram."""
    top = probabilities.max(axis=1)
    return np.minimum((top * CONFIDENCE_BUCKETS).astype(np.int64), CONFIDENCE_BUCKETS - 1)


def delay_bucket_bounds_s(bucket: int) -> tuple[float, float]:
    """The delay range (seconds) of a label-delay bucket, as the Lua counts it."""
    return 2 ** (bucket / 4) - 1, 2 ** ((bucket + 1) / 4) - 1


@dataclass(frozen=True, slots=True)
class IngestResult:
    new: int
    closed_windows: list[int]


class WindowState:
    """The scripts, bound to one model's keys and window size."""

    def __init__(self, client: aioredis.Redis, keys: Keys, window_size: int, retention_s: int) -> None:
        self.client = client
        self.keys = keys
        self.window_size = window_size
        self.retention_s = retention_s
        self._ingest_predictions = client.register_script(_INGEST_PREDICTIONS)
        self._ingest_feedback = client.register_script(_INGEST_FEEDBACK)

    def prediction_args(self, batch: PredictionBatch, raw_features: list[bytes]) -> list[bytes | str | int]:
        args: list[bytes | str | int] = [self.keys.prefix, self.window_size, self.retention_s, JOIN_BUCKET_MS]
        confidence = confidence_buckets(batch.probabilities).tolist()
        for row in zip(batch.ids, batch.timestamps_ms.tolist(), batch.model_versions, batch.classes.tolist(),
                       raw_features, confidence, strict=True):
            args.extend(row)
        return args

    def feedback_args(self, batch: FeedbackBatch) -> list[bytes | str | int]:
        args: list[bytes | str | int] = [self.keys.prefix, self.retention_s, JOIN_BUCKET_MS]
        for row in zip(batch.ids, batch.labels.tolist(), batch.timestamps_ms.tolist(), strict=True):
            args.extend(row)
        return args

    async def ingest_predictions(self, batch: PredictionBatch, raw_features: list[bytes]) -> IngestResult:
        new, closed = await self._ingest_predictions(args=self.prediction_args(batch, raw_features))
        return IngestResult(int(new), [int(w) for w in closed])

    async def ingest_feedback(self, batch: FeedbackBatch) -> int:
        return int(await self._ingest_feedback(args=self.feedback_args(batch)))
