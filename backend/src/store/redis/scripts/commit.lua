-- One event's writes, all or nothing.
-- ARGV: ns, id, lease token, globals token, state count n, then n (state index,
-- envelope, time-to-live ms or 0 to leave its deadline alone) triples, global count
-- m, then m (global index, envelope) pairs, then the index of every global the
-- event locked (those it changed among them).
-- Checks the lease and every lock first; writes only if all are held, then gives
-- them all back: returns 'unknown' (session ended), 'lost' (the lease or a lock ran
-- out), or 'ok'.
local ns, sid, token, gtoken = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local n = tonumber(ARGV[5])
local lease = ns .. ':lease:' .. sid
-- A held lease means a live session (ending one deletes its lease): the session is
-- looked up only to tell why the lease is not held.
if redis.call('GET', lease) ~= token then
  if not redis.call('ZSCORE', ns .. ':lru', sid) then return 'unknown' end
  return 'lost'
end
local m_at = 6 + 3 * n
local m = tonumber(ARGV[m_at])
local first_locked = m_at + 1 + 2 * m
for i = first_locked, #ARGV do
  if redis.call('GET', ns .. ':glock:' .. ARGV[i]) ~= gtoken then return 'lost' end
end
local now
for i = 6, m_at - 1, 3 do
  redis.call('HSET', ns .. ':v:' .. sid, ARGV[i], ARGV[i + 1])
  local ttl = tonumber(ARGV[i + 2])
  if ttl > 0 then
    now = now or now_ms()
    redis.call('ZADD', ns .. ':deadlines', now + ttl, 't:' .. sid .. ':' .. ARGV[i])
  end
end
for i = m_at + 1, first_locked - 1, 2 do
  redis.call('SET', ns .. ':g:' .. ARGV[i], ARGV[i + 1])
  redis.call('PUBLISH', ns .. ':events', cjson.encode({global = tonumber(ARGV[i]), value = ARGV[i + 1]}))
end
for i = first_locked, #ARGV do
  redis.call('DEL', ns .. ':glock:' .. ARGV[i])
end
redis.call('DEL', lease)
return 'ok'
