-- purge: removes every expired session (close events with their reasons).
-- ARGV[3] 'stats' to also return the counters.
-- Returns {removed, live, counters...}.
local now = now_ms()
local removed = sweep(now)
local out = {removed, redis.call('ZCARD', K_FIFO)}
if ARGV[3] == 'stats' then
  local all = redis.call('HGETALL', K_STATS)
  for i = 1, #all do out[#out + 1] = all[i] end
end
return out
