-- wrk script: publisher reads spread over the seeded users (user-000000001 …).
-- Args: what (balance | transactions | feed), user count, API key, feed seq, count of
-- users with a ledger (the first ones).
-- balance asks for a random user each time, transactions for a random user with a
-- ledger; feed asks for a page of 100
-- wallets after a random wallet (cursor v1.<seq>.<id>, the seq every seeded wallet has).
dofile("scripts/bench/common.lua") -- setup, response, done

function init(args)
  what = args[1] or "balance"
  users = tonumber(args[2] or "100000")
  key = args[3] or "bench-api-key"
  seq = args[4] or "0"
  ledger = tonumber(args[5] or args[2] or "100000")
  math.randomseed(os.time() + tid * 7919)
  headers = { ["Authorization"] = "Bearer " .. key }
end

function request()
  local u = math.random(users)
  local path
  if what == "transactions" then
    path = string.format("/v1/properties/arcade/users/user-%09d/transactions?limit=100", math.random(ledger))
  elseif what == "feed" then
    path = string.format("/v1/properties/arcade/balances?limit=100&since=v1.%s.%d", seq, u)
  else
    path = string.format("/v1/properties/arcade/users/user-%09d/balance", u)
  end
  return wrk.format("GET", path, headers)
end
