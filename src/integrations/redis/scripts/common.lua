-- Shared by every script of mcp-session-core's Redis registry (prepended to
-- each one). Every key a script touches is passed in KEYS (Redis's rule for
-- scripts, which Redis Cluster and proxies rely on); all share the hash tag
-- `{prefix}`, so a registry lives in one Redis Cluster slot.
--
-- KEYS[1]  fifo    ZSET id -> global creation sequence (the live sessions)
-- KEYS[2]  idle    ZSET id -> idle deadline (ms, Redis server time)
-- KEYS[3]  life    ZSET id -> max-lifetime deadline
-- KEYS[4]  init    ZSET id -> init deadline (pending sessions only)
-- KEYS[5]  seq     STRING the global creation sequence
-- KEYS[6]  rate    ZSET grant sequence -> grant time (the sliding window)
-- KEYS[7]  events  STREAM close events {id, reason, n}, MAXLEN ~ ARGV[1]
-- KEYS[8]  stats   HASH monotonic counters
-- KEYS[9]  owner   HASH id -> principal digest ('' = unbound); a live
--                  session without an entry here is not found by anyone
-- KEYS[10] data    HASH id -> MessagePack map of the session's fields
--                  (`m:<name>` metadata, `r:<name>` integration state)
-- KEYS[11] byprin  ZSET (all scores 0) of class .. seq (20 digits) .. id,
--                  class = 'p' .. principal digest, or 'a' for unbound
--                  sessions: each class's sessions in creation order, for
--                  the per-principal bound (ZLEXCOUNT) and its FIFO
-- ARGV[1] the close-event stream's approximate MAXLEN
-- ARGV[2] the most expired sessions one call removes per deadline set
local K_FIFO, K_IDLE, K_LIFE, K_INIT = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local K_SEQ, K_RATE, K_EVENTS, K_STATS = KEYS[5], KEYS[6], KEYS[7], KEYS[8]
local K_OWNER, K_DATA, K_BYPRIN = KEYS[9], KEYS[10], KEYS[11]
local EVENTS_MAXLEN = ARGV[1]
local SWEEP_BATCH = tonumber(ARGV[2])

-- Redis server time in ms: every instance sees the same clock.
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

-- The class of a principal digest: its sessions share this prefix in
-- K_BYPRIN ('a': unbound sessions, the anonymous class).
local function class_of(digest)
  if digest == '' then
    return 'a'
  end
  return 'p' .. digest
end

-- A session's entry in K_BYPRIN.
local function class_member(digest, seq, id)
  return class_of(digest) .. string.format('%020d', tonumber(seq)) .. id
end

-- Removes a live session with `reason`; emits its close event and counts
-- it. Returns true if it was live (exactly-once close).
local function remove(id, reason)
  local seq = redis.call('ZSCORE', K_FIFO, id)
  if not seq then
    return false
  end
  redis.call('ZREM', K_FIFO, id)
  local digest = redis.call('HGET', K_OWNER, id)
  if digest then
    redis.call('ZREM', K_BYPRIN, class_member(digest, seq, id))
  end
  redis.call('ZREM', K_IDLE, id)
  redis.call('ZREM', K_LIFE, id)
  redis.call('ZREM', K_INIT, id)
  redis.call('HDEL', K_OWNER, id)
  redis.call('HDEL', K_DATA, id)
  -- `n` numbers the events consecutively, so that a reader can tell that
  -- events it had not read were trimmed away.
  local n = redis.call('HINCRBY', K_STATS, 'events', 1)
  redis.call('XADD', K_EVENTS, 'MAXLEN', '~', EVENTS_MAXLEN, '*', 'id', id, 'reason', reason, 'n', n)
  redis.call('HINCRBY', K_STATS, reason, 1)
  return true
end

-- Removes at most SWEEP_BATCH sessions whose deadline in `key` is <= now
-- (the oldest deadlines first), so one call's work is bounded however many
-- sessions expired. Returns how many were live.
local function sweep_set(key, now, reason)
  local ids = redis.call('ZRANGEBYSCORE', key, '-inf', now, 'LIMIT', 0, SWEEP_BATCH)
  local n = 0
  for _, id in ipairs(ids) do
    if remove(id, reason) then
      n = n + 1
    else
      -- An entry of a session already gone (cannot normally exist).
      redis.call('ZREM', key, id)
    end
  end
  return n
end

-- Removes up to SWEEP_BATCH expired sessions per deadline set. If any
-- session has expired, at least one is removed: a create at capacity then
-- gets its slot from an expired session, never from a live one.
local function sweep(now)
  return sweep_set(K_LIFE, now, 'max_lifetime')
    + sweep_set(K_INIT, now, 'init_timeout')
    + sweep_set(K_IDLE, now, 'idle_timeout')
end

-- If session `id` is live but past a deadline, closes it with that reason.
-- Returns true if `id` is live and unexpired.
local function check_live(id, now)
  if not redis.call('ZSCORE', K_FIFO, id) then
    return false
  end
  for _, d in ipairs({{K_LIFE, 'max_lifetime'}, {K_INIT, 'init_timeout'}, {K_IDLE, 'idle_timeout'}}) do
    local deadline = redis.call('ZSCORE', d[1], id)
    if deadline and tonumber(deadline) <= now then
      remove(id, d[2])
      return false
    end
  end
  return true
end

-- Live, unexpired and visible to the presented principal digest ('' = none).
-- A session stored with an empty digest is unbound (any caller finds it); a
-- session whose owner entry is missing (it cannot be missing unless Redis
-- lost data) is found by nobody: binding fails closed.
local function visible(id, digest, now)
  if not check_live(id, now) then
    return false
  end
  local bound = redis.call('HGET', K_OWNER, id)
  if not bound then
    return false
  end
  if bound ~= '' and bound ~= digest then
    return false
  end
  return true
end

-- The session's fields (a table name -> value), {} if none.
local function load_data(id)
  local packed = redis.call('HGET', K_DATA, id)
  if not packed then
    return {}
  end
  return cmsgpack.unpack(packed)
end

-- Stores the session's fields; an empty table removes the entry.
local function store_data(id, fields)
  if next(fields) == nil then
    redis.call('HDEL', K_DATA, id)
  else
    redis.call('HSET', K_DATA, id, cmsgpack.pack(fields))
  end
end

-- Bytes (names + values) of the fields whose name starts with `kind`.
local function data_bytes(fields, kind)
  local n = 0
  for name, value in pairs(fields) do
    if string.sub(name, 1, 2) == kind then
      n = n + #name - 2 + #value
    end
  end
  return n
end
