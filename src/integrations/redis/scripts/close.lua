-- close: ARGV[3] id, ARGV[4] op:
--   'close'   close the session (reason `closed`)
--   'confirm' confirm it (its init deadline no longer applies)
--   'abandon' close it with reason `init_timeout` if it is still pending
--             (a create whose reply never reached its caller)
-- An expired session closes with its expiry reason and counts as not found.
-- Returns 1 if the session was live (and is now closed / confirmed), else 0.
local id, op = ARGV[3], ARGV[4]
local now = now_ms()
if not check_live(id, now) then
  return 0
end
if op == 'confirm' then
  redis.call('ZREM', K_INIT, id)
  return 1
end
if op == 'abandon' then
  if not redis.call('ZSCORE', K_INIT, id) then
    return 0
  end
  remove(id, 'init_timeout')
  return 1
end
remove(id, 'closed')
return 1
