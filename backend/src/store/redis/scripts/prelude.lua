-- Shared by every script but `release`. Time is Redis's own clock, never an
-- instance's. Scores in `lru` at or above ATTACHED belong to sessions with an open
-- page: eviction pops the lowest score, so it reaches them only when no other
-- session is left, and then refuses instead.
local ATTACHED = 4503599627370496
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local function end_session(ns, sid, reason, states)
  local vkey = ns .. ':v:' .. sid
  local flat = redis.call('HGETALL', vkey)
  local values = {}
  for i = 1, #flat, 2 do values[flat[i]] = flat[i + 1] end
  redis.call('DEL', vkey, ns .. ':streams:' .. sid, ns .. ':lease:' .. sid)
  redis.call('ZREM', ns .. ':lru', sid)
  redis.call('ZREM', ns .. ':deadlines', 's:' .. sid)
  for i = 0, states - 1 do
    redis.call('ZREM', ns .. ':deadlines', 't:' .. sid .. ':' .. i)
  end
  redis.call('PUBLISH', ns .. ':events', cjson.encode({ended = sid}))
  return cjson.encode({kind = 'session', id = sid, reason = reason, values = values})
end
