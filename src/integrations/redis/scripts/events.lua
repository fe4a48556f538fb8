-- events: the next close events after ARGV[1] (a stream id, '0-0' for the
-- beginning), at most ARGV[2], and whether events after ARGV[1] were lost
-- unread. ARGV[3] is the event number `n` of the entry ARGV[1] ('' if not
-- known), ARGV[4] '1' if this reader has read the stream before (it then
-- exists: this script creates it, empty, when it is missing). KEYS[1] the close-event stream, KEYS[2] the stats hash (counts
-- `events_gaps`). One script, so the check and the read see the same
-- stream.
--
-- Every close event carries `n`, the fleet's count of close events so far
-- (HINCRBY in the same script as the XADD), so consecutive events have
-- consecutive numbers: the first event read after one numbered k must be
-- numbered k + 1, or events in between were trimmed away (or Redis lost
-- the stream and started a new one).
-- Returns {gap (0/1), from, entries...}: `from` is the id the entries
-- follow (not ARGV[1] when the stream was lost or replaced), entries as
-- XRANGE returns them.
local after, count, expected = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local seen = ARGV[4] == '1'

local function parse(id)
  local ms, seq = string.match(id, '^(%d+)%-(%d+)$')
  return tonumber(ms or 0), tonumber(seq or 0)
end
local function greater(a, b)
  local am, as = parse(a)
  local bm, bs = parse(b)
  return am > bm or (am == bm and as > bs)
end
local function number(entry)
  local fields = entry[2]
  for i = 1, #fields, 2 do
    if fields[i] == 'n' then return tonumber(fields[i + 1]) end
  end
  return nil
end

local gap = 0
if redis.call('EXISTS', KEYS[1]) == 0 then
  -- Created empty (a consumer group made and dropped), so that its loss
  -- is seen even before the first close event.
  redis.call('XGROUP', 'CREATE', KEYS[1], 'mcp-session-core', '$', 'MKSTREAM')
  redis.call('XGROUP', 'DESTROY', KEYS[1], 'mcp-session-core')
  if seen or after ~= '0-0' then
    -- Redis lost its data (restart without persistence, a failover to a
    -- replica that had not received it, a flush).
    gap = 1
    after = '0-0'
  end
elseif after ~= '0-0' then
  local last = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)[1]
  if not last then
    -- Emptied (trimmed to nothing cannot happen): lost, start over.
    gap = 1
    after = '0-0'
  elseif greater(after, last[1]) then
    -- The stream ends before what we read: a failover to a replica that
    -- had not received the newest events (its stream is a prefix of the
    -- one we read). Resume after its last entry, which we have read.
    gap = 1
    after = last[1]
  elseif not expected then
    -- The number of `after` is not known (a subscription resuming from an
    -- id): if that entry was trimmed away, so may the ones after it.
    local at = redis.call('XRANGE', KEYS[1], after, after)[1]
    if at then
      expected = number(at)
    else
      local first = redis.call('XRANGE', KEYS[1], '-', '+', 'COUNT', 1)[1]
      if first and greater(first[1], after) then gap = 1 end
    end
  end
end
local entries = redis.call('XRANGE', KEYS[1], '(' .. after, '+', 'COUNT', count)
if gap == 0 and expected and entries[1] then
  local n = number(entries[1])
  if n and n ~= expected + 1 then gap = 1 end
end
if gap == 1 then
  redis.call('HINCRBY', KEYS[2], 'events_gaps', 1)
end
local out = {gap, after}
for _, entry in ipairs(entries) do out[#out + 1] = entry end
return out
