-- take: the single-use redemption. ARGV[3] id, ARGV[4] principal digest
-- ('' = none). If the session is live, unexpired and visible to the digest,
-- removes it with reason `redeemed` (its slot freed, its close event
-- written, once: the script is atomic, so among concurrent takers, closes,
-- evictions and expiries exactly one removes it). An expired session closes
-- with its expiry reason instead.
-- Returns 1 if this call took it, 0 otherwise (unknown, closed, evicted,
-- expired, taken, or another principal's: the same answer).
local id, digest = ARGV[3], ARGV[4]
local now = now_ms()
if not visible(id, digest, now) then
  return 0
end
remove(id, 'redeemed')
return 1
