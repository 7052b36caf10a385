-- Install the default alert rules only if the marker field was never set,
-- atomically: two replicas starting together install them once, and a crash
-- cannot leave the marker without them (monitor/alerts/store.py).
--
-- KEYS: 1 the rules hash. ARGV: 1 the marker field, then rule name, rule JSON, ...
-- Answers 1 if installed, 0 if rules were set before.
named('ensure_default_rules')

need_keys(1)
need_args(1)
if #ARGV % 2 ~= 1 then fail('expected the marker, then (name, rule) pairs; got ' .. #ARGV .. ' arguments') end
if redis.call('HSETNX', KEYS[1], ARGV[1], '1') == 0 then return 0 end
for i = 2, #ARGV, 2 do redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]) end
return 1
