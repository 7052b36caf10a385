-- Time windows: close every open window up to ARGV[1] (its time and grace are
-- over: the stream went quiet, so no later event closed it), and refuse late
-- rows for them from then on (monitor/windows.py, WindowStore.close_elapsed).
--
-- KEYS: 1 open windows, 2 windows to report, 3 closed-upto. ARGV: 1 the newest
-- window to close. Answers the windows closed.
named('close_elapsed')

need_keys(3)
need_args(1, true)
local open, to_report, closed_upto = KEYS[1], KEYS[2], KEYS[3]
local last = int_arg(1, 'last window', -1)
local done = redis.call('ZRANGEBYSCORE', open, '-inf', last)
for _, w in ipairs(done) do
  redis.call('SADD', to_report, w)
end
redis.call('ZREMRANGEBYSCORE', open, '-inf', last)
local prev = tonumber(redis.call('GET', closed_upto) or '-1')
if last > prev then
  redis.call('SET', closed_upto, last)
end
return done
