-- wrk script of bench/loadgen.py: POST bodies from a pool file, check every answer, sum Server-Timing stages.
--
--   BENCH_WRK_OUT=OUT_FILE wrk ... -s bench/pool.lua URL -- POOL_FILE EXPECT UNIQUE THREADS
--
-- POOL_FILE  bodies, each as "<length>\n<bytes>"; thread i of N takes bodies i, i+N, i+2N, ...
-- EXPECT     a response counts as good only if it is HTTP 200 and its body contains this text ("-" for none)
-- UNIQUE     "1": send each body at most once (signed requests: a replay is refused); when a thread runs out
--            it stops and reports it, so the run is flagged as invalid. "0": cycle through the pool forever.
-- THREADS    wrk's -t, so each thread knows its share of the pool
-- OUT_FILE   (environment, done() runs where the arguments are not seen) where done() writes the result as JSON;
--            OUT_FILE.bad gets the first bad answer, if any
--
-- The counters are globals of each thread's Lua state: done() reads them with thread:get() once the threads stop.

wrk.method = "POST"
wrk.headers["Content-Type"] = "text/xml; charset=utf-8"
wrk.headers["SOAPAction"] = '""'

local threads = {}
local next_id = 0

function setup(thread)
  next_id = next_id + 1
  thread:set("id", next_id)
  table.insert(threads, thread)
end

-- per-thread state (each wrk thread has its own Lua state); globals are what done() collects
local reqs, pos, unique, expect = {}, 1, true, nil
good, bad, exhausted, timed, pool = 0, 0, 0, 0, 0
statuses, stage_sum, stage_order = {}, {}, {}
first_bad = nil

local function read_pool(path, id, nthreads)
  local f = assert(io.open(path, "rb"))
  local data = f:read("*a")
  f:close()
  local i, k = 1, 0
  while i <= #data do
    local nl = assert(data:find("\n", i, true), "bad pool file")
    local len = tonumber(data:sub(i, nl - 1))
    if k % nthreads == id - 1 then
      table.insert(reqs, wrk.format(nil, nil, nil, data:sub(nl + 1, nl + len)))
    end
    k = k + 1
    i = nl + len + 1
  end
end

function init(args)
  local id = wrk.thread:get("id")
  expect = args[2]
  if expect == "-" then expect = nil end
  unique = args[3] == "1"
  read_pool(args[1], id, tonumber(args[4]))
  pool = #reqs
end

function request()
  if pos > #reqs then
    if unique then
      exhausted = 1
      wrk.thread:stop()
      pos = #reqs  -- one last request goes out before the loop stops; it is a replay, never counted
    else
      pos = 1
    end
  end
  local r = reqs[pos]
  pos = pos + 1
  return r
end

function response(status, headers, body)
  if status == 200 and (expect == nil or body:find(expect, 1, true)) then
    good = good + 1
  else
    bad = bad + 1
    local key = tostring(status)
    statuses[key] = (statuses[key] or 0) + 1
    if first_bad == nil then
      first_bad = "HTTP " .. status .. "\n" .. body:sub(1, 65536)
    end
  end
  local timing = headers["Server-Timing"] or headers["server-timing"]
  if timing then
    timed = timed + 1
    for name, dur in timing:gmatch("([%w_%-]+);dur=([%d%.]+)") do
      if stage_sum[name] == nil then
        stage_sum[name] = 0
        table.insert(stage_order, name)
      end
      stage_sum[name] = stage_sum[name] + tonumber(dur)
    end
  end
end

local function json(value)
  local t = type(value)
  if t == "table" then
    if #value > 0 then
      local parts = {}
      for _, v in ipairs(value) do table.insert(parts, json(v)) end
      return "[" .. table.concat(parts, ",") .. "]"
    end
    local parts = {}
    for k, v in pairs(value) do table.insert(parts, string.format("%q", tostring(k)) .. ":" .. json(v)) end
    return "{" .. table.concat(parts, ",") .. "}"
  elseif t == "string" then
    return string.format("%q", value)
  elseif t == "nil" then
    return "null"
  end
  return tostring(value)
end

function done(summary, latency, _)
  local out = {
    requests = summary.requests, duration_us = summary.duration, bytes = summary.bytes,
    errors = summary.errors,
    latency_us = {
      mean = latency.mean, stdev = latency.stdev, min = latency.min, max = latency.max,
      p50 = latency:percentile(50), p90 = latency:percentile(90), p99 = latency:percentile(99),
    },
    good = 0, bad = 0, timed = 0, exhausted = 0, pool = 0, statuses = {}, stage_sum_ms = {}, stage_order = {},
  }
  local bad_text = nil
  for _, thread in ipairs(threads) do
    out.good = out.good + (thread:get("good") or 0)
    out.bad = out.bad + (thread:get("bad") or 0)
    out.timed = out.timed + (thread:get("timed") or 0)
    out.exhausted = out.exhausted + (thread:get("exhausted") or 0)
    out.pool = out.pool + (thread:get("pool") or 0)
    for k, v in pairs(thread:get("statuses") or {}) do out.statuses[k] = (out.statuses[k] or 0) + v end
    for k, v in pairs(thread:get("stage_sum") or {}) do out.stage_sum_ms[k] = (out.stage_sum_ms[k] or 0) + v end
    local order = thread:get("stage_order") or {}
    if #order > #out.stage_order then out.stage_order = order end
    bad_text = bad_text or thread:get("first_bad")
  end
  local path = os.getenv("BENCH_WRK_OUT")
  local f = assert(io.open(path, "w"))
  f:write(json(out))
  f:close()
  if bad_text then
    local g = assert(io.open(path .. ".bad", "w"))
    g:write(bad_text)
    g:close()
  end
end
