-- Keeps a running event's hold: its session's lease and its globals' locks get the
-- lease's time again, if every one still holds the event's token.
-- ARGV: ns, id, token, lease ms, then the indices of the globals the event locked.
-- Returns 1 (all held, all renewed) or 0 (one was lost: none is renewed, and the
-- commit will find it lost).
local ns, sid, token, lease = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local keys = {ns .. ':lease:' .. sid}
for i = 5, #ARGV do keys[#keys + 1] = ns .. ':glock:' .. ARGV[i] end
for _, key in ipairs(keys) do
  if redis.call('GET', key) ~= token then return 0 end
end
for _, key in ipairs(keys) do redis.call('PEXPIRE', key, lease) end
return 1
