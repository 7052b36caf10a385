-- Ingest one batch of labels: each is kept the first time (HSETNX) and joined to
-- its prediction if that arrived already (see monitor/window_state.py, which
-- builds every argument).
--
-- A prediction's join value names its version's series (by ordinal) and window;
-- the label is counted in that window and in that version's totals, and in the
-- model's totals over every version.
--
-- KEYS: 1 feedback counts, 2 confusion total, 3 label-delay total (every version);
-- then per join bucket (label, pred, waiting); then per series window (confusion,
-- label-delay, its version's confusion total, its version's label-delay total).
-- ARGV: events, buckets, windows, join TTL, the series windows as
-- "ordinal/window" (comma-separated), the join class radix, the join series
-- radix, then per event: the id's join field, label, feedback time, prediction
-- time (ms), bucket position.
--
-- The caller read the predictions' windows before the call; a prediction that
-- arrived since, in a window not passed, makes the script write nothing and
-- answer -1: the caller reads again and retries.
-- uses: label_delay.lua
named('ingest_feedback')

local FIXED_KEYS, BUCKET_KEYS, WINDOW_KEYS, PER_EVENT, FIXED_ARGS = 3, 3, 4, 5, 7

local function read_args()
  need_args(FIXED_ARGS)
  local a = {count = int_arg(1, 'events', 1), buckets = int_arg(2, 'buckets', 1), windows = int_arg(3, 'windows'),
             ttl = int_arg(4, 'join TTL', 1), radix = int_arg(6, 'join class radix', 2),
             series = int_arg(7, 'join series radix', 2)}
  need_args(FIXED_ARGS + PER_EVENT * a.count, true)
  need_keys(FIXED_KEYS + BUCKET_KEYS * a.buckets + WINDOW_KEYS * a.windows)
  a.position_of_window = {}
  local j = 0
  for id in string.gmatch(ARGV[5], '[^,]+') do
    if not string.match(id, '^%d+/%-?%d+$') then
      fail('series windows (ARGV[5]) hold ' .. id .. ', not ordinal/window')
    end
    j = j + 1
    a.position_of_window[id] = j
  end
  if j ~= a.windows then fail('series windows (ARGV[5]) must hold ' .. a.windows .. ', got ' .. j) end
  return a
end

local function event(a, k)
  local i = FIXED_ARGS + PER_EVENT * (k - 1)
  local b = int_arg(i + 5, 'bucket position', 1)
  if b > a.buckets then fail('bucket position ' .. b .. ' outside 1..' .. a.buckets) end
  return {id = ARGV[i + 1], label = ARGV[i + 2], feedback_ts = int_arg(i + 3, 'feedback time'),
          predicted_ts = int_arg(i + 4, 'prediction time'), bucket = b}
end

local function bucket_key(b, which)  -- 1 label, 2 pred, 3 waiting
  return KEYS[FIXED_KEYS + BUCKET_KEYS * (b - 1) + which]
end

local function window_key(a, j, which)  -- 1 confusion, 2 label-delay, 3 and 4 its version's totals
  return KEYS[FIXED_KEYS + BUCKET_KEYS * a.buckets + WINDOW_KEYS * (j - 1) + which]
end

-- Each event with its prediction's window position and class, or nil when the
-- prediction has not arrived; nil overall when a window was not passed.
local function read_predictions(a)
  local events = {}
  for k = 1, a.count do
    local e = event(a, k)
    local pred = redis.call('HGET', bucket_key(e.bucket, 2), e.id)
    if pred then  -- see join_tag in ingest_predictions.lua
      local id
      local window, cls, ordinal = string.match(pred, '^(%-?%d+):(%d+):(%d+)$')
      if window then
        id, e.class = ordinal .. '/' .. window, cls
      else
        local packed = tonumber(pred)
        local series_window = math.floor(packed / a.radix)
        local w = math.floor(series_window / a.series)
        e.class = string.format('%d', packed - series_window * a.radix)
        id = string.format('%d/%d', series_window - w * a.series, w)
      end
      e.window = a.position_of_window[id]
      if not e.window then return nil end
    end
    events[k] = e
  end
  return events
end

local function join(a, e)
  local pair = e.label .. ':' .. e.class
  local d = delay_bucket(e.feedback_ts - e.predicted_ts)
  redis.call('HINCRBY', window_key(a, e.window, 1), pair, 1)
  redis.call('HINCRBY', window_key(a, e.window, 3), pair, 1)
  redis.call('HINCRBY', KEYS[2], pair, 1)
  redis.call('HINCRBY', window_key(a, e.window, 2), d, 1)
  redis.call('HINCRBY', window_key(a, e.window, 4), d, 1)
  redis.call('HINCRBY', KEYS[3], d, 1)
end

local a = read_args()
local events = read_predictions(a)
if not events then return -1 end
local new, duplicates = 0, 0
local touched, waiting = {}, {}  -- bucket -> true; -> labels left waiting
for _, e in ipairs(events) do
  if redis.call('HSETNX', bucket_key(e.bucket, 1), e.id, e.label .. ':' .. e.feedback_ts) == 1 then
    touched[e.bucket] = true
    new = new + 1
    if e.window then
      join(a, e)
    else
      waiting[e.bucket] = (waiting[e.bucket] or 0) + 1  -- expires with the bucket if its prediction never comes
    end
  else
    duplicates = duplicates + 1
  end
end
for b in pairs(touched) do redis.call('EXPIRE', bucket_key(b, 1), a.ttl) end
for b, n in pairs(waiting) do
  redis.call('INCRBY', bucket_key(b, 3), n)
  redis.call('EXPIRE', bucket_key(b, 3), a.ttl)
end
if new > 0 then redis.call('HINCRBY', KEYS[1], 'received', new) end
if duplicates > 0 then redis.call('HINCRBY', KEYS[1], 'duplicate', duplicates) end
return new
