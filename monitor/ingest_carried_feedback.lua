-- Ingest one batch of labels that carry their prediction's class and time: each
-- is counted the first time its id is seen, without reading any join state
-- (see monitor/window_state.py, which builds every argument and finds each
-- label's window from its prediction's time).
--
-- Exactly once: the label's id is marked in the label hash of its join bucket
-- with HSETNX, the per-LABEL marker by-id labels use too (expiring with the
-- bucket, after the join retention). So a re-sent or replayed label counts
-- once, a label already kept by id (joined, or waiting for its prediction) is
-- not counted again, and the marker's value '=' tells ingest_predictions.lua
-- not to join it when its prediction arrives later.
--
-- KEYS: 1 feedback counts, 2 confusion total, 3 label-delay total (every
-- version); then per join bucket its label hash; then per version its
-- confusion total and label-delay total; then per window (of a version's
-- series) its confusion and label-delay hashes.
-- ARGV: events, buckets, versions, windows, join TTL, then per event: the id's
-- join field, label, feedback time (ms), prediction time (ms), predicted class,
-- bucket position, version position, window position (0: none, counted in the
-- totals only).
-- uses: label_delay.lua
named('ingest_carried_feedback')

local FIXED_KEYS, VERSION_KEYS, WINDOW_KEYS, PER_EVENT, FIXED_ARGS = 3, 2, 2, 8, 5
local CARRIED = '='  -- the marker's value (ingest_predictions.lua skips it)

local function position(i, what, count, min)
  local p = int_arg(i, what, min)
  if p > count then fail(what .. ' ' .. p .. ' outside ' .. min .. '..' .. count) end
  return p
end

-- The arguments, every event checked before anything is written.
local function read_args()
  need_args(FIXED_ARGS)
  local a = {count = int_arg(1, 'events', 1), buckets = int_arg(2, 'buckets', 1),
             versions = int_arg(3, 'versions', 1), windows = int_arg(4, 'windows'), ttl = int_arg(5, 'join TTL', 1)}
  need_args(FIXED_ARGS + PER_EVENT * a.count, true)
  need_keys(FIXED_KEYS + a.buckets + VERSION_KEYS * a.versions + WINDOW_KEYS * a.windows)
  a.events = {}
  for k = 1, a.count do
    local i = FIXED_ARGS + PER_EVENT * (k - 1)
    if ARGV[i + 1] == '' then fail('join field (ARGV[' .. (i + 1) .. ']) must not be empty') end
    a.events[k] = {
      id = ARGV[i + 1], label = string.format('%d', int_arg(i + 2, 'label')),
      feedback_ts = int_arg(i + 3, 'feedback time'), predicted_ts = int_arg(i + 4, 'prediction time'),
      class = string.format('%d', int_arg(i + 5, 'predicted class')),
      bucket = position(i + 6, 'bucket position', a.buckets, 1),
      version = position(i + 7, 'version position', a.versions, 1),
      window = position(i + 8, 'window position', a.windows, 0),
    }
  end
  return a
end

local function version_key(a, v, which)  -- 1 confusion total, 2 label-delay total
  return KEYS[FIXED_KEYS + a.buckets + VERSION_KEYS * (v - 1) + which]
end

local function window_key(a, j, which)  -- 1 confusion, 2 label-delay
  return KEYS[FIXED_KEYS + a.buckets + VERSION_KEYS * a.versions + WINDOW_KEYS * (j - 1) + which]
end

local function increment(counts, key, f)
  local fields = counts[key]
  if not fields then fields = {}; counts[key] = fields end
  fields[f] = (fields[f] or 0) + 1
end

local a = read_args()
local counts, touched, new = {}, {}, 0  -- key -> field -> n; buckets marked
for _, e in ipairs(a.events) do
  if redis.call('HSETNX', KEYS[FIXED_KEYS + e.bucket], e.id, CARRIED) == 1 then
    touched[e.bucket] = true
    new = new + 1
    local pair, d = e.label .. ':' .. e.class, delay_bucket(e.feedback_ts - e.predicted_ts)
    increment(counts, KEYS[2], pair)
    increment(counts, KEYS[3], d)
    increment(counts, version_key(a, e.version, 1), pair)
    increment(counts, version_key(a, e.version, 2), d)
    if e.window > 0 then
      increment(counts, window_key(a, e.window, 1), pair)
      increment(counts, window_key(a, e.window, 2), d)
    end
  end
end
for key, fields in pairs(counts) do
  for f, n in pairs(fields) do redis.call('HINCRBY', key, f, n) end
end
for b in pairs(touched) do redis.call('EXPIRE', KEYS[FIXED_KEYS + b], a.ttl) end
if new > 0 then redis.call('HINCRBY', KEYS[1], 'received', new) end
if new < a.count then redis.call('HINCRBY', KEYS[1], 'duplicate', a.count - new) end
return new
