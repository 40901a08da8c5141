-- wrk script: unique Gamezop SPPs (session ids never repeat across threads or runs),
-- spread over 100,000 users. With a redelivery share > 0, that share of requests resend
-- a session pre-recorded by bench-ingest.sh (keys pre-1 … pre-N), as duplicates.
-- Args: run id, redelivery percent, pre-recorded count, bearer token.
dofile("scripts/bench/common.lua") -- setup, response, done

function init(args)
  run = args[1] or "r"
  redeliver = tonumber(args[2] or "0")
  pre = tonumber(args[3] or "0")
  token = args[4] or "bench-spp-token"
  n = 0
  math.randomseed(os.time() + tid * 7919)
end

function request()
  n = n + 1
  local sid
  if redeliver > 0 and pre > 0 and math.random(100) <= redeliver then
    sid = "pre-" .. math.random(pre)
  else
    sid = run .. "-" .. tid .. "-" .. n
  end
  local body = '{"user-id":"u' .. ((n * 7 + tid * 13) % 100000) .. '","session-id":"' .. sid ..
    '","country":"IN","count-of-ads-viewed":1,"your-estimated-revenue":"0.000012","session-duration":60,"property-id":"1234"}'
  return wrk.format("POST", "/v1/hooks/arcade/gamezop/spp",
    { ["Content-Type"] = "application/json", ["Authorization"] = "Bearer " .. token }, body)
end
