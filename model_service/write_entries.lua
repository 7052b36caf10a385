-- Write one batch of stream entries exactly once (model_service/publisher.py).
--
-- KEYS: 1 the batch's marker, 2.. the streams. ARGV: 1 marker TTL (ms), 2 MAXLEN,
-- 3 the entries as one MessagePack array of [KEYS index of the stream, field,
-- value, ...]. The marker is set first (SET NX PX) and the entries are written
-- only if it was new, so a retried batch lands once. Answers 1 if written, 0 if
-- the batch was there already.
-- uses: batch_marker.lua
named('write_entries')

need_args(3, true)
if #KEYS < 2 then fail('expected the marker and at least one stream, got ' .. #KEYS .. ' keys') end
local ttl = int_arg(1, 'marker TTL', 1)
local maxlen = int_arg(2, 'MAXLEN', 1)
local ok, entries = pcall(cmsgpack.unpack, ARGV[3])
if not ok or type(entries) ~= 'table' then fail('entries (ARGV[3]) must be a MessagePack array') end
for i, entry in ipairs(entries) do
  if type(entry) ~= 'table' or type(entry[1]) ~= 'number' or entry[1] < 2 or entry[1] > #KEYS or #entry < 3
      or #entry % 2 ~= 1 then
    fail('entry ' .. i .. ' must be [a stream index in 2..' .. #KEYS .. ', field, value, ...]')
  end
end

if not claim_batch(ttl) then
  return 0
end
for _, entry in ipairs(entries) do
  redis.call('XADD', KEYS[entry[1]], 'MAXLEN', '~', maxlen, '*', unpack(entry, 2))
end
return 1
