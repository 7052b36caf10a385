-- Ingest one batch of predictions: window rows and counts, join state, and the
-- ack of the stream entries, in one atomic step (see monitor/window_state.py,
-- which builds every argument; the ARGV order is PREDICTION_ARGV there).
--
-- One call stores predictions of one model version, in that version's window
-- series (KEYS 2-7, 10-11 and the window keys are the series'; the join keys and
-- KEYS 8-9 are the model's). Each prediction's join value names the series by its
-- ordinal (ARGV[29]), since feedback carries no version.
--
-- KEYS: 1 the predictions stream (acked), 2 the ingest counter, 3 windows to
-- report, 4 open windows, 5 closed-upto, 6 late counts, 7 the window index,
-- 8 confusion total, 9 label-delay total (every version), 10 confusion total,
-- 11 label-delay total (this version), 12 the window epoch; then per join hash (pred, label,
-- waiting of its bucket); then per window (rows, classes, confidence, confusion,
-- label-delay, meta).
--
-- A model whose labels carry their prediction (registered with label_join
-- "carried") stores no join state: the call passes 0 buckets (and no bucket
-- keys or positions), and an event is new when this call acks its stream entry
-- (XACK answers 1 once per entry, whichever replica or redelivery comes first),
-- so exactly-once rests on the stream, not on the ids (README "Labels that
-- carry their prediction").
--
-- A label kept with the value '=' was counted from what it carried
-- (ingest_carried_feedback.lua): its prediction does not join it.
--
-- Python decides which windows and buckets exist: each event carries the
-- position of its bucket and (time windows) of its window in those lists.
-- Count windows depend on the ingest counter, so the caller passes the
-- counter value it expects and the windows that value leads to; if another
-- replica moved the counter, nothing is written and the answer is
-- {-1, {}, counter, start, first}: the caller retries with the windows of those values.
--
-- Count windows are numbered from the series' window epoch (KEYS[12]: mode,
-- size, start, first): prediction n (0-based, by the counter) goes to window
-- first + (n - start) // size. When the configured mode or size (ARGV[1],
-- ARGV[31]) differs from the epoch's, this call begins a new epoch at the
-- current counter, with the batch's first write: the count window in progress
-- (if it holds rows) is closed as it is, a short window reported with its real
-- rows, and the new epoch's first window is the next number, so numbers keep
-- increasing and never name a reported window again. A time epoch keeps in
-- 'first' the count window the next count epoch starts at; time predictions
-- move the counter but no count window. Time -> count closes the open time
-- windows (no count-mode reporter closes them by the clock). The caller passes
-- the epoch it expects (ARGV[32], ARGV[33]) with the counter, and every answer
-- ends with the current one: {new, closed, counter, start, first}.
-- uses: label_delay.lua
named('ingest_predictions')

local FIXED_KEYS = 12
local BUCKET_KEYS, WINDOW_KEYS = 3, 6
local CHUNK = 4000  -- unpack() is bounded by the Lua C stack

