-- ARGV: ns, token, lease ms, then global indices (sorted). Takes every lock or
-- none: returns 'busy' (another event holds one; those taken here are given back),
-- or 'ok' followed by each global's value (false where never written).
local ns, token, lease = ARGV[1], ARGV[2], ARGV[3]
for i = 4, #ARGV do
  if not redis.call('SET', ns .. ':glock:' .. ARGV[i], token, 'NX', 'PX', lease) then
    for j = 4, i - 1 do redis.call('DEL', ns .. ':glock:' .. ARGV[j]) end
    return {'busy'}
  end
end
local result = {'ok'}
for i = 4, #ARGV do
  result[#result + 1] = redis.call('GET', ns .. ':g:' .. ARGV[i])
end
return result
