-- wrk script: GET …/leaderboard of the bench tournament, a page of LIMIT rows.
-- Args: window (current, or a window start in RFC 3339), participant count, API key,
-- limit. Every other request of a connection also asks for the own row of a random
-- participant (user-1 … user-<count>), so half the requests are a page alone and half a
-- page and a user's rank.
dofile("scripts/bench/common.lua") -- setup, response, done

function init(args)
  window = args[1] or "current"
  users = tonumber(args[2] or "100000")
  key = args[3] or "bench-api-key"
  limit = args[4] or "50"
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
