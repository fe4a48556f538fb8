-- lookup: validate + touch. ARGV[3] id, ARGV[4] principal digest ('' = none),
-- ARGV[5] idle ms (0 = off). Returns 1 if found (and its idle deadline
-- refreshed), 0 otherwise (unknown, closed, evicted, expired, or another
-- principal's: the same answer).
local id, digest, idle_ms = ARGV[3], ARGV[4], tonumber(ARGV[5])
local now = now_ms()
if not visible(id, digest, now) then
  return 0
end
if idle_ms > 0 then
  redis.call('ZADD', K_IDLE, 'XX', now + idle_ms, id)
end
return 1