-- The arguments, checked before anything is read or written.
local function read_args()
  need_args(33, true)
  local a = {
    timed = ARGV[1] == 'time', count = int_arg(2, 'events', 1),
    buckets = int_arg(3, 'buckets', 0), windows = int_arg(4, 'windows', 1),
    expected = tonumber(ARGV[5]), ttl = int_arg(6, 'join TTL', 1), index_keep = int_arg(7, 'index size', 1),
    ID = int_arg(8, 'id width', 1), TS = int_arg(9, 'timestamp width', 1), TS_OFFSET = int_arg(10, 'timestamp offset'),
    CLASS = int_arg(11, 'class width', 1), CLASS_OFFSET = int_arg(12, 'class offset'),
    CONF = int_arg(13, 'confidence width', 2), POS = int_arg(14, 'position width', 1),
    POS_OFFSET = int_arg(15, 'position offset'),
    bucket_pos = ARGV[18], window_pos = ARGV[19], ids = ARGV[20], ts = ARGV[21], classes = ARGV[22],
    confidence = ARGV[23], version = ARGV[24], rows = ARGV[25], ack_group = ARGV[26], entry_ids = ARGV[27],
    RADIX = int_arg(28, 'join class radix', 2), ORDINAL = int_arg(29, 'series ordinal', 1),
    SERIES = int_arg(30, 'join series radix', 2), size = int_arg(31, 'count window size', 1),
    expected_start = int_arg(32, 'expected epoch start', 0), expected_first = int_arg(33, 'expected epoch first', 0),
  }
  if ARGV[1] ~= 'time' and ARGV[1] ~= 'count' then fail("mode (ARGV[1]) must be 'count' or 'time'") end
  if a.expected == nil then fail('expected counter (ARGV[5]) must be an integer') end
  need_keys(FIXED_KEYS + BUCKET_KEYS * a.buckets + WINDOW_KEYS * a.windows)
  local n = a.count
  a.window_index = int_list(ARGV[16], a.windows, 'window indexes (ARGV[16])')
  a.ends = a.timed and {} or int_list(ARGV[17], a.windows, 'window ends (ARGV[17])')
  a.join = a.buckets > 0
  if a.join then
    need_width(a.bucket_pos, n, a.POS, 'bucket positions (ARGV[18])')
    need_width(a.ids, n, a.ID, 'ids (ARGV[20])')
  elseif a.ack_group ~= '' then
    a.entry_list = {}
    for entry_id in string.gmatch(a.entry_ids, '[^,]+') do a.entry_list[#a.entry_list + 1] = entry_id end
    if #a.entry_list ~= n then fail('entry ids (ARGV[27]) must hold ' .. n .. ', got ' .. #a.entry_list) end
  end
  if a.timed then need_width(a.window_pos, n, a.POS, 'window positions (ARGV[19])') end
  need_width(a.ts, n, a.TS, 'timestamps (ARGV[21])')
  need_width(a.classes, n, a.CLASS, 'classes (ARGV[22])')
  need_width(a.confidence, n, a.CONF, 'confidences (ARGV[23])')
  if #a.rows == 0 or #a.rows % n ~= 0 then fail('rows (ARGV[25]) must be ' .. n .. ' rows of one width') end
  a.row_width = #a.rows / n
  if a.version == '' then fail('model version (ARGV[24]) must not be empty') end
  return a
end

local function bucket_key(a, j, which)  -- which: 1 pred, 2 label, 3 waiting
  if j < 1 or j > a.buckets then fail('bucket position ' .. j .. ' outside 1..' .. a.buckets) end
  return KEYS[FIXED_KEYS + BUCKET_KEYS * (j - 1) + which]
end

local function window_key(a, j, which)  -- 1 rows, 2 classes, 3 confidence, 4 confusion, 5 label-delay, 6 meta
  return KEYS[FIXED_KEYS + BUCKET_KEYS * a.buckets + WINDOW_KEYS * (j - 1) + which]
end

-- A fixed-width field of event k, as text.
local function field(column, width, k)
  return string.sub(column, (k - 1) * width + 1, k * width)
end

-- A fixed-width number with its offset, cached by its text (few distinct values
-- per batch); as text when `as_text`.
local function decoder(offset, as_text)
  local cache = {}
  return function(raw)
    local value = cache[raw]
    if not value then
      value = tonumber(raw)
      if value == nil then fail('not a number: ' .. raw) end
      value = value - offset
      if as_text then value = tostring(value) end
      cache[raw] = value
    end
    return value
  end
end

local function call_chunked(command, key, values)
  for first = 1, #values, CHUNK do
    redis.call(command, key, unpack(values, first, math.min(first + CHUNK - 1, #values)))
  end
end

local function add_counts(key, counts)
  for f, n in pairs(counts) do redis.call('HINCRBY', key, f, n) end
end

local function increment(counts, f)
  counts[f] = (counts[f] or 0) + 1
end

-- 1. New events (never joined, first in the batch) and the labels waiting for them.
local function find_new(a, bucket_of, ids)
  local members = {}
  for k = 1, a.count do
    ids[k] = field(a.ids, a.ID, k)
    local j = bucket_of[k]
    local list = members[j]
    if not list then list = {}; members[j] = list end
    list[#list + 1] = k
  end
  local is_new, waiting_label, seen, new_count = {}, {}, {}, 0
  for j, list in pairs(members) do
    local list_ids = {}
    for i, k in ipairs(list) do list_ids[i] = ids[k] end
    local known = redis.call('HMGET', bucket_key(a, j, 1), unpack(list_ids))
    local labels = redis.call('HMGET', bucket_key(a, j, 2), unpack(list_ids))
    for i, k in ipairs(list) do
      if not known[i] and not seen[list_ids[i]] then
        seen[list_ids[i]] = true
        is_new[k] = true
        if labels[i] and labels[i] ~= '=' then waiting_label[k] = labels[i] end  -- '=': counted as carried
        new_count = new_count + 1
      end
    end
  end
  return is_new, waiting_label, new_count
end

-- 1'. Without join state: an event is new when this call acks its entry first
-- (every event, for a call that acks nothing: tests and tools).
local function find_unacked(a)
  local is_new, new_count = {}, 0
  for k = 1, a.count do
    if not a.entry_list or redis.call('XACK', KEYS[1], a.ack_group, a.entry_list[k]) == 1 then
      is_new[k] = true
      new_count = new_count + 1
    end
  end
  return is_new, {}, new_count
end

-- The window (position in the lists) of each new event: time windows carry it;
-- count windows advance through their ends as the counter numbers the events.
local function assign_windows(a, is_new, first_number)
  local window_of, number, j = {}, first_number, 1
  local pos = decoder(a.POS_OFFSET)
  for k = 1, a.count do
    if is_new[k] then
      if a.timed then
        j = pos(field(a.window_pos, a.POS, k))
      else
        number = number + 1
        while j <= a.windows and number > a.ends[j] do j = j + 1 end
      end
      if j < 1 or j > a.windows then fail('event ' .. k .. ' has no window among the ' .. a.windows .. ' passed') end
      window_of[k] = j
    end
  end
  return window_of, number
end

-- A prediction's join value: (window * series radix + ordinal) * class radix +
-- class, one listpack integer (exact: far below 2^53); "window:class:ordinal" for a
-- class or ordinal past its radix (monitor/window_state.py: join_value).
local function join_tag(a, window, cls)
  local c = tonumber(cls)
  if c < a.RADIX and a.ORDINAL < a.SERIES then
    return string.format('%d', (window * a.SERIES + a.ORDINAL) * a.RADIX + c)
  end
  return string.format('%d', window) .. ':' .. cls .. ':' .. a.ORDINAL
end

local function new_window()
  return {rows = {}, classes = {}, confidence = {}, confusion = {}, delays = {}, tags = {}, filed = false}
end

-- One joined label: confusion pair and label-delay bucket, in its window and in total.
local function join_label(state, W, stored, cls, ts)
  local sep = string.find(stored, ':')
  local pair = string.sub(stored, 1, sep - 1) .. ':' .. cls
  local d = delay_bucket(tonumber(string.sub(stored, sep + 1)) - ts)
  increment(W.confusion, pair)
  increment(state.confusion_total, pair)
  increment(W.delays, d)
  increment(state.delay_total, d)
end

-- 2. Gather rows, counts and joins per window and per bucket, in batch order.
local function gather(a, ids, is_new, waiting_label, window_of, bucket_of, closed_upto)
  local state = {windows = {}, joins = {}, waited = {}, confusion_total = {}, delay_total = {}, late = 0}
  local class_name, ts_value = decoder(a.CLASS_OFFSET, true), decoder(a.TS_OFFSET)
  for k = 1, a.count do
    if is_new[k] then
      local j = window_of[k]
      local W = state.windows[j]
      if not W then W = new_window(); state.windows[j] = W end
      local ts_text = field(a.ts, a.TS, k)  -- fixed width: compares like the number
      local cls = class_name(field(a.classes, a.CLASS, k))
      if a.window_index[j] <= closed_upto then
        state.late = state.late + 1  -- its time window was reported: joined, not tested
      else
        W.filed = true
        W.rows[#W.rows + 1] = field(a.rows, a.row_width, k)
        increment(W.classes, cls)
        local conf = field(a.confidence, a.CONF, k)  -- '1' then the bucket; '2..': no probabilities (K = 0)
        if string.sub(conf, 1, 1) == '1' then increment(W.confidence, string.sub(conf, 2)) end
        if not W.first or ts_text < W.first then W.first = ts_text end
        if not W.last or ts_text > W.last then W.last = ts_text end
      end
      if a.join then
        local b = bucket_of[k]
        local fields = state.joins[b]
        if not fields then fields = {}; state.joins[b] = fields end
        local tag = W.tags[cls]
        if not tag then tag = join_tag(a, a.window_index[j], cls); W.tags[cls] = tag end
        fields[#fields + 1] = ids[k]
        fields[#fields + 1] = tag
        local stored = waiting_label[k]
        if stored then
          state.waited[b] = (state.waited[b] or 0) + 1
          join_label(state, W, stored, cls, ts_value(ts_text))
        end
      end
    end
  end
  return state
end

-- 3. Per window: one RPUSH of its rows, its counts summed, its bounds, (the series') version and kind.
local function write_window(a, j, W)
  if W.filed then
    call_chunked('RPUSH', window_key(a, j, 1), W.rows)
    redis.call('ZADD', KEYS[7], a.window_index[j], a.window_index[j])
    if a.timed then redis.call('ZADD', KEYS[4], a.window_index[j], a.window_index[j]) end
  end
  add_counts(window_key(a, j, 2), W.classes)
  add_counts(window_key(a, j, 3), W.confidence)
  add_counts(window_key(a, j, 4), W.confusion)
  add_counts(window_key(a, j, 5), W.delays)
  if W.first then
    local meta = window_key(a, j, 6)
    local first, last = tonumber(W.first) - a.TS_OFFSET, tonumber(W.last) - a.TS_OFFSET
    local known = redis.call('HMGET', meta, 'first_ts', 'last_ts')
    if (not known[1]) or first < tonumber(known[1]) then redis.call('HSET', meta, 'first_ts', first) end
    if (not known[2]) or last > tonumber(known[2]) then redis.call('HSET', meta, 'last_ts', last) end
    -- 'count' or 'time': reads of "the newest windows" skip windows of the other kind, left
    -- in the series by an earlier DRIFTWATCH_WINDOW_MODE (monitor/windows.py, WindowIndex).
    redis.call('HSET', meta, 'model_version', a.version, 'mode', ARGV[1])
  end
end

-- Time windows: predictions in a newer slot close the older open ones (events
-- arrive roughly in time order; the reporter also closes slots whose time passed).
local function close_older_slots(a, state, closed_upto, closed)
  if state.late > 0 then redis.call('HINCRBY', KEYS[6], 'predictions', state.late) end
  local newest = closed_upto
  for j in pairs(state.windows) do newest = math.max(newest, a.window_index[j]) end
  for _, w in ipairs(redis.call('ZRANGEBYSCORE', KEYS[4], '-inf', '(' .. newest)) do
    redis.call('SADD', KEYS[3], w)
    closed[#closed + 1] = tonumber(w)
  end
  redis.call('ZREMRANGEBYSCORE', KEYS[4], '-inf', '(' .. newest)
  if newest - 1 > closed_upto then redis.call('SET', KEYS[5], newest - 1) end
end

local function write_joins(a, state)
  for b, joined in pairs(state.waited) do redis.call('DECRBY', bucket_key(a, b, 3), joined) end
  for b, fields in pairs(state.joins) do
    local pred = bucket_key(a, b, 1)
    call_chunked('HSET', pred, fields)
    redis.call('EXPIRE', pred, a.ttl)
  end
  add_counts(KEYS[8], state.confusion_total)
  add_counts(KEYS[9], state.delay_total)
  add_counts(KEYS[10], state.confusion_total)
  add_counts(KEYS[11], state.delay_total)
end

local function ack(a)
  if a.ack_group == '' then return end
  local entry_ids = {}
  for entry_id in string.gmatch(a.entry_ids, '[^,]+') do entry_ids[#entry_ids + 1] = entry_id end
  for first = 1, #entry_ids, CHUNK do
    redis.call('XACK', KEYS[1], a.ack_group, unpack(entry_ids, first, math.min(first + CHUNK - 1, #entry_ids)))
  end
end

-- The series' window epoch, a new one when the configured mode or size differs from it (see
-- the header); answers start, first, and (a new epoch) the list of windows it closes.
-- Nothing is written here: a new epoch is recorded by save_epoch with the batch's first write
-- (a refused call writes nothing; a retried one finds the same epoch again).
local function window_epoch(a, counter)
  local mode, size = a.timed and 'time' or 'count', a.timed and 0 or a.size
  local e = redis.call('HMGET', KEYS[12], 'mode', 'size', 'start', 'first')
  local closed, next_first
  if not e[1] then
    -- No epoch: a new series, or one filed before epochs were recorded. Count: windows of
    -- the configured size from 0, as they were numbered then. Time: any count window used
    -- lies below the counter, so the next count epoch starts past it.
    if not a.timed then return 0, 0, {} end
    closed, next_first = {}, counter
  else
    local start, first = tonumber(e[3]), tonumber(e[4])
    if e[1] == mode and tonumber(e[2]) == size then return start, first, nil end
    closed = {}
    if e[1] == 'time' then
      next_first = first
      closed = redis.call('ZRANGE', KEYS[4], 0, -1)
      closed.slots = true
    else
      local old_size = tonumber(e[2])
      local w, filled = first + math.floor((counter - start) / old_size), (counter - start) % old_size
      next_first = w
      if filled > 0 then closed, next_first = {w}, w + 1 end  -- the window in progress: closed short
    end
  end
  return counter, next_first, closed
end

local function save_epoch(a, start, first, closed)
  redis.call('HSET', KEYS[12], 'mode', a.timed and 'time' or 'count', 'size', a.timed and 0 or a.size,
             'start', start, 'first', first)
  local newest = -1
  for _, w in ipairs(closed) do
    redis.call('SADD', KEYS[3], w)
    newest = math.max(newest, tonumber(w))
  end
  if closed.slots and #closed > 0 then  -- time windows closed: later rows for them are late
    redis.call('DEL', KEYS[4])
    if newest > tonumber(redis.call('GET', KEYS[5]) or '-1') then redis.call('SET', KEYS[5], newest) end
  end
end

local a = read_args()
local counter = tonumber(redis.call('GET', KEYS[2]) or '0')
local epoch_start, epoch_first, switch_closed = window_epoch(a, counter)  -- switch_closed: nil = no new epoch
if not a.timed and (counter ~= a.expected or epoch_start ~= a.expected_start or epoch_first ~= a.expected_first) then
  return {-1, {}, counter, epoch_start, epoch_first}
end
local closed = {}

local bucket_of, pos = {}, decoder(a.POS_OFFSET)
local ids = {}
local is_new, waiting_label, new_count
if a.join then
  for k = 1, a.count do bucket_of[k] = pos(field(a.bucket_pos, a.POS, k)) end
  is_new, waiting_label, new_count = find_new(a, bucket_of, ids)
else
  is_new, waiting_label, new_count = find_unacked(a)
end
if new_count == 0 then ack(a); return {0, {}, counter, epoch_start, epoch_first} end

local window_of, last_number = assign_windows(a, is_new, counter)
if switch_closed ~= nil then
  save_epoch(a, epoch_start, epoch_first, switch_closed)
  for _, w in ipairs(switch_closed) do closed[#closed + 1] = tonumber(w) end
end
redis.call('INCRBY', KEYS[2], new_count)
local closed_upto = a.timed and tonumber(redis.call('GET', KEYS[5]) or '-1') or -1
local state = gather(a, ids, is_new, waiting_label, window_of, bucket_of, closed_upto)
for j, W in pairs(state.windows) do
  write_window(a, j, W)
  if not a.timed and a.ends[j] > counter and a.ends[j] <= last_number then
    redis.call('SADD', KEYS[3], a.window_index[j])  -- filled by this batch
    closed[#closed + 1] = a.window_index[j]
  end
end
if a.timed then close_older_slots(a, state, closed_upto, closed) end
redis.call('ZREMRANGEBYRANK', KEYS[7], 0, -a.index_keep - 1)
write_joins(a, state)
ack(a)
return {new_count, closed, counter + new_count, epoch_start, epoch_first}
