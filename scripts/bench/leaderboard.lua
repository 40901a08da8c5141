-- wrk script: GET …/leaderboard of the bench tournament, a page of LIMIT rows.
-- Args: window (current, or a window start in RFC 3339), participant count, API key,
-- limit. Every other request of a connection also asks for the own row of a random
-- participant (user-1 … user-<count>), so half the requests are a page alone and half a
-- page and a user's rank. Each thread formats its requests once, in init (a ring of
-- 20,000 it then cycles through, formatted in ~20 ms), and wrk does not parse the
-- answers (status_ge_400 counts the failed ones): wrk's Lua work per request comes out of
-- the same two cores as tally's.
dofile("scripts/bench/common.lua") -- setup, done
response = nil

function init(args)
  local window = args[1] or "current"
  local users = tonumber(args[2] or "100000")
  local key = args[3] or "bench-api-key"
  local limit = args[4] or "50"
  math.randomseed(os.time() + tid * 7919)
  local headers = { ["Authorization"] = "Bearer " .. key }
  local base = "/v1/properties/arcade/tournaments/bench-weekly/leaderboard?window=" .. window .. "&limit=" .. limit
  ring, n, at = {}, 20000, 0
  for i = 1, n do
    local path = base
    if i % 2 == 0 then
      path = path .. "&user=user-" .. math.random(users)
    end
    ring[i] = wrk.format("GET", path, headers)
  end
end

function request()
  at = at % n + 1
  return ring[at]
end
