-- bench/inbound.lua — wrk script: POST pre-signed webhooks to omnirouted.
--
--   wrk -t T -c C -d <DURATION+grace> -s bench/inbound.lua URL -- PREFIX T SECONDS [PID...]
--
-- PREFIX.<k> holds thread k's requests: raw HTTP/1.1 requests, each ended by
-- the byte 0x1e (bench/benchtool.py gen). wrk's Lua has no HMAC, so the
-- requests are signed beforehand; every one has its own external_id and
-- the slices are disjoint, so a run sends no duplicate unless a thread
-- exhausts its slice (counted as "wraps"; the daemon then answers 200
-- duplicate:true and stores nothing).
--
-- Common start: wrk runs each thread's init (loading its slice) one after
-- the other and starts a thread right after its init, so thread 0 would
-- run alone while the others load. Each thread writes PREFIX.ready.<k>
-- after loading, and its first request() waits (1 ms polls) until every
-- thread is ready.
--
-- Clean stop: SECONDS after the common start a thread stops sending
-- webhooks. A connection that asks for another request then gets an
-- unfinished request head ("parked"): the daemon waits for the rest of it
-- and answers nothing, so wrk records nothing for it, while the webhooks
-- in flight finish normally within the grace period that wrk's -d adds.
-- Nothing is cut off by wrk's timer, so the queue stream must hold exactly
-- one entry per 200. (delay() could park too, but defining it costs wrk
-- a timer per request: ~5% fewer messages/s on 2 cores.) Rates use the
-- threads' own clocks: common start .. last webhook response.
--
-- Fixed-count mode (bench/assign.sh), set by the environment:
--   OMR_BENCH_ONCE=1    a thread sends its slice once, then parks its
--                       connections, and writes PREFIX.done.<k> when every
--                       webhook it sent is answered (the caller then stops
--                       wrk with SIGINT; wrk still runs done())
--   OMR_BENCH_BASE=b    this wrk's threads use slices b .. b+T-1 (several
--   OMR_BENCH_TOTAL=n   wrk processes, one per daemon; n slices in all: the
--                       common start waits for all n ready files)
--
-- done() prints one machine-readable line:
--   BENCH ok=.. non200=.. dups=.. sent=.. answered=.. wraps=.. elapsed_us=..
--         p50_us=.. p90_us=.. p99_us=.. max_us=.. mean_us=.. errors...
-- and BENCH_STATUS code=count ... for non-200 answers, and
--   BENCH_CPU start=<snapshot> stop=<snapshot>
-- CPU counters at thread 0's start and stop of sending, so the CPU figures
-- cover exactly the measured window (not the loading, nor the grace):
-- snapshot = "t_us,busy,total,steal,ticks(wrk),ticks(PID1),..." with
-- busy/total/steal from /proc/stat (all cores) and ticks = utime+stime.

local ffi = require("ffi")
ffi.cdef [[
  typedef struct { long tv_sec; long tv_nsec; } omr_timespec;
  int clock_gettime(int clk, omr_timespec *ts);
]]
ffi.cdef [[ int usleep(unsigned int usec); ]]
local ts = ffi.new("omr_timespec")
local function now_us()
  ffi.C.clock_gettime(1, ts) -- CLOCK_MONOTONIC, same clock in every thread
  return tonumber(ts.tv_sec) * 1000000 + math.floor(tonumber(ts.tv_nsec) / 1000)
end

local pids = {}

local function first_line(path)
  local f = io.open(path, "r")
  if not f then return nil end
  local l = f:read("*l")
  f:close()
  return l
end

