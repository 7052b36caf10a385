-- Create or replace one alert rule unless creating it would pass the limit on
-- the number of rules, checked and written at once so concurrent creators
-- cannot pass it (monitor/alerts/store.py, limit monitor.alerts.rules.MAX_RULES).
--
-- KEYS: 1 the rules hash. ARGV: 1 rule name, 2 rule JSON, 3 the limit, 4 the marker field.
-- Answers 1 if created, 0 if replaced, -1 if the limit was reached (nothing written).
named('put_rule')

need_keys(1)
need_args(4)
local limit = tonumber(ARGV[3])
if not limit then fail('limit must be a number, got ' .. ARGV[3]) end
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0 then
  -- HLEN counts the marker field too.
  local rules = redis.call('HLEN', KEYS[1]) - redis.call('HEXISTS', KEYS[1], ARGV[4])
  if rules >= limit then return -1 end
end
local created = redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('HSET', KEYS[1], ARGV[4], '1')
return created
