-- wrk script: every connection plays whole #121# dialogues (dial, 1, profile, confirm) and
-- checks each reply against the screen expected for ITS subscriber at that hop. Run with one
-- connection per thread (-t N -c N): wrk's Lua state is per thread, so a thread with one
-- connection knows which dialogue each reply answers. It knows nothing of the gateway's wire
-- format: it sends the requests bench/load.py wrote, as the dialect's client half built them.
--
-- wrk ... -s dialogues.lua URL -- DATA_FILE THREADS
-- DATA_FILE (written by bench/load.py) defines:
--   FIRST, LAST   the range of subscriber numbers to play (each at most once)
--   KINDS, HOPS   how many kinds (subscriber number n plays kind (n % KINDS) + 1), and hops
--                 in a dialogue
--   METHOD, PATH, HEADERS  what every request is sent with
--   BODIES        a file of request bodies, one a line: subscriber n's hop h on line
--                 (n - FIRST) * HOPS + h (session ids unique to the run)
--   EXPECTED      EXPECTED[kind][hop] = the exact reply body, or EXPECTED.any[hop]

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
  for name, value in pairs(HEADERS) do
    wrk.headers[name] = value
  end
  bodies = {}
  for line in io.lines(BODIES) do
    bodies[#bodies + 1] = line
  end
end

function request()
  return wrk.format(METHOD, PATH, nil, bodies[(number - FIRST) * HOPS + hop])
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
  if hop == HOPS then
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
