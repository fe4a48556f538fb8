// Fleet mode from Node: a session registry shared by every instance of a
// server through Redis, over the library's msc_fleet_* functions (built
// with the Rust feature `redis`). Each call is a round trip to Redis, so
// every method that talks to Redis is async: it runs on a koffi worker
// thread and never blocks the event loop.

import koffi from 'koffi';
import { promisify } from 'node:util';

import { idArg, principalArg } from './args.js';
import { CloseReason, ErrorCode, SessionError, errorFromStatus, native } from './index.js';

const ID_BUF_LEN = 37;
const DRAIN_BATCH = 64;
const MSC_FEATURE_FLEET = 1;

let fleetApi = null;

/** The fleet functions, declared on first use (a library built without the
 * `redis` feature then fails here, with a clear message, not at load). */
function api() {
  if (fleetApi) return fleetApi;
  const base = native();
  if (!fleetSupported()) {
    throw new SessionError(
      ErrorCode.INTERNAL,
      'this mcp-session-core library was built without fleet mode (cargo build --release --features redis)',
    );
  }
  const { lib } = base;
  koffi.opaque('msc_fleet_options');
  koffi.opaque('msc_fleet');
  const event = koffi.struct('msc_fleet_event', {
    kind: 'int',
    id: koffi.array('char', ID_BUF_LEN, 'String'),
    reason: 'int',
  });
  koffi.struct('msc_fleet_counters', {
    live: 'uint64_t',
    max_sessions: 'uint64_t',
    created: 'uint64_t',
    closed: 'uint64_t',
    evicted: 'uint64_t',
    idle_timeout: 'uint64_t',
    max_lifetime: 'uint64_t',
    init_timeout: 'uint64_t',
    redeemed: 'uint64_t',
    rejected_full: 'uint64_t',
    rate_limited: 'uint64_t',
    events_gaps: 'uint64_t',
  });
  const f = (sig) => lib.func(sig);
  const fns = {
    options_new: f('int msc_fleet_options_new(_Out_ msc_fleet_options **out)'),
    options_free: f('void msc_fleet_options_free(msc_fleet_options *options)'),
    set_prefix: f('int msc_fleet_options_set_prefix(msc_fleet_options *o, const char *prefix)'),
    set_secret: f('int msc_fleet_options_set_secret(msc_fleet_options *o, const uint8_t *secret, size_t len)'),
    set_max_sessions: f('int msc_fleet_options_set_max_sessions(msc_fleet_options *o, uint64_t v)'),
    set_on_full: f('int msc_fleet_options_set_on_full(msc_fleet_options *o, uint32_t v)'),
    set_idle_timeout_ms: f('int msc_fleet_options_set_idle_timeout_ms(msc_fleet_options *o, uint64_t v)'),
    set_max_lifetime_ms: f('int msc_fleet_options_set_max_lifetime_ms(msc_fleet_options *o, uint64_t v)'),
    set_init_timeout_ms: f('int msc_fleet_options_set_init_timeout_ms(msc_fleet_options *o, uint64_t v)'),
    set_rate_limit: f('int msc_fleet_options_set_rate_limit(msc_fleet_options *o, uint64_t max, uint64_t window_ms)'),
    set_call_timeout_ms: f('int msc_fleet_options_set_call_timeout_ms(msc_fleet_options *o, uint64_t v)'),
    set_events_maxlen: f('int msc_fleet_options_set_events_maxlen(msc_fleet_options *o, uint64_t v)'),
    set_wait_for_replicas: f(
      'int msc_fleet_options_set_wait_for_replicas(msc_fleet_options *o, uint32_t replicas, uint64_t timeout_ms)',
    ),
    set_allow_evicting_policy: f('int msc_fleet_options_set_allow_evicting_policy(msc_fleet_options *o, uint32_t v)'),
    set_reaper_interval_ms: f('int msc_fleet_options_set_reaper_interval_ms(msc_fleet_options *o, uint64_t v)'),
    set_max_sessions_per_principal: f(
      'int msc_fleet_options_set_max_sessions_per_principal(msc_fleet_options *o, uint64_t max)',
    ),
    set_max_anonymous_sessions: f('int msc_fleet_options_set_max_anonymous_sessions(msc_fleet_options *o, uint64_t max)'),
    set_rate_limit_per_principal: f(
      'int msc_fleet_options_set_rate_limit_per_principal(msc_fleet_options *o, uint64_t max, uint64_t window_ms)',
    ),
    connect: f(
      'int msc_fleet_connect(const msc_fleet_options *o, const char *url, _Out_ msc_fleet **out, uint8_t *err, size_t err_len)',
    ),
    connect_cluster: f(
      'int msc_fleet_connect_cluster(const msc_fleet_options *o, const char **seeds, size_t n, _Out_ msc_fleet **out, uint8_t *err, size_t err_len)',
    ),
    free: f('void msc_fleet_free(msc_fleet *fleet)'),
    create: f(
      'int msc_fleet_session_create(msc_fleet *fleet, const uint8_t *p, size_t plen, uint8_t *out_id, size_t out_id_len, uint64_t *out_retry_after_ms)',
    ),
    get: f(
      'int msc_fleet_session_get(msc_fleet *fleet, const char *id, const uint8_t *p, size_t plen, uint64_t *out_retry_after_ms)',
    ),
    take: f(
      'int msc_fleet_session_take(msc_fleet *fleet, const char *id, const uint8_t *p, size_t plen, uint64_t *out_retry_after_ms)',
    ),
    confirm: f('int msc_fleet_session_confirm(msc_fleet *fleet, const char *id, uint64_t *out_retry_after_ms)'),
    close: f('int msc_fleet_session_close(msc_fleet *fleet, const char *id, uint64_t *out_retry_after_ms)'),
    stats: f('int msc_fleet_stats(msc_fleet *fleet, _Out_ msc_fleet_counters *out, uint64_t *out_retry_after_ms)'),
    stat: f('int msc_fleet_stat(msc_fleet *fleet, uint32_t stat, uint64_t *out, uint64_t *out_retry_after_ms)'),
    purge: f('int msc_fleet_purge_expired(msc_fleet *fleet, uint64_t *out_count, uint64_t *out_retry_after_ms)'),
    drain: f('size_t msc_fleet_drain_events(msc_fleet *fleet, msc_fleet_event *out, size_t capacity)'),
  };
  const asyncFns = {};
  for (const [name, fn] of Object.entries(fns)) asyncFns[name] = promisify(fn.async);
  fleetApi = { fns, async: asyncFns, eventSize: koffi.sizeof(event) };
  return fleetApi;
}

