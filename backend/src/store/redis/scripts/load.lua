-- ARGV: ns, id, token, lease ms, retention ms, then the indices (sorted) of the
-- globals the event may write. Takes the session's lease and every one of those
-- globals' locks (all under `token`), or none of them. Returns 'unknown', 'busy',
-- or 'ok' followed by each of those globals' values (false where never written),
-- then the session's values as field, value pairs. A use: the session moves to the
-- most recent end of the LRU order (of its band) and, without an open page, its
-- retention clock restarts.
local ns, sid, token, lease = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local lru = ns .. ':lru'
local score = redis.call('ZSCORE', lru, sid)
if not score then return {'unknown'} end
local lease_key = ns .. ':lease:' .. sid
if not redis.call('SET', lease_key, token, 'NX', 'PX', lease) then
  return {'busy'}
end
for i = 6, #ARGV do
  if not redis.call('SET', ns .. ':glock:' .. ARGV[i], token, 'NX', 'PX', lease) then
    for j = 6, i - 1 do redis.call('DEL', ns .. ':glock:' .. ARGV[j]) end
    redis.call('DEL', lease_key)
    return {'busy'}
  end
end
local sequence = redis.call('INCR', ns .. ':seq')
-- Only a session in the ATTACHED band can have open streams (the first stream moves
-- it there, the last one out); its counter is read because it runs out by itself
-- when the instance holding the pages is gone.
if tonumber(score) < ATTACHED
  or tonumber(redis.call('GET', ns .. ':streams:' .. sid) or '0') <= 0 then
  redis.call('ZADD', lru, 'XX', sequence, sid)
  redis.call('ZADD', ns .. ':deadlines', now_ms() + tonumber(ARGV[5]), 's:' .. sid)
else
  redis.call('ZADD', lru, 'XX', ATTACHED + sequence, sid)
end
local result = {'ok'}
for i = 6, #ARGV do
  result[#result + 1] = redis.call('GET', ns .. ':g:' .. ARGV[i])
end
local values = redis.call('HGETALL', ns .. ':v:' .. sid)
for i = 1, #values do result[#result + 1] = values[i] end
return result
