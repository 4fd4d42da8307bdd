-- Gives back what an event held without writing anything.
-- ARGV: ns, id (or ''), lease token, globals token, then global indices.
-- Each key is deleted only if this event's token still holds it.
local ns, sid, token, gtoken = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
if sid ~= '' then
  local lease = ns .. ':lease:' .. sid
  if redis.call('GET', lease) == token then redis.call('DEL', lease) end
end
for i = 5, #ARGV do
  local lock = ns .. ':glock:' .. ARGV[i]
  if redis.call('GET', lock) == gtoken then redis.call('DEL', lock) end
end
return 0
