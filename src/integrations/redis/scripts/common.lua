-- Shared by every script of mcp-session-core's Redis registry (prepended to
-- each one). All keys share the hash tag `{prefix}`, so a registry lives in
-- one Redis Cluster slot.
--
-- KEYS[1] fifo    ZSET id -> global creation sequence (the live sessions)
-- KEYS[2] idle    ZSET id -> idle deadline (ms, Redis server time)
-- KEYS[3] life    ZSET id -> max-lifetime deadline
-- KEYS[4] init    ZSET id -> init deadline (pending sessions only)
-- KEYS[5] seq     STRING the global creation sequence
-- KEYS[6] rate    ZSET grant sequence -> grant time (the sliding window)
-- KEYS[7] events  STREAM close events {id, reason}, MAXLEN ~ ARGV[2]
-- KEYS[8] stats   HASH monotonic counters
-- ARGV[1] the session-hash key prefix, `{prefix}:s:`
-- ARGV[2] the close-event stream's approximate MAXLEN
local K_FIFO, K_IDLE, K_LIFE, K_INIT = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local K_SEQ, K_RATE, K_EVENTS, K_STATS = KEYS[5], KEYS[6], KEYS[7], KEYS[8]
local S_PREFIX = ARGV[1]
local EVENTS_MAXLEN = ARGV[2]

-- Redis server time in ms: every instance sees the same clock.
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

-- Removes a live session with `reason`; emits its close event and counts
-- it. Returns true if it was live (exactly-once close).
local function remove(id, reason)
  if redis.call('ZREM', K_FIFO, id) == 0 then
    return false
  end
  redis.call('ZREM', K_IDLE, id)
  redis.call('ZREM', K_LIFE, id)
  redis.call('ZREM', K_INIT, id)
  redis.call('DEL', S_PREFIX .. id)
  redis.call('XADD', K_EVENTS, 'MAXLEN', '~', EVENTS_MAXLEN, '*', 'id', id, 'reason', reason)
  redis.call('HINCRBY', K_STATS, reason, 1)
  return true
end

-- Removes every session whose deadline in `key` is <= now.
local function sweep_set(key, now, reason)
  local ids = redis.call('ZRANGEBYSCORE', key, '-inf', now)
  local n = 0
  for _, id in ipairs(ids) do
    if remove(id, reason) then n = n + 1 end
  end
  -- Entries of sessions already gone (cannot normally exist; belt and braces).
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now)
  return n
end

-- Removes every expired session. After it, ZCARD(fifo) is exactly the
-- number of live, unexpired sessions.
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
-- A session stored with an empty digest is unbound (any caller finds it).
local function visible(id, digest, now)
  if not check_live(id, now) then
    return false
  end
  local bound = redis.call('HGET', S_PREFIX .. id, 'p')
  if bound and bound ~= '' and bound ~= digest then
    return false
  end
  return true
end
