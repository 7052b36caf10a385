-- Ingest one batch of labels: each is kept the first time (HSETNX) and joined to
-- its prediction if that arrived already (see monitor/window_state.py, which
-- builds every argument).
--
-- KEYS: 1 feedback counts, 2 confusion total, 3 label-delay total; then per
-- join bucket (label, pred, waiting); then per window (confusion, label-delay).
-- ARGV: events, buckets, windows, join TTL, the window indexes (comma-separated),
-- the join class radix, then per event: the id's join field, label, feedback
-- time, prediction time (ms), bucket position.
--
-- The caller read the predictions' windows before the call; a prediction that
-- arrived since, in a window not passed, makes the script write nothing and
-- answer -1: the caller reads again and retries.
-- uses: label_delay.lua
named('ingest_feedback')

local FIXED_KEYS, BUCKET_KEYS, WINDOW_KEYS, PER_EVENT = 3, 3, 2, 5

local function read_args()
  need_args(6)
  local a = {count = int_arg(1, 'events', 1), buckets = int_arg(2, 'buckets', 1), windows = int_arg(3, 'windows'),
             ttl = int_arg(4, 'join TTL', 1), radix = int_arg(6, 'join class radix', 2)}
  need_args(6 + PER_EVENT * a.count, true)
  need_keys(FIXED_KEYS + BUCKET_KEYS * a.buckets + WINDOW_KEYS * a.windows)
  a.position_of_window = {}
  for j, w in ipairs(int_list(ARGV[5], a.windows, 'window indexes (ARGV[5])')) do a.position_of_window[w] = j end
  return a
end

local function event(a, k)
  local i = 6 + PER_EVENT * (k - 1)
  local b = int_arg(i + 5, 'bucket position', 1)
  if b > a.buckets then fail('bucket position ' .. b .. ' outside 1..' .. a.buckets) end
  return {id = ARGV[i + 1], label = ARGV[i + 2], feedback_ts = int_arg(i + 3, 'feedback time'),
          predicted_ts = int_arg(i + 4, 'prediction time'), bucket = b}
end

local function bucket_key(b, which)  -- 1 label, 2 pred, 3 waiting
  return KEYS[FIXED_KEYS + BUCKET_KEYS * (b - 1) + which]
end

local function window_key(a, j, which)  -- 1 confusion, 2 label-delay
  return KEYS[FIXED_KEYS + BUCKET_KEYS * a.buckets + WINDOW_KEYS * (j - 1) + which]
end

-- Each event with its prediction's window position and class, or nil when the
-- prediction has not arrived; nil overall when a window was not passed.
local function read_predictions(a)
  local events = {}
  for k = 1, a.count do
    local e = event(a, k)
    local pred = redis.call('HGET', bucket_key(e.bucket, 2), e.id)
    if pred then  -- window * radix + class, or "window:class" (see ingest_predictions.lua)
      local sep = string.find(pred, ':')
      local window
      if sep then
        window, e.class = tonumber(string.sub(pred, 1, sep - 1)), string.sub(pred, sep + 1)
      else
        local packed = tonumber(pred)
        window, e.class = math.floor(packed / a.radix), string.format('%d', packed % a.radix)
      end
      e.window = a.position_of_window[window]
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
  redis.call('HINCRBY', KEYS[2], pair, 1)
  redis.call('HINCRBY', window_key(a, e.window, 2), d, 1)
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
