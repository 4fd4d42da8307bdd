-- ARGV: ns, id, capacity, retention ms, state count.
-- Idempotent: under a live id nothing changes and it returns 'ok'.
-- Returns 'ok' or 'full' (every session left has an open page: the session was not
-- created), followed by the sessions evicted.
local ns, sid = ARGV[1], ARGV[2]
local capacity, retention, states = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
local lru = ns .. ':lru'
local ended = {'ok'}
-- A live id is that session (the caller's later use touches it): two starts of one
-- id never make two sessions.
if redis.call('ZSCORE', lru, sid) then
  return ended
end
while redis.call('ZCARD', lru) >= capacity do
  local oldest = redis.call('ZRANGE', lru, 0, 0, 'WITHSCORES')
  if #oldest == 0 then break end
  if tonumber(oldest[2]) >= ATTACHED then
    ended[1] = 'full'
    return ended
  end
  table.insert(ended, end_session(ns, oldest[1], 'evicted', states))
end
redis.call('ZADD', lru, redis.call('INCR', ns .. ':seq'), sid)
redis.call('ZADD', ns .. ':deadlines', now_ms() + retention, 's:' .. sid)
return ended
