-- create: recognise a repeat, sweep (bounded), rate limit, bound (evict the
-- oldest or reject), insert.
-- KEYS[12] (only with the per-principal rate limit) the class's grants (ZSET grant sequence -> grant time), its
-- sliding window for the per-principal rate limit: `{prefix}:prate:a` for
-- unbound sessions, `{prefix}:prate:p<hex digest>` for a principal. It
-- expires one window after the class's last grant, so a principal that
-- created nothing inside its window holds no memory.
-- ARGV[3] id, ARGV[4] principal digest ('' = unbound), ARGV[5] max_sessions,
-- ARGV[6] evict (1) or reject (0), ARGV[7] idle ms, ARGV[8] lifetime ms,
-- ARGV[9] init ms (0 = off each), ARGV[10] rate max, ARGV[11] rate window ms
-- (0 = off), ARGV[12] per-principal cap, ARGV[13] anonymous cap (0 = off
-- each), ARGV[14] per-principal rate max, ARGV[15] its window ms (0 = off).
-- Returns {'ok', seq, evicted ids...} | {'rate_limited', retry_ms} |
-- {'principal_rate_limited', retry_ms} | {'full'} | {'principal_full'} |
-- {'collision', seq, same principal (1/0)}.
local K_PRATE = KEYS[12]
local id, digest = ARGV[3], ARGV[4]
local max_sessions, evict = tonumber(ARGV[5]), ARGV[6] == '1'
local idle_ms, life_ms, init_ms = tonumber(ARGV[7]), tonumber(ARGV[8]), tonumber(ARGV[9])
local rate_max, rate_window = tonumber(ARGV[10]), tonumber(ARGV[11])
local class_cap = tonumber(ARGV[12])
if digest == '' then class_cap = tonumber(ARGV[13]) end
local prate_max, prate_window = tonumber(ARGV[14]), tonumber(ARGV[15])

-- The id is taken. Checked first, before the rate limit and the bound: a
-- repeated create (its first reply was lost) finds its own session here
-- (same id and principal, {'collision', seq, 1}) and is not refused for a
-- session it already holds.
local taken = redis.call('ZSCORE', K_FIFO, id)
if taken then
  local same = redis.call('HGET', K_OWNER, id) == digest
  return {'collision', tonumber(taken), same and 1 or 0}
end

local now = now_ms()
sweep(now)

-- A sliding window of `max` grants per `window` ms in ZSET `key`: nil if
-- it has room now, else the ms until its oldest grant leaves the window.
-- The grants inside a window are at most `max`, so the work is bounded.
local function window_full(key, max, window, now)
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
  if redis.call('ZCARD', key) < max then
    return nil
  end
  local oldest = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
  local retry = tonumber(oldest[2]) + window - now
  if retry < 1 then retry = 1 end
  return retry
end

-- The principal's own window first (the core's order): a principal over
-- its limit spends none of the fleet-wide budget. Grants are recorded only
-- when the create succeeds, so a refused create spends neither.
if prate_max > 0 then
  local retry = window_full(K_PRATE, prate_max, prate_window, now)
  if retry then
    redis.call('HINCRBY', K_STATS, 'rate_limited_principal', 1)
    return {'principal_rate_limited', retry}
  end
end
if rate_max > 0 then
  local retry = window_full(K_RATE, rate_max, rate_window, now)
  if retry then
    redis.call('HINCRBY', K_STATS, 'rate_limited', 1)
    return {'rate_limited', retry}
  end
end

local reply = {'ok', 0}
-- The per-principal bound first: at its cap a principal (or the anonymous
-- class) evicts its own oldest session, whose global slot goes with it, so
-- a flood from one principal churns only its own sessions.
if class_cap > 0 then
  local class = class_of(digest)
  local lo, hi = '[' .. class, '[' .. class .. '\255'
  if redis.call('ZLEXCOUNT', K_BYPRIN, lo, hi) >= class_cap then
    if not evict then
      redis.call('HINCRBY', K_STATS, 'rejected_principal_full', 1)
      return {'principal_full'}
    end
    while redis.call('ZLEXCOUNT', K_BYPRIN, lo, hi) >= class_cap do
      local member = redis.call('ZRANGEBYLEX', K_BYPRIN, lo, hi, 'LIMIT', 0, 1)[1]
      local oldest = string.sub(member, -36)
      if not remove(oldest, 'evicted') then
        redis.call('ZREM', K_BYPRIN, member) -- a stale entry (cannot normally exist)
      else
        reply[#reply + 1] = oldest
      end
    end
  end
end
if redis.call('ZCARD', K_FIFO) >= max_sessions then
  if not evict then
    redis.call('HINCRBY', K_STATS, 'rejected_full', 1)
    return {'full'}
  end
  -- FIFO: the live session with the smallest creation sequence (more than
  -- one if max_sessions was lowered).
  while redis.call('ZCARD', K_FIFO) >= max_sessions do
    local oldest = redis.call('ZRANGE', K_FIFO, 0, 0)[1]
    remove(oldest, 'evicted')
    reply[#reply + 1] = oldest
  end
end

local seq = redis.call('INCR', K_SEQ)
reply[2] = seq
if rate_max > 0 then
  redis.call('ZADD', K_RATE, now, seq)
end
if prate_max > 0 then
  redis.call('ZADD', K_PRATE, now, seq)
  redis.call('PEXPIRE', K_PRATE, prate_window)
end
redis.call('ZADD', K_FIFO, seq, id)
redis.call('HSET', K_OWNER, id, digest)
redis.call('ZADD', K_BYPRIN, 0, class_member(digest, seq, id))
if idle_ms > 0 then redis.call('ZADD', K_IDLE, now + idle_ms, id) end
if life_ms > 0 then redis.call('ZADD', K_LIFE, now + life_ms, id) end
if init_ms > 0 then redis.call('ZADD', K_INIT, now + init_ms, id) end
redis.call('HINCRBY', K_STATS, 'created', 1)
return reply
