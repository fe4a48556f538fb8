-- metadata: ARGV[3] id, ARGV[4] principal digest, ARGV[5] op, then op args.
-- Fields live in the session hash as `m:<name>`; each write sets only the
-- fields it names (HSET merges), so writers of different fields never
-- clobber each other.
--   set  name value [name value ...]  -> 1
--   get                               -> {name, value, ...}
--   incr name by                      -> the new value (HINCRBY)
--   del  name [name ...]              -> 1
--   rset name value / rget name        (internal fields `r:<name>`, no
--                                       principal check: the rmcp store)
-- Every op first checks the session is live, unexpired and visible to the
-- principal; returns false (nil) otherwise. Never touches the idle deadline.
local id, digest, op = ARGV[3], ARGV[4], ARGV[5]
local now = now_ms()
if op == 'rset' or op == 'rget' then
  digest = nil
end
if digest then
  if not visible(id, digest, now) then return false end
elseif not check_live(id, now) then
  return false
end
local key = S_PREFIX .. id
if op == 'set' then
  for i = 6, #ARGV, 2 do
    redis.call('HSET', key, 'm:' .. ARGV[i], ARGV[i + 1])
  end
  return 1
elseif op == 'get' then
  local all = redis.call('HGETALL', key)
  local out = {}
  for i = 1, #all, 2 do
    if string.sub(all[i], 1, 2) == 'm:' then
      out[#out + 1] = string.sub(all[i], 3)
      out[#out + 1] = all[i + 1]
    end
  end
  return out
elseif op == 'incr' then
  return redis.call('HINCRBY', key, 'm:' .. ARGV[6], ARGV[7])
elseif op == 'del' then
  for i = 6, #ARGV do
    redis.call('HDEL', key, 'm:' .. ARGV[i])
  end
  return 1
elseif op == 'rset' then
  redis.call('HSET', key, 'r:' .. ARGV[6], ARGV[7])
  return 1
elseif op == 'rget' then
  local v = redis.call('HGET', key, 'r:' .. ARGV[6])
  if not v then return {} end
  return {v}
end
return redis.error_reply('unknown meta op')