/** True if the loaded library has fleet mode (built with `--features redis`). */
export function fleetSupported() {
  const lib = native().lib;
  try {
    const features = lib.func('uint32_t msc_features(void)');
    return (features() & MSC_FEATURE_FLEET) !== 0;
  } catch {
    return false; // a library older than msc_features
  }
}

/** A SessionError for a failed fleet call, with its Retry-After. */
function fleetError(status, retryMs) {
  const err = errorFromStatus(status);
  if (status === 3 || status === 4 || status >= 10) {
    err.retryAfterMs = Math.min(Number(retryMs), Number.MAX_SAFE_INTEGER);
  }
  return err;
}

function invalid(message) {
  return new SessionError(ErrorCode.INVALID_CONFIG, message, { status: 2 });
}

function nonNegative(name, v) {
  if (Number.isSafeInteger(v) && v >= 0) return v;
  throw invalid(`${name} must be a non-negative integer, got ${String(v)}`);
}

const OPTION_KEYS = new Set([
  'prefix',
  'secret',
  'maxSessions',
  'onFull',
  'idleTimeoutMs',
  'maxLifetimeMs',
  'initTimeoutMs',
  'rateLimit',
  'callTimeoutMs',
  'eventsMaxLen',
  'waitForReplicas',
  'allowEvictingPolicy',
  'reaperIntervalMs',
  'maxSessionsPerPrincipal',
  'maxAnonymousSessions',
  'rateLimitPerPrincipal',
]);

// msc_stat keys read by stats() beyond the frozen msc_fleet_counters.
const MSC_STAT_REJECTED_PRINCIPAL_FULL = 9;
const MSC_STAT_RATE_LIMITED_PRINCIPAL = 10;
const MSC_ERR_NOT_FOUND = 5;

