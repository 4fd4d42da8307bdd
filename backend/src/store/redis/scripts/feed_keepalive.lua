-- ARGV: ns, id, keep-alive ms. Returns 1 if the session is alive.
local ns, sid = ARGV[1], ARGV[2]
if not redis.call('ZSCORE', ns .. ':lru', sid) then return 0 end
redis.call('PEXPIRE', ns .. ':streams:' .. sid, ARGV[3])
redis.call('ZADD', ns .. ':deadlines', 'GT', now_ms() + tonumber(ARGV[3]), 's:' .. sid)
return 1
