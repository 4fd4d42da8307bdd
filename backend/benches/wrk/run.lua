-- wrk script: the cart's "Add Items" through Gradio's queue-free route,
-- `POST PATH` with `{"data": [["Milk"], null], "session_hash": ...}`, each
-- session_hash taking 20 events before a fresh one replaces it. The same script
-- drives Gradio and Keepsake's Gradio-compatible bridge.
-- Usage: wrk -s run.lua URL -- PATH

local path
local EVENTS_PER_SESSION = 20
-- Names in use at once: more than connections, so that no two requests of one
-- session are usually in flight at once.
local POOL = 100
local count = 0
local run_id

function init(args)
  path = args[1]
  -- Names of their own per run: sessions of an earlier round are not continued.
  math.randomseed(os.time() + math.floor(os.clock() * 1e6))
  run_id = string.format("%08x", math.random(0, 0x7fffffff))
end

function request()
  local generation = math.floor(count / (EVENTS_PER_SESSION * POOL))
  local slot = count % POOL
  count = count + 1
  local body = string.format(
    '{"data":[["Milk"],null],"fn_index":0,"session_hash":"bench-%s-%d-%d"}',
    run_id, generation, slot)
  return wrk.format("POST", path, { ["Content-Type"] = "application/json" }, body)
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("WRK requests=%d seconds=%.3f p50_us=%d p99_us=%d errors=%d\n",
    summary.requests, summary.duration / 1e6, latency:percentile(50), latency:percentile(99),
    e.connect + e.read + e.write + e.status + e.timeout))
end
