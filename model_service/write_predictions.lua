-- Write one batch of prediction blocks exactly once, as one stream entry per row
-- (model_service/stream_writes.py builds the arguments).
--
-- KEYS: 1 the batch's marker, 2 the predictions stream.
-- ARGV: 1 marker TTL (ms), 2 MAXLEN, 3 rows, 4 bytes per features row, 5 bytes
-- per probabilities row (0: none), 6 schema version, 7 model, 8 model version, 9 ids
-- (fixed width), 10 timestamps and 11 classes (decimal, comma-separated),
-- 12 features and 13 probabilities (float32 rows back to back), 14 id width,
-- 15 the entry's field names (comma-separated: version, id, timestamp, model,
-- model version, features, class, probabilities).
-- Answers 1 if written, 0 if the batch was there already.
-- uses: batch_marker.lua
named('write_predictions')

local function split(text, n, what)
  local values = {}
  for s in string.gmatch(text, '[^,]+') do values[#values + 1] = s end
  if #values ~= n then fail(what .. ' must hold ' .. n .. ' values, got ' .. #values) end
  return values
end

need_keys(2)
need_args(15, true)
local ttl, maxlen = int_arg(1, 'marker TTL', 1), int_arg(2, 'MAXLEN', 1)
-- A model without probabilities writes empty ones (width 0).
local n, xw, pw = int_arg(3, 'rows', 1), int_arg(4, 'features row width', 1), int_arg(5, 'probabilities row width', 0)
local v, m, mv, ids, x, p = ARGV[6], ARGV[7], ARGV[8], ARGV[9], ARGV[12], ARGV[13]
local idw = int_arg(14, 'id width', 1)
need_width(ids, n, idw, 'ids (ARGV[9])')
need_width(x, n, xw, 'features (ARGV[12])')
need_width(p, n, pw, 'probabilities (ARGV[13])')
local ts, y = split(ARGV[10], n, 'timestamps (ARGV[10])'), split(ARGV[11], n, 'classes (ARGV[11])')
local f = split(ARGV[15], 8, 'field names (ARGV[15])')

if not claim_batch(ttl) then
  return 0
end
for i = 0, n - 1 do
  redis.call('XADD', KEYS[2], 'MAXLEN', '~', maxlen, '*',
    f[1], v, f[2], string.sub(ids, i * idw + 1, (i + 1) * idw), f[3], ts[i + 1], f[4], m, f[5], mv,
    f[6], string.sub(x, i * xw + 1, (i + 1) * xw), f[7], y[i + 1], f[8], string.sub(p, i * pw + 1, (i + 1) * pw))
end
return 1
