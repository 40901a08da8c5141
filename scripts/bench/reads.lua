-- wrk script: publisher reads spread over the seeded users (user-000000001 …).
-- Args: what (balance | transactions | feed), user count, API key, feed seq, count of
-- users with a ledger (the first ones).
-- balance asks for a random user each time, transactions for a random user with a
-- ledger; feed asks for a page of 100
-- wallets after a random wallet (cursor v1.<seq>.<id>, the seq every seeded wallet has).
--
-- Each thread formats its requests once, in init (a ring of 20,000 random ones it then
-- cycles through: as many users as a 15 s run of pages touches, formatted in ~20 ms;
-- wrk starts a thread's connections before it runs the next thread's init, and counts
-- their answers in a run that starts after), and wrk does not parse the answers
-- (status_ge_400 counts the failed ones): wrk's Lua work per request comes out of the
-- same two cores as tally's.
dofile("scripts/bench/common.lua") -- setup, done
response = nil

function init(args)
  local what = args[1] or "balance"
  local users = tonumber(args[2] or "100000")
  local key = args[3] or "bench-api-key"
  local seq = args[4] or "0"
  local ledger = tonumber(args[5] or args[2] or "100000")
  math.randomseed(os.time() + tid * 7919)
  local headers = { ["Authorization"] = "Bearer " .. key }
  ring, n, at = {}, 20000, 0
  for i = 1, n do
    local path
    if what == "transactions" then
      path = string.format("/v1/properties/arcade/users/user-%09d/transactions?limit=100", math.random(ledger))
    elseif what == "feed" then
      path = string.format("/v1/properties/arcade/balances?limit=100&since=v1.%s.%d", seq, math.random(users))
    else
      path = string.format("/v1/properties/arcade/users/user-%09d/balance", math.random(users))
    end
    ring[i] = wrk.format("GET", path, headers)
  end
end

function request()
  at = at % n + 1
  return ring[at]
end
