-- wrk script: GET …/leaderboard of the bench tournament, a page of LIMIT rows.
-- Args: window (current, or a window start in RFC 3339), participant count, API key,
-- limit. Every other request of a connection also asks for the own row of a random
-- participant (user-1 … user-<count>), so half the requests are a page alone and half a
-- page and a user's rank.
local threads = {}
local next_tid = 0

function setup(thread)
  thread:set("tid", next_tid)
  next_tid = next_tid + 1
  table.insert(threads, thread)
end

function init(args)
  window = args[1] or "current"
  users = tonumber(args[2] or "100000")
  key = args[3] or "bench-api-key"
  limit = args[4] or "50"
  non200 = 0
  n = 0
  math.randomseed(os.time() + tid * 7919)
  headers = { ["Authorization"] = "Bearer " .. key }
  base = "/v1/properties/arcade/tournaments/bench-weekly/leaderboard?window=" .. window .. "&limit=" .. limit
end

function request()
  n = n + 1
  local path = base
  if n % 2 == 0 then
    path = path .. "&user=user-" .. math.random(users)
  end
  return wrk.format("GET", path, headers)
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