/** Builds C options from `options`; the caller frees them. */
function buildOptions(fns, options) {
  if (options === null || typeof options !== 'object') throw new TypeError('Fleet options must be an object');
  for (const key of Object.keys(options)) if (!OPTION_KEYS.has(key)) throw invalid(`unknown option: ${key}`);
  const out = [null];
  const st = fns.options_new(out);
  if (st !== 0) throw errorFromStatus(st);
  const o = out[0];
  try {
    const steps = [];
    const num = (setter, name) => {
      if (options[name] !== undefined) steps.push(() => fns[setter](o, nonNegative(name, options[name])));
    };
    if (options.prefix !== undefined) {
      if (typeof options.prefix !== 'string' || options.prefix.includes('\0')) throw invalid('prefix must be a string');
      steps.push(() => fns.set_prefix(o, options.prefix));
    }
    if (options.secret !== undefined) {
      const [p, n] = principalArg(options.secret);
      if (p === null) throw invalid('secret must be a string or a Buffer');
      steps.push(() => fns.set_secret(o, p, n));
    }
    num('set_max_sessions', 'maxSessions');
    num('set_idle_timeout_ms', 'idleTimeoutMs');
    num('set_max_lifetime_ms', 'maxLifetimeMs');
    num('set_init_timeout_ms', 'initTimeoutMs');
    num('set_call_timeout_ms', 'callTimeoutMs');
    num('set_events_maxlen', 'eventsMaxLen');
    num('set_reaper_interval_ms', 'reaperIntervalMs');
    num('set_max_sessions_per_principal', 'maxSessionsPerPrincipal');
    num('set_max_anonymous_sessions', 'maxAnonymousSessions');
    if (options.onFull !== undefined) {
      if (options.onFull !== 'evict' && options.onFull !== 'reject') {
        throw invalid(`onFull must be 'evict' or 'reject', got ${String(options.onFull)}`);
      }
      steps.push(() => fns.set_on_full(o, options.onFull === 'evict' ? 1 : 0));
    }
    if (options.rateLimit !== undefined && options.rateLimit !== null) {
      const { max = 0, windowMs = 0 } = options.rateLimit;
      steps.push(() => fns.set_rate_limit(o, nonNegative('rateLimit.max', max), nonNegative('rateLimit.windowMs', windowMs)));
    }
    const prl = options.rateLimitPerPrincipal;
    if (prl !== undefined && prl !== null) {
      if (typeof prl !== 'object') throw invalid('rateLimitPerPrincipal must be { max, windowMs }');
      const { max = 0, windowMs = 0 } = prl;
      steps.push(() =>
        fns.set_rate_limit_per_principal(
          o,
          nonNegative('rateLimitPerPrincipal.max', max),
          nonNegative('rateLimitPerPrincipal.windowMs', windowMs),
        ),
      );
    }
    if (options.waitForReplicas !== undefined && options.waitForReplicas !== null) {
      const { replicas = 0, timeoutMs = 0 } = options.waitForReplicas;
      steps.push(() =>
        fns.set_wait_for_replicas(o, nonNegative('waitForReplicas.replicas', replicas), nonNegative('waitForReplicas.timeoutMs', timeoutMs)),
      );
    }
    if (options.allowEvictingPolicy !== undefined) {
      steps.push(() => fns.set_allow_evicting_policy(o, options.allowEvictingPolicy ? 1 : 0));
    }
    for (const step of steps) {
      const status = step();
      if (status !== 0) throw errorFromStatus(status);
    }
    return o;
  } catch (err) {
    fns.options_free(o);
    throw err;
  }
}

function idText(id) {
  return idArg(id);
}

/**
 * Fleet mode: a session registry shared by every instance of a server
 * through Redis: an exact global `maxSessions`, FIFO eviction of the
 * globally oldest session, principal binding, expiry by Redis's clock, and
 * the close events of the whole fleet. Unlike `SessionRegistry` it holds no
 * values: a session created on one instance may be used on another, so keep
 * your own `Map` from session id to transport and drop the ids that
 * `drainEvents()` reports. Methods that talk to Redis are async (a koffi
 * worker thread per call) and reject with a `SessionError`:
 * STORE_UNAVAILABLE (503, `retryAfterMs`) when Redis is unreachable or
 * slower than `callTimeoutMs`. Connect with `Fleet.connect()`; release with
 * `free()`.
 */
export class Fleet {
  #ptr;
  #api;
  #inflight = 0;
  #idle = null; // resolves when #inflight drops to 0 during free()
  #eventBuf;

