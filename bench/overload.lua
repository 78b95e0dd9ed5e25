-- wrk script for bench/overload.py: every connection plays dialogues (the dial, change profile,
-- the target: up to the confirmation screen, so that subscribers can be played again) as fast
-- as it is answered, and sorts each answer: the screen expected for ITS subscriber at that hop
-- (answered), the "busy" end in its subscriber's language (busy: the dialogue is over), or
-- anything else (an error). Each answered hop's time goes to a histogram of milliseconds.
-- One connection per thread (-t N -c N): a thread knows which dialogue each answer is for.
--
-- The requests are the dialect's client half's (written by bench/load.py): a template per kind
-- and hop in which only the session id and the subscriber's 8 last digits are put in here.
--
-- wrk ... -s overload.lua URL -- DATA_FILE THREADS
-- DATA_FILE defines FIRST, LAST (the subscribers, played in turn and again), KINDS, HOPS,
-- METHOD, PATH, HEADERS, RUN (a tag for session ids), SESSION and NUMBER (the placeholders),
-- TEMPLATES[kind][hop] (a body), EXPECTED[kind][hop] (a reply), BUSY[kind] and RESUME[kind]
-- (replies; kind 1 is French).
--
-- Subscribers are played again and again, and a dialogue left before its result (each of
-- these stops at the confirmation, or is cut by "busy") is offered again on the next dial
-- within the resume window (ussd/resume.py): that offer, on the first hop, is the screen
-- expected for the subscriber too (answered; the dialogue ends there).

local ffi = require("ffi")
ffi.cdef [[
  typedef struct { long tv_sec; long tv_nsec; } timespec;
  int clock_gettime(int clock, timespec *now);
]]
local now_ts = ffi.new("timespec")
local function now_ms()
  ffi.C.clock_gettime(1, now_ts)  -- CLOCK_MONOTONIC
  return tonumber(now_ts.tv_sec) * 1000 + tonumber(now_ts.tv_nsec) / 1e6
end

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
  hop = 1
  dialogues = 0
  answered, busy, bad, http5xx = 0, 0, 0, 0
  first_bad = ""
  hist = {}                     -- hist[ms] = answered hops that took ms milliseconds
  for name, value in pairs(HEADERS) do
    wrk.headers[name] = value
  end
  new_session()
end

function new_session()
  dialogues = dialogues + 1
  session = RUN .. "-" .. id .. "-" .. dialogues
end

local function body_of(kind)
  local template = TEMPLATES[kind][hop]
  local digits = string.format("%08d", number)
  return (template:gsub(SESSION, session):gsub(NUMBER, digits))
end

function request()
  started = now_ms()
  return wrk.format(METHOD, PATH, nil, body_of((number % KINDS) + 1))
end

local function next_dialogue()
  number = number + nthreads
  if number > LAST then number = FIRST + id end
  hop = 1
  new_session()
end

function response(status, headers, body)
  local took = math.floor(now_ms() - started)
  local kind = (number % KINDS) + 1
  if status >= 500 then http5xx = http5xx + 1 end
  if status == 200 and body == EXPECTED[kind][hop] then
    answered = answered + 1
    hist[took] = (hist[took] or 0) + 1
    if hop == HOPS then next_dialogue() else hop = hop + 1 end
    return
  end
  if status == 200 and hop == 1 and body == RESUME[kind] then
    answered = answered + 1
    hist[took] = (hist[took] or 0) + 1
    next_dialogue()
    return
  end
  -- In the subscriber's language when this worker has served them before, French otherwise.
  if status == 200 and (body == BUSY[kind] or body == BUSY[1]) then
    busy = busy + 1
  else
    bad = bad + 1
    if first_bad == "" then
      first_bad = "subscriber " .. number .. " hop " .. hop .. ": HTTP " .. status .. " " .. body
    end
  end
  next_dialogue()
end

function done(summary, latency, requests)
  local totals = {answered = 0, busy = 0, bad = 0, http5xx = 0}
  local merged, example = {}, ""
  for _, thread in ipairs(threads) do
    for name, _ in pairs(totals) do
      totals[name] = totals[name] + thread:get(name)
    end
    for ms, count in pairs(thread:get("hist")) do
      merged[ms] = (merged[ms] or 0) + count
    end
    if example == "" then example = thread:get("first_bad") end
  end
  local function percentile(p)
    local want, seen = totals.answered * p / 100, 0
    local keys = {}
    for ms, _ in pairs(merged) do keys[#keys + 1] = ms end
    table.sort(keys)
    for _, ms in ipairs(keys) do
      seen = seen + merged[ms]
      if seen >= want then return ms end
    end
    return -1
  end
  local e = summary.errors
  io.write(string.format(
    "RESULT duration_us=%d requests=%d answered=%d busy=%d bad=%d http5xx=%d "
      .. "connect=%d read=%d write=%d status=%d timeout=%d "
      .. "answered_p50_ms=%d answered_p99_ms=%d answered_max_ms=%d all_p99_us=%d\n",
    summary.duration, summary.requests, totals.answered, totals.busy, totals.bad,
    totals.http5xx, e.connect, e.read, e.write, e.status, e.timeout,
    percentile(50), percentile(99), percentile(100), latency:percentile(99)))
  if example ~= "" then
    io.write("FIRST_BAD " .. example:gsub("\n", "\\n") .. "\n")
  end
end
