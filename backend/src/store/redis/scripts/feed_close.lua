-- ARGV: ns, id, retention ms. Returns 1 if that was the last stream of a live
-- session; then it leaves the ATTACHED band as the most recently used session and
-- its retention clock starts.
local ns, sid = ARGV[1], ARGV[2]
local key = ns .. ':streams:' .. sid
if redis.call('DECR', key) > 0 then return 0 end
redis.call('DEL', key)
local lru = ns .. ':lru'
if redis.call('ZSCORE', lru, sid) then
  redis.call('ZADD', lru, 'XX', redis.call('INCR', ns .. ':seq'), sid)
  redis.call('ZADD', ns .. ':deadlines', now_ms() + tonumber(ARGV[3]), 's:' .. sid)
  return 1
end
return 0
