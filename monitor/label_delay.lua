-- library: run in front of the scripts that name it in a "-- uses:" line.
-- Label delays are counted in quarter-octave buckets of seconds (bucket b holds
-- delays in [2^(b/4) - 1, 2^((b+1)/4) - 1) s): a median or p95 read back is
-- within 9% of the truth, from a hash of a few dozen fields per window.
-- (monitor/window_state.py: delay_bucket_bounds_s is its inverse.)
local function delay_bucket(delay_ms)
  if delay_ms < 0 then delay_ms = 0 end
  return math.floor(4 * math.log(delay_ms / 1000 + 1) / math.log(2))
end
