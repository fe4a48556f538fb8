-- purge: removes expired sessions, at most ARGV[2] per deadline set per call
-- (close events with their reasons). ARGV[3] 'stats' to also return the
-- counters.
-- Returns {removed, live, more (1 if a set may hold more expired), counters...}.
local now = now_ms()
local removed = sweep(now)
local more = 0
for _, key in ipairs({K_LIFE, K_INIT, K_IDLE}) do
  if #redis.call('ZRANGEBYSCORE', key, '-inf', now, 'LIMIT', 0, 1) > 0 then
    more = 1
  end
end
local out = {removed, redis.call('ZCARD', K_FIFO), more}
if ARGV[3] == 'stats' then
  local all = redis.call('HGETALL', K_STATS)
  for i = 1, #all do out[#out + 1] = all[i] end
end
return out