local function cpu_snapshot()
  local out = { tostring(now_us()) }
  local v = {}
  for n in string.gmatch(first_line("/proc/stat") or "", "%d+") do v[#v + 1] = tonumber(n) end
  local total = 0
  for i = 1, math.min(8, #v) do total = total + v[i] end -- user..steal (guest is inside user)
  local busy = total - (v[4] or 0) - (v[5] or 0)          -- minus idle, iowait
  out[#out + 1] = string.format("%d,%d,%d", busy, total, v[8] or 0)
  local plist = { "self" }
  for _, pid in ipairs(pids) do plist[#plist + 1] = pid end
  for _, pid in ipairs(plist) do
    local l = first_line("/proc/" .. pid .. "/stat")
    local ticks = 0
    if l then
      local f = {}
      for w in string.gmatch(string.match(l, "%) (.*)$") or "", "%S+") do f[#f + 1] = w end
      ticks = (tonumber(f[12]) or 0) + (tonumber(f[13]) or 0)
    end
    out[#out + 1] = tostring(ticks)
  end
  return table.concat(out, ",")
end

-- main state: one entry per thread, for done()
local threads = {}

function setup(thread)
  thread:set("tid", #threads)
  table.insert(threads, thread)
end

-- thread state (globals, so done() can read them with thread:get)
sent, answered, ok, non200, dups, wraps = 0, 0, 0, 0, 0, 0
first_us, last_us = 0, 0
cpu_start, cpu_stop = "", ""
bad = {} -- status -> count
local reqs, nreqs, idx = {}, 0, 0
local run_us, stopping = 0, false
local prefix, nthreads = nil, 0
local started = false
local ONCE = os.getenv("OMR_BENCH_ONCE") == "1"
local BASE = tonumber(os.getenv("OMR_BENCH_BASE") or "0")
local total, slice = 0, 0 -- slices in all wrk processes; this thread's
local done_written = false
local PARK = "GET /healthz HTTP/1.1\r\nHost: parked\r\n" -- no blank line: never complete
-- wrk calls request() once in thread 0's state right after init, only to
-- parse it (script_verify_request); that call must not consume a request.
local verifying = false

function init(args)
  local seconds
  prefix, nthreads, seconds = args[1], tonumber(args[2]), tonumber(args[3])
  assert(prefix and nthreads and seconds, "usage: -- PREFIX THREADS SECONDS")
  assert(tid < nthreads, "more wrk threads than request slices")
  total = tonumber(os.getenv("OMR_BENCH_TOTAL") or nthreads)
  slice = BASE + tid
  local f = assert(io.open(prefix .. "." .. slice, "rb"))
  local data = f:read("*a")
  f:close()
  local pos = 1
  while true do
    local e = string.find(data, "\30", pos, true)
    if not e then break end
    nreqs = nreqs + 1
    reqs[nreqs] = string.sub(data, pos, e - 1)
    pos = e + 1
  end
  assert(nreqs > 0, "no requests in " .. prefix .. "." .. slice)
  run_us = seconds * 1000000
  for i = 4, #args do pids[#pids + 1] = args[i] end
  verifying = (tid == 0)
  local r = assert(io.open(prefix .. ".ready." .. slice, "w"))
  r:close()
end

local function all_ready()
  for k = 0, total - 1 do
    local r = io.open(prefix .. ".ready." .. k, "r")
    if not r then return false end
    r:close()
  end
  return true
end

-- Fixed-count mode: everything this thread sent is answered.
function mark_done()
  if ONCE and not done_written and answered == sent then
    done_written = true
    local d = assert(io.open(prefix .. ".done." .. slice, "w"))
    d:close()
  end
end

function request()
  if verifying then
    verifying = false
    return reqs[1]
  end
  if not started then
    while not all_ready() do ffi.C.usleep(1000) end
    started = true
    cpu_start = cpu_snapshot()
    first_us = now_us()
  end
  if stopping then return PARK end
  if now_us() - first_us >= run_us then
    stopping = true
    cpu_stop = cpu_snapshot()
    return PARK
  end
  if ONCE and idx >= nreqs then
    stopping = true
    cpu_stop = cpu_snapshot()
    mark_done()
    return PARK
  end
  idx = idx + 1
  if idx > nreqs then
    idx = 1
    wraps = wraps + 1
  end
  sent = sent + 1
  return reqs[idx]
end

function response(status, headers, body)
  answered = answered + 1
  last_us = now_us()
  if status == 200 then
    ok = ok + 1
    if string.find(body, '"duplicate"%s*:%s*true') then dups = dups + 1 end
  else
    non200 = non200 + 1
    bad[status] = (bad[status] or 0) + 1
  end
  if stopping then mark_done() end
end

function done(summary, latency, requests)
  local t = { sent = 0, answered = 0, ok = 0, non200 = 0, dups = 0, wraps = 0 }
  local first, last, first_max = nil, 0, 0
  local codes = {}
  for _, th in ipairs(threads) do
    for k, _ in pairs(t) do t[k] = t[k] + th:get(k) end
    local f, l = th:get("first_us"), th:get("last_us")
    if f ~= 0 and (first == nil or f < first) then first = f end
    if f > first_max then first_max = f end
    if l > last then last = l end
    for code, n in pairs(th:get("bad")) do codes[code] = (codes[code] or 0) + n end
  end
  local elapsed = (first and last > first) and (last - first) or summary.duration
  local e = summary.errors
  io.write(string.format(
    "BENCH ok=%d non200=%d dups=%d sent=%d answered=%d wraps=%d elapsed_us=%d start_skew_us=%d " ..
    "p50_us=%d p90_us=%d p99_us=%d max_us=%d mean_us=%.1f " ..
    "connect_err=%d read_err=%d write_err=%d timeouts=%d status_err=%d wrk_requests=%d\n",
    t.ok, t.non200, t.dups, t.sent, t.answered, t.wraps, elapsed, first and (first_max - first) or 0,
    latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency.max, latency.mean,
    e.connect, e.read, e.write, e.timeout, e.status, summary.requests))
  local s = "BENCH_STATUS"
  for code, n in pairs(codes) do s = s .. string.format(" %s=%d", tostring(code), n) end
  io.write(s .. "\n")
  io.write(string.format("BENCH_CPU start=%s stop=%s\n", threads[1]:get("cpu_start"), threads[1]:get("cpu_stop")))
end
