-- wrk script: every connection plays whole #121# dialogues in the Africa's Talking dialect
-- (dial, 1, profile, confirm) and checks each reply against the screen expected for ITS
-- subscriber at that hop. Run with one connection per thread (-t N -c N): wrk's Lua state is
-- per thread, so a thread with one connection knows which dialogue each reply answers.
--
-- wrk ... -s dialogues.lua URL -- DATA_FILE
-- DATA_FILE (written by bench/run.py) defines:
--   RUN         a tag that makes the session ids of this run unique
--   FIRST, LAST the range of subscriber numbers to play (each at most once)
--   INPUTS      INPUTS[kind] = the four cumulative texts of a dialogue of that kind
--   EXPECTED    EXPECTED[kind][hop] = the exact reply body, or EXPECTED.any[hop]
--   KINDS       how many kinds: subscriber number n plays kind (n % KINDS) + 1

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
  number = FIRST + id          -- this thread plays FIRST+id, FIRST+id+nthreads, ...
  hop = 1
  sessions, bad, hops = 0, 0, 0
  first_bad = ""
  wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
end

local function msisdn(n)
  return string.format("%%2B22507%08d", n)
end

function request()
  local kind = (number % KINDS) + 1
  local body = "sessionId=" .. RUN .. "-" .. number
    .. "&serviceCode=%2A121%23&phoneNumber=" .. msisdn(number)
    .. "&networkCode=62303&text=" .. INPUTS[kind][hop]
  return wrk.format("POST", "/ussd/africastalking", nil, body)
end

local function next_dialogue()
  number = number + nthreads
  hop = 1
  if number > LAST then
    wrk.thread:stop()          -- every subscriber of this thread has been played once
  end
end

function response(status, headers, body)
  hops = hops + 1
  local kind = (number % KINDS) + 1
  local want = EXPECTED.any and EXPECTED.any[hop] or EXPECTED[kind][hop]
  if status ~= 200 or body ~= want then
    bad = bad + 1
    if first_bad == "" then
      first_bad = "subscriber " .. number .. " hop " .. hop .. ": HTTP " .. status .. " " .. body
    end
    next_dialogue()            -- abandon this dialogue: its state is not what we expect
    return
  end
  if hop == #INPUTS[kind] then
    sessions = sessions + 1
    next_dialogue()
  else
    hop = hop + 1
  end
end

function done(summary, latency, requests)
  local total_sessions, total_bad, total_hops, example = 0, 0, 0, ""
  for _, thread in ipairs(threads) do
    total_sessions = total_sessions + thread:get("sessions")
    total_bad = total_bad + thread:get("bad")
    total_hops = total_hops + thread:get("hops")
    if example == "" then example = thread:get("first_bad") end
  end
  local e = summary.errors
  io.write(string.format(
    "RESULT duration_us=%d requests=%d checked=%d sessions=%d bad_replies=%d "
      .. "connect=%d read=%d write=%d status=%d timeout=%d "
      .. "p50_us=%d p95_us=%d p99_us=%d max_us=%d\n",
    summary.duration, summary.requests, total_hops, total_sessions, total_bad,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(95), latency:percentile(99), latency.max))
  if example ~= "" then
    io.write("FIRST_BAD " .. example:gsub("\n", "\\n") .. "\n")
  end
end
