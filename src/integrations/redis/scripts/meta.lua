-- metadata: ARGV[3] id, ARGV[4] principal digest, ARGV[5] op, ARGV[6] the
-- most bytes of metadata (names + values) a session may hold, ARGV[7] the
-- most bytes of integration state, then the op's args from ARGV[8].
-- The session's fields are one MessagePack map in the `data` hash: `m:<name>`
-- metadata, `r:<name>` integration state. Each write sets only the fields
-- it names, so writers of different fields never clobber each other.
--   set  name value [name value ...]  -> 1
--   get                               -> {name, value, ...}
--   incr name by                      -> the new value
--   del  name [name ...]              -> 1
--   rset name value / rget name        (internal fields `r:<name>`, no
--                                       principal check: the rmcp store)
-- Every op first checks the session is live, unexpired and visible to the
-- principal; returns false (nil) otherwise. A write that would take the
-- session past a byte limit changes nothing and returns {'too_large', bytes}.
-- Never touches the idle deadline.
local id, digest, op = ARGV[3], ARGV[4], ARGV[5]
local max_meta, max_state = tonumber(ARGV[6]), tonumber(ARGV[7])
local now = now_ms()
if op == 'rset' or op == 'rget' then
  -- Internal state: no principal check, but the session must be live and
  -- its owner entry present (a session that lost it is not found).
  if not check_live(id, now) or not redis.call('HGET', K_OWNER, id) then
    return false
  end
elseif not visible(id, digest, now) then
  return false
end
local fields = load_data(id)
local function save(kind, limit)
  local bytes = data_bytes(fields, kind)
  if bytes > limit then
    return {'too_large', bytes}
  end
  store_data(id, fields)
  return nil
end
if op == 'set' then
  for i = 8, #ARGV, 2 do
    fields['m:' .. ARGV[i]] = ARGV[i + 1]
  end
  return save('m:', max_meta) or 1
elseif op == 'get' then
  local out = {}
  for name, value in pairs(fields) do
    if string.sub(name, 1, 2) == 'm:' then
      out[#out + 1] = string.sub(name, 3)
      out[#out + 1] = value
    end
  end
  return out
elseif op == 'incr' then
  local name = 'm:' .. ARGV[8]
  local current = fields[name] or '0'
  if not string.match(current, '^%-?%d+$') then
    return redis.error_reply('ERR metadata field is not an integer')
  end
  -- Exact for |values| < 2^53 (Lua numbers are doubles).
  local value = tonumber(current) + tonumber(ARGV[9])
  fields[name] = string.format('%d', value)
  local err = save('m:', max_meta)
  if err then return err end
  return value
elseif op == 'del' then
  for i = 8, #ARGV do
    fields['m:' .. ARGV[i]] = nil
  end
  store_data(id, fields)
  return 1
elseif op == 'rset' then
  fields['r:' .. ARGV[8]] = ARGV[9]
  return save('r:', max_state) or 1
elseif op == 'rget' then
  local v = fields['r:' .. ARGV[8]]
  if not v then return {} end
  return {v}
end
return redis.error_reply('ERR unknown meta op')
