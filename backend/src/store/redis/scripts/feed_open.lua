-- ARGV: ns, id, limit, keep-alive ms. Returns -1 (unknown), 0 (full) or the count.
-- A session with an open page moves to the ATTACHED band of the LRU order.
local ns, sid = ARGV[1], ARGV[2]
local lru = ns .. ':lru'
if not redis.call('ZSCORE', lru, sid) then return -1 end
local key = ns .. ':streams:' .. sid
local open = redis.call('INCR', key)
if open > tonumber(ARGV[3]) then
  redis.call('DECR', key)
  return 0
end
redis.call('PEXPIRE', key, ARGV[4])
redis.call('ZADD', lru, 'XX', ATTACHED + redis.call('INCR', ns .. ':seq'), sid)
redis.call('ZADD', ns .. ':deadlines', 'GT', now_ms() + tonumber(ARGV[4]), 's:' .. sid)
return open
