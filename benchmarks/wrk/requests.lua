-- wrk script for benchmarks/serve.py.
--   wrk ... -s requests.lua URL -- METHOD PATH [BODIES_FILE]
-- BODIES_FILE holds one JSON body per line; requests cycle through them, so
-- the server does not answer the same bytes over and over. Requests are
-- formatted once in init(); request() only picks the next one.
-- done() prints one machine-readable line: "WRKJSON {...}".

local requests = {}
local next_index = 0

function init(args)
  local method, path, file = args[1] or "GET", args[2] or "/", args[3]
  if file then
    local headers = { ["Content-Type"] = "application/json" }
    for line in io.lines(file) do
      if #line > 0 then
        requests[#requests + 1] = wrk.format(method, path, headers, line)
      end
    end
  else
    requests[1] = wrk.format(method, path)
  end
end

function request()
  next_index = next_index % #requests + 1
  return requests[next_index]
end

function done(summary, latency, _)
  local e = summary.errors
  io.write(string.format(
    'WRKJSON {"requests": %d, "duration_us": %d, "p50_us": %d, "p90_us": %d, "p99_us": %d, ' ..
    '"max_us": %d, "connect_errors": %d, "read_errors": %d, "write_errors": %d, ' ..
    '"status_errors": %d, "timeouts": %d}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency.max, e.connect, e.read, e.write, e.status, e.timeout))
end