  constructor(ptr, fleet) {
    this.#ptr = ptr;
    this.#api = fleet;
    this.#eventBuf = Buffer.alloc(fleet.eventSize * DRAIN_BATCH);
  }

  /**
   * Connects to the Redis at `url` (`redis://host:port/db`), or to a Redis
   * Cluster given `{ cluster: [seedUrl, ...] }`, with `options`; checks the
   * settings, the fleet secret and Redis's `maxmemory-policy`, and starts
   * the close-event subscription (every close after this resolves reaches
   * `drainEvents()`) and the reaper.
   * @throws {SessionError} INVALID_CONFIG (with the library's message),
   *   STORE_UNAVAILABLE
   */
  static async connect(url, options = {}) {
    const fleet = api();
    const o = buildOptions(fleet.fns, options);
    try {
      const out = [null];
      const err = Buffer.alloc(512);
      let status;
      if (typeof url === 'string') {
        status = await fleet.async.connect(o, url, out, err, err.length);
      } else if (url && Array.isArray(url.cluster) && url.cluster.every((s) => typeof s === 'string')) {
        status = await fleet.async.connect_cluster(o, url.cluster, url.cluster.length, out, err, err.length);
      } else {
        throw new TypeError("url must be a Redis URL string or { cluster: ['redis://host:port/', ...] }");
      }
      if (status !== 0) {
        const e = errorFromStatus(status);
        const text = err.toString('utf8', 0, Math.max(0, err.indexOf(0)));
        if (text) e.message = `${e.message}: ${text}`;
        throw e;
      }
      return new Fleet(out[0], fleet);
    } finally {
      fleet.fns.options_free(o);
    }
  }

  #live() {
    if (this.#ptr === null) throw new SessionError(ErrorCode.REGISTRY_FREED, 'the fleet handle was freed');
    return this.#ptr;
  }

  /** Runs one native call, counted so that free() waits for it. */
  async #call(run) {
    const ptr = this.#live();
    this.#inflight++;
    try {
      return await run(ptr);
    } finally {
      this.#inflight--;
      if (this.#inflight === 0 && this.#idle) this.#idle();
    }
  }

