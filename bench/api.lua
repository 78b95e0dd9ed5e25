-- wrk script: the HTTP API's requests, one subscriber after another, each answer checked.
-- One connection per thread (-t N -c N), as dialogues.lua: a thread's Lua state then knows
-- which subscriber each answer is about.
--
-- wrk ... -s api.lua URL -- DATA_FILE THREADS
-- DATA_FILE (written by bench/api.py) defines:
--   FIRST, LAST   the subscriber numbers to play (each at most once)
--   KINDS         subscriber n is of kind (n % KINDS) + 1
--   METHOD        "GET": read each subscriber's page; "POST": ask each one's migration
--   TARGETS       TARGETS[kind] the profile a kind migrates to (POST)
--   STATUS        the status every answer must have
--   RUN           unique to the run: the idempotency keys are RUN-n
--   TOKEN         the API client's bearer token

local threads = {}
local next_id = 0

function setup(thread)
  thread:set("id", next_id)
  next_id = next_id + 1
  table.insert(threads, thread)
end

function init(args)
  dofile(args[1])
  nthreads = tonumber(args[2])
  number = FIRST + id
  bad, checked = 0, 0
  first_bad = ""
  wrk.headers["Authorization"] = "Bearer " .. TOKEN
  if METHOD == "POST" then
    wrk.headers["Content-Type"] = "application/json"
  end
end

local function msisdn(n)
  return string.format("+22507%08d", n)
end

function request()
  local path = "/api/v1/subscribers/" .. msisdn(number)
  if METHOD == "GET" then
    return wrk.format("GET", path)
  end
  wrk.headers["Idempotency-Key"] = RUN .. "-" .. number
  local target = TARGETS[(number % KINDS) + 1]
  return wrk.format("POST", path .. "/migrations", nil, '{"profile":"' .. target .. '"}')
end

function response(status, headers, body)
  checked = checked + 1
  -- The answer must be about this thread's subscriber: its number is in every body.
  if status ~= STATUS or not string.find(body, msisdn(number), 1, true) then
    bad = bad + 1
    if first_bad == "" then
      first_bad = "subscriber " .. number .. ": HTTP " .. status .. " " .. body
    end
  end
  number = number + nthreads
  if number > LAST then
    wrk.thread:stop()
  end
end

function done(summary, latency, requests)
  local total_bad, total_checked, example = 0, 0, ""
  for _, thread in ipairs(threads) do
    total_bad = total_bad + thread:get("bad")
    total_checked = total_checked + thread:get("checked")
    if example == "" then example = thread:get("first_bad") end
  end
  local e = summary.errors
  io.write(string.format(
    "RESULT duration_us=%d requests=%d checked=%d sessions=0 bad_replies=%d "
      .. "connect=%d read=%d write=%d status=%d timeout=%d "
      .. "p50_us=%d p95_us=%d p99_us=%d max_us=%d\n",
    summary.duration, summary.requests, total_checked, total_bad,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(95), latency:percentile(99), latency.max))
  if example ~= "" then
    io.write("FIRST_BAD " .. example:gsub("\n", "\\n") .. "\n")
  end
end
