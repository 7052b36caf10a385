-- library: run in front of the scripts that name it in a "-- uses:" line.
-- The exactly-once step both write scripts take before any XADD: KEYS[1] is the
-- batch's marker, KEYS[2..] the streams the batch writes to.
-- A key that is not a stream would fail an XADD after the marker is set, and the
-- retry would then be skipped as a duplicate: refuse before writing anything.
-- Answers true when the batch is new (the marker was set now), false when a
-- retry of it landed before.
local function claim_batch(ttl)
  for i = 2, #KEYS do
    local kind = redis.call('TYPE', KEYS[i])['ok']
    if kind ~= 'stream' and kind ~= 'none' then fail(KEYS[i] .. ' holds a ' .. kind .. ', not a stream') end
  end
  return redis.call('SET', KEYS[1], '1', 'NX', 'PX', ttl) ~= false
end