  /**
   * Creates a session in the fleet, bound to `principal` (string or bytes)
   * if given (none: the anonymous class). At the principal's cap
   * (`maxSessionsPerPrincipal`) its own oldest session is evicted, at
   * capacity the globally oldest (every instance's `drainEvents()` reports
   * either), or, with `onFull: 'reject'`, this rejects with PRINCIPAL_FULL
   * or AT_CAPACITY. The session starts pending: `confirm` it after the
   * initialize handshake.
   * @returns {Promise<string>} the new session id
   * @throws {SessionError} PRINCIPAL_RATE_LIMITED (429), RATE_LIMITED
   *   (429), PRINCIPAL_FULL (429), AT_CAPACITY (503), STORE_UNAVAILABLE
   *   (503), all with `retryAfterMs` (exact for the rate limits)
   */
  async create(principal) {
    const [p, plen] = principalArg(principal);
    return this.#call(async (ptr) => {
      const id = Buffer.alloc(ID_BUF_LEN);
      const retry = new BigUint64Array(1);
      const status = await this.#api.async.create(ptr, p, plen, id, ID_BUF_LEN, retry);
      if (status !== 0) throw fleetError(status, retry[0]);
      return id.toString('latin1', 0, ID_BUF_LEN - 1);
    });
  }

  async #onSession(name, id, ...args) {
    const text = idText(id);
    return this.#call(async (ptr) => {
      const retry = new BigUint64Array(1);
      const status = await this.#api.async[name](ptr, text, ...args, retry);
      if (status !== 0) throw fleetError(status, retry[0]);
    });
  }

  /**
   * Validates a request's session anywhere in the fleet for the caller
   * `principal` and refreshes its idle deadline.
   * @throws {SessionError} MALFORMED_ID (400), NOT_FOUND (404: unknown,
   *   closed, evicted, expired, taken or another principal's),
   *   STORE_UNAVAILABLE (503)
   */
  async get(id, principal) {
    const [p, plen] = principalArg(principal);
    return this.#onSession('get', id, p, plen);
  }

  /**
   * Takes a session for single use: closes it (reason 'redeemed') for
   * exactly one caller across the fleet among takes, closes, evictions and
   * expiries. Rejects as `get`; NOT_FOUND also when another caller took or
   * closed it first. After STORE_UNAVAILABLE it may or may not have been
   * taken (never twice).
   */
  async take(id, principal) {
    const [p, plen] = principalArg(principal);
    return this.#onSession('take', id, p, plen);
  }

  /** Marks a pending session initialized (its init deadline stops). Idempotent. */
  async confirm(id) {
    return this.#onSession('confirm', id);
  }

  /**
   * Closes a session (HTTP DELETE), reason 'closed'. The principal is not
   * checked: validate with `get` first. NOT_FOUND if it was not open.
   */
  async close(id) {
    return this.#onSession('close', id);
  }

  /** Removes every expired session in the fleet now; resolves to how many. */
  async purgeExpired() {
    return this.#call(async (ptr) => {
      const out = new BigUint64Array(2);
      const status = await this.#api.async.purge(ptr, out.subarray(0, 1), out.subarray(1, 2));
      if (status !== 0) throw fleetError(status, out[1]);
      return Number(out[0]);
    });
  }

  /**
   * The fleet's counters, as Redis holds them: three round trips
   * (`msc_fleet_stats`, then `msc_fleet_stat` for each counter its frozen
   * struct lacks), so the per-principal counters may be a little newer
   * than the rest.
   */
  async stats() {
    return this.#call(async (ptr) => {
      const s = {};
      const retry = new BigUint64Array(1);
      const status = await this.#api.async.stats(ptr, s, retry);
      if (status !== 0) throw fleetError(status, retry[0]);
      const n = (v) => Number(v);
      const keyed = async (key) => {
        const v = new BigUint64Array(1);
        const st = await this.#api.async.stat(ptr, key, v, retry);
        if (st === MSC_ERR_NOT_FOUND) return 0; // a library older than this counter
        if (st !== 0) throw fleetError(st, retry[0]);
        return n(v[0]);
      };
      const rejectedPrincipalFull = await keyed(MSC_STAT_REJECTED_PRINCIPAL_FULL);
      const rateLimitedPrincipal = await keyed(MSC_STAT_RATE_LIMITED_PRINCIPAL);
      return {
        live: n(s.live),
        maxSessions: n(s.max_sessions),
        created: n(s.created),
        closed: n(s.closed),
        evicted: n(s.evicted),
        idleTimeout: n(s.idle_timeout),
        maxLifetime: n(s.max_lifetime),
        initTimeout: n(s.init_timeout),
        redeemed: n(s.redeemed),
        rejectedFull: n(s.rejected_full),
        rateLimited: n(s.rate_limited),
        eventsGaps: n(s.events_gaps),
        rejectedPrincipalFull,
        rateLimitedPrincipal,
      };
    });
  }

  /**
   * The fleet events that arrived since the last call, oldest first
   * (synchronous; never waits for Redis): `{ id, reason }` for a session
   * closed anywhere in the fleet, `{ gap: true }` where events were lost
   * before this handle read them (check the sessions you host with `get`).
   * Closes arrive within about 250 ms. [] after `free()`.
   * @returns {Array<{ id: string, reason: string } | { gap: true }>}
   */
  drainEvents() {
    if (this.#ptr === null) return [];
    const out = [];
    for (;;) {
      const n = Number(this.#api.fns.drain(this.#ptr, this.#eventBuf, DRAIN_BATCH));
      for (let i = 0; i < n; i++) {
        const e = koffi.decode(this.#eventBuf, i * this.#api.eventSize, 'msc_fleet_event');
        out.push(e.kind === 1 ? { gap: true } : { id: e.id, reason: Object.values(CloseReason)[e.reason] ?? `unknown(${e.reason})` });
      }
      if (n < DRAIN_BATCH) return out;
    }
  }

  /** True once `free()` started. */
  get freed() {
    return this.#ptr === null;
  }

  /**
   * Frees the handle: later calls reject with REGISTRY_FREED; calls in
   * flight finish first; then its reaper, subscription and connections
   * stop. The fleet's sessions stay in Redis. Idempotent.
   */
  async free() {
    if (this.#ptr === null) return;
    const ptr = this.#ptr;
    this.#ptr = null;
    if (this.#inflight > 0) await new Promise((resolve) => (this.#idle = resolve));
    await this.#api.async.free(ptr);
  }
}
