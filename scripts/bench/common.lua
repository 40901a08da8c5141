-- What every wrk script of the benchmarks shares, loaded with dofile from the
-- repository's root (where the bench scripts run wrk): each thread's id in tid, the
-- non-200 answers each thread counts, and one RESULT line at the end, which the bench
-- scripts read by field name.
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
  local bad = 0
  for _, t in ipairs(threads) do bad = bad + (t:get("non200") or 0) end
  io.write(string.format("RESULT rps=%.0f p50_ms=%.2f p99_ms=%.2f requests=%d non200=%d socket_errors=%d\n",
    summary.requests / (summary.duration / 1e6), latency:percentile(50) / 1000, latency:percentile(99) / 1000,
    summary.requests, bad, summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))
end
