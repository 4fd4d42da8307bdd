-- wrk script: the cart's "Add Items" event, each session taking 20 events before a
-- fresh one replaces it, as the own load generator does. Sessions are the server's
-- own: `POST start_path` answers `{"session_id": ...}`; events go to
-- `events_prefix .. id .. events_suffix` with `body`.
-- Usage: wrk -s sessions.lua URL -- START_PATH EVENTS_PREFIX EVENTS_SUFFIX BODY
-- The latency figures include the session starts (one request in 21), for the
-- baseline as for Keepsake.

local start_path, events_prefix, events_suffix, body
local EVENTS_PER_SESSION = 20
-- Sessions with events left: more than connections, so that no two requests of
-- one session are usually in flight at once.
local POOL = 100
local pool, pending, turn = {}, 0, 0

function init(args)
  start_path, events_prefix, events_suffix, body = args[1], args[2], args[3], args[4]
end

function request()
  if #pool + pending < POOL or #pool == 0 then
    pending = pending + 1
    return wrk.format("POST", start_path, { ["Content-Length"] = "0" }, "")
  end
  turn = turn % #pool + 1
  local session = pool[turn]
  session.left = session.left - 1
  local path = events_prefix .. session.id .. events_suffix
  if session.left == 0 then
    pool[turn] = pool[#pool]
    pool[#pool] = nil
  end
  return wrk.format("POST", path, { ["Content-Type"] = "application/json" }, body)
end

function response(status, headers, answer)
  local id = answer and answer:match('"session_id"%s*:%s*"(%x+)"')
  if id then
    pending = pending - 1
    pool[#pool + 1] = { id = id, left = EVENTS_PER_SESSION }
  end
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("WRK requests=%d seconds=%.3f p50_us=%d p99_us=%d errors=%d\n",
    summary.requests, summary.duration / 1e6, latency:percentile(50), latency:percentile(99),
    e.connect + e.read + e.write + e.status + e.timeout))
end
