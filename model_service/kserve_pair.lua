-- Pair the two halves of one KServe inference-logger event (model_service/kserve_pairing.py).
--
-- KEYS: 1 the pair's pending key. ARGV: 1 this half's kind ('q' request, 's' response),
-- 2 this half (encoded), 3 how long a lone half waits for the other (ms).
-- The first half to arrive is stored with its TTL; the second takes it (and deletes it)
-- in the same step, so exactly one caller, on whichever replica, gets both halves.
-- Answers 0 when this half was stored to wait, 1 when this half was there already
-- (a resend: nothing changes), or the other half (its kind byte first) when paired.
named('kserve_pair')

need_keys(1)
need_args(3, true)
local kind, half = ARGV[1], ARGV[2]
if kind ~= 'q' and kind ~= 's' then fail("kind (ARGV[1]) must be 'q' or 's', got " .. tostring(kind)) end
local ttl = int_arg(3, 'TTL', 1)

local waiting = redis.call('GET', KEYS[1])
if not waiting then
  redis.call('SET', KEYS[1], kind .. half, 'PX', ttl)
  return 0
end
if string.sub(waiting, 1, 1) == kind then
  return 1
end
redis.call('DEL', KEYS[1])
return waiting
