-- Shared by the bench scripts: a static POST request read from a body file, and one result
-- line that bench/serving.py parses.
--
-- Environment: BENCH_BODY_DIR (where bench/serving.py wrote the bodies), BENCH_BODY (overrides a
-- script's default body file), BENCH_CHECK (set: report the first failed response on stderr;
-- it makes wrk hand every response to Lua, so it is only set for the warm-up run).
local M = {}

function M.post(path, content_type, default_body)
  local dir = os.getenv("BENCH_BODY_DIR") or "."
  local name = os.getenv("BENCH_BODY") or default_body
  local file = assert(io.open(dir .. "/" .. name, "rb"), "cannot read body file " .. dir .. "/" .. name)
  -- A static request (no request() function) is formatted once by wrk: no Lua per request.
  wrk.method = "POST"
  wrk.path = path
  wrk.body = file:read("*a")
  file:close()
  wrk.headers["Content-Type"] = content_type
end

if os.getenv("BENCH_CHECK") then
  local reported = false
  function response(status, headers, body)
    if status >= 300 and not reported then
      reported = true
      io.stderr:write(string.format("BENCH_FAIL %d %s\n", status, (body or ""):sub(1, 300)))
    end
  end
end

-- Latency in microseconds; "status" counts responses with HTTP status >= 400 (wrk's own
-- count), the other error fields are socket errors.
function M.done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH_RESULT {"requests": %.0f, "duration_us": %.0f, "bytes": %.0f, "p50_us": %.0f, ' ..
    '"p90_us": %.0f, "p99_us": %.0f, "max_us": %.0f, "status": %.0f, "connect": %.0f, ' ..
    '"read": %.0f, "write": %.0f, "timeout": %.0f}\n',
    summary.requests, summary.duration, summary.bytes, latency:percentile(50),
    latency:percentile(90), latency:percentile(99), latency.max, e.status, e.connect,
    e.read, e.write, e.timeout))
end

return M
