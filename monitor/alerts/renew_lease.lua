-- Extend the leader lease if this replica still holds it (monitor/alerts/lease.py).
-- KEYS: 1 the lease. ARGV: 1 the holder's id, 2 the new TTL (ms). Answers 1 if renewed.
named('renew_lease')

need_keys(1)
need_args(2, true)
local ttl = int_arg(2, 'TTL (ms)', 1)
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ttl)
end
return 0
