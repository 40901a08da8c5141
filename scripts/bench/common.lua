-- What every wrk script of the benchmarks shares, loaded with dofile from the
-- repository's root (where the bench scripts run wrk): each thread's id in tid, the
-- non-200 answers each thread counts, and one RESULT line at the end, which the bench
-- scripts read by field name.
--
-- Counting non-200 answers needs wrk's response callback, for which wrk parses every
-- answer's headers and body into Lua: CPU taken from the cores the service under test
-- shares with wrk. A script that can do with the answers of status 400 and above, which
-- wrk counts itself, sets response = nil after loading this file; its RESULT then says
-- status_ge_400= instead of non200=.
local threads = {}
local next_tid = 0
non200 = 0

function setup(thread)
  thread:set("tid", next_tid)
  next_tid = next_tid + 1
  table.insert(threads, thread)
end

function response(status, headers, body)
  if status ~= 200 then non200 = non200 + 1 end
end

function done(summary, latency, requests)
  local bad, label = 0, "non200"
  if response == nil then
    bad, label = summary.errors.status, "status_ge_400"
  else
    for _, t in ipairs(threads) do bad = bad + (t:get("non200") or 0) end
  end
  io.write(string.format("RESULT rps=%.0f p50_ms=%.2f p99_ms=%.2f requests=%d %s=%d socket_errors=%d\n",
    summary.requests / (summary.duration / 1e6), latency:percentile(50) / 1000, latency:percentile(99) / 1000,
    summary.requests, label, bad, summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))
end
