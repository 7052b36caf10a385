-- Count and sliding windows: store a drift report and release the rows no later
-- window needs, atomically (monitor/windows.py, WindowStore.store).
--
-- KEYS: 1 reports (hash), 2 report index (sorted set), 3 windows to report;
-- then per member window, oldest first: its used-by set, its rows.
-- ARGV: 1 window, 2 span (windows that use a member's rows), 3 report JSON.
-- Answers the positions (1 = oldest member) of the members whose rows went.
named('store_report')

need_args(3, true)
local window = ARGV[1]
int_arg(1, 'window')
local span = int_arg(2, 'span', 1)
if #KEYS < 5 or (#KEYS - 3) % 2 ~= 0 then
  fail('expected 3 keys and a (used-by, rows) pair per member window, got ' .. #KEYS .. ' keys')
end

redis.call('HSET', KEYS[1], window, ARGV[3])
redis.call('ZADD', KEYS[2], window, window)
redis.call('SREM', KEYS[3], window)
local released = {}
for i = 4, #KEYS, 2 do
  local used, rows = KEYS[i], KEYS[i + 1]
  redis.call('SADD', used, window)
  if redis.call('SCARD', used) >= span then
    redis.call('DEL', rows, used)
    released[#released + 1] = (i - 2) / 2
  end
end
return released
