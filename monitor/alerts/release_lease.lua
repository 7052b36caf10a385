-- Give the leader lease up if this replica still holds it (monitor/alerts/lease.py).
-- KEYS: 1 the lease. ARGV: 1 the holder's id. Answers 1 if released.
named('release_lease')

need_keys(1)
need_args(1, true)
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
