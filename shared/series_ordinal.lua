-- The ordinal of a model version's window series, allocated once (shared/series.py).
-- KEYS: 1 the series registry hash. ARGV: 1 the version's field (v:<version>),
-- 2 the counter field, 3 the prefix of the reverse field (n:<ordinal>), 4 the version.
-- Answers the ordinal: the stored one, or the next one, stored with its reverse.
named('series_ordinal')

need_keys(1)
need_args(4, true)
local known = redis.call('HGET', KEYS[1], ARGV[1])
if known then return tonumber(known) end
local ordinal = redis.call('HINCRBY', KEYS[1], ARGV[2], 1)
redis.call('HSET', KEYS[1], ARGV[1], ordinal, ARGV[3] .. ordinal, ARGV[4])
return ordinal
