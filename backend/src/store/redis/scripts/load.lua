-- ARGV: ns, id, token, lease ms, retention ms. Returns 'unknown', 'busy', or 'ok'
-- followed by the session's values as field, value pairs. A use: the session moves
-- to the most recent end of the LRU order (of its band) and, without an open page,
-- its retention clock restarts.
local ns, sid = ARGV[1], ARGV[2]
local lru = ns .. ':lru'
if not redis.call('ZSCORE', lru, sid) then return {'unknown'} end
if not redis.call('SET', ns .. ':lease:' .. sid, ARGV[3], 'NX', 'PX', ARGV[4]) then
  return {'busy'}
end
local sequence = redis.call('INCR', ns .. ':seq')
if tonumber(redis.call('GET', ns .. ':streams:' .. sid) or '0') <= 0 then
  redis.call('ZADD', lru, 'XX', sequence, sid)
  redis.call('ZADD', ns .. ':deadlines', now_ms() + tonumber(ARGV[5]), 's:' .. sid)
else
  redis.call('ZADD', lru, 'XX', ATTACHED + sequence, sid)
end
local result = redis.call('HGETALL', ns .. ':v:' .. sid)
table.insert(result, 1, 'ok')
return result
