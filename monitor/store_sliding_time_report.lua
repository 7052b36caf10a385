-- Sliding time windows: store a drift report, retain its slot, and release the
-- rows of retained slots that no report can need any more: every slot that
-- could use them (j .. j + span - 1) is closed, and none of those waits for its
-- report (monitor/windows.py, WindowStore.store).
--
-- KEYS: 1 reports, 2 report index, 3 windows to report, 4 retained slots,
-- 5 closed-upto; then the rows of each candidate slot.
-- ARGV: 1 window, 2 span, 3 report JSON, 4 the candidate slots (comma-separated,
-- in KEYS order): the retained slots as the caller read them, and the window.
-- Answers {1, released slots}; or {-1, {}} with nothing written when a slot to
-- release is not among the candidates (retained meanwhile): the caller retries.
named('store_sliding_time_report')

need_args(4, true)
if #KEYS < 5 then fail('expected at least 5 keys, got ' .. #KEYS) end
local window = int_arg(1, 'window')
local span = int_arg(2, 'span', 1)
local rows_of = {}
for i, slot in ipairs(int_list(ARGV[4], #KEYS - 5, 'candidate slots (ARGV[4])')) do rows_of[slot] = KEYS[5 + i] end

-- What this report releases, decided before any write (as if it were stored).
local function releasable()
  local limit = tonumber(redis.call('GET', KEYS[5]) or '-1') - span + 1
  local slots, seen = {}, {}
  for _, j in ipairs(redis.call('ZRANGEBYSCORE', KEYS[4], '-inf', limit)) do slots[#slots + 1] = tonumber(j) end
  if window <= limit then slots[#slots + 1] = window end
  local release = {}
  for _, j in ipairs(slots) do
    if not seen[j] then
      seen[j] = true
      local needed = false
      for k = j, j + span - 1 do  -- closed (k <= closed-upto), so never open
        if k ~= window and redis.call('SISMEMBER', KEYS[3], k) == 1 then
          needed = true
          break
        end
      end
      if not needed then
        if not rows_of[j] then return nil end
        release[#release + 1] = j
      end
    end
  end
  return release
end

local release = releasable()
if not release then return {-1, {}} end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
redis.call('ZADD', KEYS[2], window, ARGV[1])
redis.call('SREM', KEYS[3], ARGV[1])
redis.call('ZADD', KEYS[4], window, ARGV[1])
for _, j in ipairs(release) do
  redis.call('DEL', rows_of[j])
  redis.call('ZREM', KEYS[4], j)
end
return {1, release}
