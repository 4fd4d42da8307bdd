-- ARGV: ns, most entries to pop, state count. Returns what ended.
local ns = ARGV[1]
local deadlines = ns .. ':deadlines'
local due = redis.call('ZRANGEBYSCORE', deadlines, '-inf', now_ms(), 'LIMIT', 0, tonumber(ARGV[2]))
local ended = {}
for _, member in ipairs(due) do
  local kind, rest = string.sub(member, 1, 1), string.sub(member, 3)
  if kind == 's' then
    redis.call('ZREM', deadlines, member)
    if redis.call('ZSCORE', ns .. ':lru', rest) then
      table.insert(ended, end_session(ns, rest, 'expired', tonumber(ARGV[3])))
    end
  else
    local sid, index = string.match(rest, '^(%x+):(%d+)$')
    -- A state of a session whose event is running expires after that event.
    if sid and redis.call('EXISTS', ns .. ':lease:' .. sid) == 0 then
      redis.call('ZREM', deadlines, member)
      local value = redis.call('HGET', ns .. ':v:' .. sid, index)
      if value then
        redis.call('HDEL', ns .. ':v:' .. sid, index)
        table.insert(ended, cjson.encode({kind = 'state', id = sid, state = tonumber(index), value = value}))
      end
    elseif not sid then
      redis.call('ZREM', deadlines, member)
    end
  end
end
return ended
