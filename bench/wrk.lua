-- wrk script for bench/run.py. Environment (read by every wrk thread):
--   BENCH_METHOD, BENCH_BODY, BENCH_HEADERS ("Name: value" lines),
--   BENCH_REFRESH_TOKENS: space-separated refresh tokens, and BENCH_THREADS.
--   With tokens, each request presents one and the rotated token from its
--   answer goes back in the pool: a refresh token is good for one use only.
-- done() prints one JSON line for the runner.

wrk.method = os.getenv("BENCH_METHOD") or "GET"
wrk.body = os.getenv("BENCH_BODY")
for line in (os.getenv("BENCH_HEADERS") or ""):gmatch("[^\n]+") do
  local name, value = line:match("^([^:]+):%s*(.*)$")
  wrk.headers[name] = value
end

local counter = 0
function setup(thread)
  thread:set("thread_index", counter)
  counter = counter + 1
end

-- Only the refresh case defines request() and response(): without them wrk
-- sends one prepared request and does not hand answers to Lua.
if os.getenv("BENCH_REFRESH_TOKENS") then
  local pool = {}

  function init(_args)
    local threads = tonumber(os.getenv("BENCH_THREADS"))
    local i = 0
    for token in os.getenv("BENCH_REFRESH_TOKENS"):gmatch("%S+") do
      if i % threads == thread_index then table.insert(pool, token) end
      i = i + 1
    end
  end

  function request()
    local token = table.remove(pool, 1)
    if token == nil then
      error("the refresh token pool ran dry: refreshes failed")
    end
    wrk.headers["Authorization"] = "Bearer " .. token
    return wrk.format()
  end

  function response(status, _headers, answer)
    if status == 200 then
      table.insert(pool, answer:match('"refresh_token":%s*"([^"]+)"'))
    end
  end
end

function done(summary, latency, _requests)
  local errors = summary.errors
  io.write(string.format(
    '{"requests": %d, "duration_us": %d, "p50_us": %d, "p99_us": %d, '
      .. '"connect_errors": %d, "read_errors": %d, "write_errors": %d, '
      .. '"status_errors": %d, "timeouts": %d}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    errors.connect, errors.read, errors.write, errors.status, errors.timeout))
end
