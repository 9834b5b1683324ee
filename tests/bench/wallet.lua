-- wrk script for tests/bench/run.py. BENCH_MODE picks the traffic:
--   floor            GET /floor
--   balance          100HP /balance
--   withdrawal       100HP /withdrawal, a fresh txId each time
--   deposit-round    withdrawal, and every other request a deposit of the oldest bet whose
--                    withdrawal has been answered (so never a deposit before its bet is booked)
--   rollback-round   the same with rollbacks
--   lines            one request per line of BENCH_LINES ("path<TAB>body"): the Hash bodies, which
--                    are AES-encrypted and so made by the runner in Python
-- Sessions (hot: one, spread: many) come from BENCH_SESSIONS, one per line.
local mode = os.getenv("BENCH_MODE")
local secret = os.getenv("BENCH_SECRET") or ""
local json_headers = {["Content-Type"] = "application/json"}
local hash_headers = {["Content-Type"] = "application/json", ["merchant-id"] = os.getenv("BENCH_MERCHANT") or ""}
local sessions, lines, open_bets = {}, {}, {}
local first_open, last_open, n = 1, 0, 0

local function seed()
  local f = io.open("/dev/urandom", "rb")
  local a, b, c, d = f:read(4):byte(1, 4)
  f:close()
  math.randomseed(((a * 256 + b) * 256 + c) * 256 + d)
end

local function uuid()
  return (string.gsub("xxxxxxxx-xxxx-4xxx-yxxx-xxxxxxxxxxxx", "[xy]", function(c)
    return string.format("%x", c == "x" and math.random(0, 15) or math.random(8, 11))
  end))
end

init = function(args)
  seed()
  if os.getenv("BENCH_SESSIONS") then
    for line in io.lines(os.getenv("BENCH_SESSIONS")) do sessions[#sessions + 1] = line end
  end
  if mode == "lines" then
    for line in io.lines(os.getenv("BENCH_LINES")) do lines[#lines + 1] = line end
  end
end

local function post(path, body)
  return wrk.format("POST", path, json_headers, body)
end

request = function()
  n = n + 1
  if mode == "floor" then return wrk.format("GET", "/floor") end
  if mode == "lines" then
    local line = lines[(n - 1) % #lines + 1]
    local tab = line:find("\t")
    return wrk.format("POST", line:sub(1, tab - 1), hash_headers, line:sub(tab + 1))
  end
  local session = sessions[n % #sessions + 1]
  if mode == "balance" then
    return post("/100hp/balance", '{"secret":"' .. secret .. '","sessionId":"' .. session .. '"}')
  end
  if mode ~= "withdrawal" and n % 2 == 0 and last_open >= first_open then
    local tx = open_bets[first_open]
    open_bets[first_open] = nil
    first_open = first_open + 1
    if mode == "deposit-round" then
      return post("/100hp/deposit", '{"secret":"' .. secret .. '","txId":"' .. tx .. '","amount":"1.50"}')
    end
    return post("/100hp/rollback", '{"secret":"' .. secret .. '","txId":"' .. tx .. '"}')
  end
  return post("/100hp/withdrawal", '{"secret":"' .. secret .. '","sessionId":"' .. session ..
              '","txId":"' .. uuid() .. '","amount":"1.00"}')
end

first_error, refusals = "", 0  -- globals: done() reads them from each thread
local threads = {}
setup = function(thread) threads[#threads + 1] = thread end

response = function(status, headers, body)
  local booked = status == 200 and string.match(body, '"txId":%s*"([%x%-]+)"')  -- a withdrawal's answer
  if booked and (mode == "deposit-round" or mode == "rollback-round") then
    last_open = last_open + 1
    open_bets[last_open] = booked
  end
  -- Hash answers its refusals with HTTP 200 and a code: any code but 0 is an error too
  local refused = mode == "lines" and not string.match(body or "", '"code":%s*0[,}]')
  if refused then refusals = refusals + 1 end
  if (status ~= 200 or refused) and first_error == "" then
    first_error = status .. " " .. string.gsub(string.sub(body or "", 1, 200), '[\\"%c]', "")
  end
end

done = function(summary, latency, requests)
  local e, first_error, refused = summary.errors, "", 0
  for _, thread in ipairs(threads) do
    if first_error == "" then first_error = thread:get("first_error") end
    refused = refused + thread:get("refusals")
  end
  io.write(string.format('BENCH {"requests":%d,"duration_us":%d,"status_errors":%d,"socket_errors":%d,' ..
                         '"p50_us":%d,"p99_us":%d,"first_error":"%s"}\n', summary.requests,
                         summary.duration, e.status + refused, e.connect + e.read + e.write + e.timeout,
                         latency:percentile(50), latency:percentile(99), first_error))
end
