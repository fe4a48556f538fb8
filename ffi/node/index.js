// Node bindings for mcp-session-core, through koffi over the C ABI
// (include/mcp_session_core.h). Values stay in JavaScript: each session's
// value lives in a Map under a numeric tag, and only the tag crosses into C.
//
// Ownership of a value: it enters the Map on `create` and leaves it exactly
// once, when `drainClosed()` (or `free()`) reports the session closed. `get`
// and `close` only read it.

import koffi from 'koffi';

import { idArg, principalArg } from './args.js';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** Length of a session id's text form (a canonical lowercase UUID v4). */
export const SESSION_ID_LEN = 36;

const ID_BUF_LEN = SESSION_ID_LEN + 1;
const DRAIN_BATCH = 64;

/** `msc_status` numbers → error codes (the C names without `MSC_ERR_`). */
const STATUS_CODES = Object.freeze([
  'OK',
  'NULL_ARGUMENT',
  'INVALID_CONFIG',
  'AT_CAPACITY',
  'RATE_LIMITED',
  'NOT_FOUND',
  'MALFORMED_ID',
  'BUFFER_TOO_SMALL',
  'INTERNAL',
  'SHUT_DOWN',
  'PRINCIPAL_FULL',
  'PRINCIPAL_RATE_LIMITED',
  'STORE_UNAVAILABLE',
]);

/** Error codes a `SessionError` can carry. */
export const ErrorCode = Object.freeze({
  NULL_ARGUMENT: 'NULL_ARGUMENT',
  INVALID_CONFIG: 'INVALID_CONFIG',
  AT_CAPACITY: 'AT_CAPACITY',
  RATE_LIMITED: 'RATE_LIMITED',
  NOT_FOUND: 'NOT_FOUND',
  MALFORMED_ID: 'MALFORMED_ID',
  BUFFER_TOO_SMALL: 'BUFFER_TOO_SMALL',
  INTERNAL: 'INTERNAL',
  /** The registry was shut down (by `free()`): it creates no more sessions. */
  SHUT_DOWN: 'SHUT_DOWN',
  /** The principal (or the anonymous class) holds its cap of sessions (onFull 'reject'). */
  PRINCIPAL_FULL: 'PRINCIPAL_FULL',
  /** The principal's creation rate limit is exhausted. */
  PRINCIPAL_RATE_LIMITED: 'PRINCIPAL_RATE_LIMITED',
  /** Fleet mode: Redis is unreachable or too slow (503 with `retryAfterMs`). */
  STORE_UNAVAILABLE: 'STORE_UNAVAILABLE',
  /** Binding-level: the registry was used after `free()`. */
  REGISTRY_FREED: 'REGISTRY_FREED',
  /** A status number this binding does not know (a newer library). */
  UNKNOWN: 'UNKNOWN',
});

/** HTTP status per DESIGN.md "HTTP mapping"; everything else is a 500. */
const HTTP_STATUS = Object.freeze({
  AT_CAPACITY: 503,
  SHUT_DOWN: 503,
  STORE_UNAVAILABLE: 503,
  // Used after free(): the server is shutting down (Go's ErrClosed too).
  REGISTRY_FREED: 503,
  RATE_LIMITED: 429,
  PRINCIPAL_FULL: 429,
  PRINCIPAL_RATE_LIMITED: 429,
  NOT_FOUND: 404,
  MALFORMED_ID: 400,
});

/** `msc_close_reason` numbers → reason strings. */
const CLOSE_REASONS = Object.freeze([
  'closed',
  'evicted',
  'idle_timeout',
  'max_lifetime',
  'init_timeout',
  'shutdown',
  'redeemed',
]);

/** Why a session was closed, as reported by `drainClosed()`/`free()`. */
export const CloseReason = Object.freeze({
  CLOSED: 'closed',
  EVICTED: 'evicted',
  IDLE_TIMEOUT: 'idle_timeout',
  MAX_LIFETIME: 'max_lifetime',
  INIT_TIMEOUT: 'init_timeout',
  SHUTDOWN: 'shutdown',
  REDEEMED: 'redeemed',
});

// ---------------------------------------------------------------------------
// Loading the library and declaring the ABI
// ---------------------------------------------------------------------------

const LIB_FILE =
  process.platform === 'win32'
    ? 'mcp_session_core.dll'
    : process.platform === 'darwin'
      ? 'libmcp_session_core.dylib'
      : 'libmcp_session_core.so';

/** `gnu` or `musl` on Linux (how napi-rs tells them apart), else ''. */
function linuxLibc() {
  if (process.platform !== 'linux') return '';
  const header = process.report?.getReport?.().header;
  return header?.glibcVersionRuntime ? 'gnu' : 'musl';
}

/**
 * The name of the npm package that ships the library for this platform:
 * `mcp-session-core-<platform>-<arch>[-<libc>]`, e.g.
 * `mcp-session-core-linux-x64-gnu` (an optional dependency of this package;
 * npm installs only the one whose os/cpu/libc match).
 */
export function platformPackageName() {
  const libc = linuxLibc();
  const abi = process.platform === 'win32' ? '-msvc' : libc ? `-${libc}` : '';
  return `mcp-session-core-${process.platform}-${process.arch}${abi}`;
}

function platformPackageLibrary() {
  const require = createRequire(import.meta.url);
  try {
    return path.join(path.dirname(require.resolve(`${platformPackageName()}/package.json`)), LIB_FILE);
  } catch {
    return null;
  }
}

function checkoutLibrary() {
  const here = path.dirname(fileURLToPath(import.meta.url));
  return path.join(here, '..', '..', 'target', 'release', LIB_FILE);
}

/**
 * The library path used, first found of: `$MCP_SESSION_CORE_LIB` (the
 * override); the platform package's library (`platformPackageName()`,
 * installed with this package); `<repo>/target/release/` when running from
 * a checkout (after `cargo build --release`).
 */
export function libraryPath() {
  if (process.env.MCP_SESSION_CORE_LIB) return process.env.MCP_SESSION_CORE_LIB;
  const fromPackage = platformPackageLibrary();
  if (fromPackage && existsSync(fromPackage)) return fromPackage;
  const fromCheckout = checkoutLibrary();
  if (existsSync(fromCheckout)) return fromCheckout;
  return fromPackage ?? fromCheckout;
}

let nativeApi = null;

function declare(lib) {
  // Types, in header order. The enums are C `int`-sized (Rust `#[repr(C)]`).
  const msc_status = koffi.enumeration(
    'msc_status',
    Object.fromEntries(STATUS_CODES.map((c, i) => [c === 'OK' ? 'MSC_OK' : `MSC_ERR_${c}`, i])),
    'int',
  );
  const msc_close_reason = koffi.enumeration(
    'msc_close_reason',
    Object.fromEntries(CLOSE_REASONS.map((r, i) => [`MSC_CLOSE_${r.toUpperCase()}`, i])),
    'int',
  );
  const msc_registry = koffi.opaque('msc_registry');
  const msc_options = koffi.opaque('msc_options');
  const msc_config = koffi.struct('msc_config', {
    max_sessions: 'uint64_t',
    evict_oldest: 'uint32_t',
    idle_timeout_ms: 'uint64_t',
    max_lifetime_ms: 'uint64_t',
    init_timeout_ms: 'uint64_t',
    rate_limit_max: 'uint64_t',
    rate_limit_window_ms: 'uint64_t',
    event_queue_capacity: 'uint64_t',
  });
  const msc_closed_event = koffi.struct('msc_closed_event', {
    id: koffi.array('char', ID_BUF_LEN, 'String'),
    tag: 'uint64_t',
    reason: msc_close_reason,
  });
  const msc_stats = koffi.struct('msc_stats', {
    live: 'uint64_t',
    max_sessions: 'uint64_t',
    created: 'uint64_t',
    closed: 'uint64_t',
    evicted: 'uint64_t',
    expired: 'uint64_t',
    rejected_full: 'uint64_t',
    rate_limited: 'uint64_t',
    events_dropped: 'uint64_t',
  });

  // Out-buffers are passed as Buffers / typed arrays (transient pointers):
  // the library never keeps a pointer past the call.
  const fns = {
    msc_config_default: lib.func('msc_config msc_config_default(void)'),
    msc_registry_new: lib.func(
      'msc_status msc_registry_new(const msc_config *config, _Out_ msc_registry **out)',
    ),
    msc_registry_free: lib.func('void msc_registry_free(msc_registry *registry)'),
    msc_registry_shutdown: lib.func(
      'msc_status msc_registry_shutdown(msc_registry *registry, _Out_ size_t *out_remaining)',
    ),
    msc_registry_len: lib.func('size_t msc_registry_len(const msc_registry *registry)'),
    msc_registry_purge_expired: lib.func(
      'msc_status msc_registry_purge_expired(msc_registry *registry, _Out_ size_t *out_count)',
    ),
    msc_registry_drain_closed: lib.func(
      'size_t msc_registry_drain_closed(msc_registry *registry, msc_closed_event *out, size_t capacity)',
    ),
    msc_registry_stats: lib.func(
      'msc_status msc_registry_stats(const msc_registry *registry, _Out_ msc_stats *out)',
    ),
    msc_session_create: lib.func(
      'msc_status msc_session_create(msc_registry *registry, uint64_t tag, const char *principal, uint8_t *out_id)',
    ),
    msc_session_create_ex: lib.func(
      'msc_status msc_session_create_ex(msc_registry *registry, uint64_t tag, const uint8_t *principal, size_t principal_len, uint8_t *out_id, size_t out_id_len, uint64_t *out_retry_after_ms)',
    ),
    msc_session_get: lib.func(
      'msc_status msc_session_get(msc_registry *registry, const char *id, const char *principal, uint64_t *out_tag)',
    ),
    msc_session_get_ex: lib.func(
      'msc_status msc_session_get_ex(msc_registry *registry, const char *id, const uint8_t *principal, size_t principal_len, uint64_t *out_tag)',
    ),
    msc_session_take_ex: lib.func(
      'msc_status msc_session_take_ex(msc_registry *registry, const char *id, const uint8_t *principal, size_t principal_len, uint64_t *out_tag)',
    ),
    msc_session_confirm: lib.func(
      'msc_status msc_session_confirm(msc_registry *registry, const char *id)',
    ),
    msc_session_close: lib.func(
      'msc_status msc_session_close(msc_registry *registry, const char *id, uint64_t *out_tag)',
    ),
    msc_options_new: lib.func('msc_status msc_options_new(_Out_ msc_options **out)'),
    msc_options_free: lib.func('void msc_options_free(msc_options *options)'),
    msc_options_set_max_sessions: lib.func(
      'msc_status msc_options_set_max_sessions(msc_options *options, uint64_t max_sessions)',
    ),
    msc_options_set_on_full: lib.func('msc_status msc_options_set_on_full(msc_options *options, uint32_t on_full)'),
    msc_options_set_idle_timeout_ms: lib.func(
      'msc_status msc_options_set_idle_timeout_ms(msc_options *options, uint64_t ms)',
    ),
    msc_options_set_max_lifetime_ms: lib.func(
      'msc_status msc_options_set_max_lifetime_ms(msc_options *options, uint64_t ms)',
    ),
    msc_options_set_init_timeout_ms: lib.func(
      'msc_status msc_options_set_init_timeout_ms(msc_options *options, uint64_t ms)',
    ),
    msc_options_set_rate_limit: lib.func(
      'msc_status msc_options_set_rate_limit(msc_options *options, uint64_t max, uint64_t window_ms)',
    ),
    msc_options_set_event_queue_capacity: lib.func(
      'msc_status msc_options_set_event_queue_capacity(msc_options *options, uint64_t capacity)',
    ),
    msc_options_set_max_sessions_per_principal: lib.func(
      'msc_status msc_options_set_max_sessions_per_principal(msc_options *options, uint64_t max)',
    ),
    msc_options_set_max_anonymous_sessions: lib.func(
      'msc_status msc_options_set_max_anonymous_sessions(msc_options *options, uint64_t max)',
    ),
    msc_options_set_rate_limit_per_principal: lib.func(
      'msc_status msc_options_set_rate_limit_per_principal(msc_options *options, uint64_t max, uint64_t window_ms)',
    ),
    msc_registry_new_with_options: lib.func(
      'msc_status msc_registry_new_with_options(const msc_options *options, _Out_ msc_registry **out)',
    ),
    msc_registry_stat: lib.func(
      'msc_status msc_registry_stat(const msc_registry *registry, uint32_t stat, _Out_ uint64_t *out)',
    ),
    msc_status_str: lib.func('const char *msc_status_str(int status)'),
    msc_version: lib.func('const char *msc_version(void)'),
  };
  return {
    lib,
    types: { msc_status, msc_close_reason, msc_registry, msc_options, msc_config, msc_closed_event, msc_stats },
    ...fns,
  };
}

/**
 * The raw koffi bindings (one per `msc_*` function, plus `types` and `lib`),
 * loaded on first use. Low level: no argument checking beyond koffi's.
 */
export function native() {
  if (nativeApi) return nativeApi;
  const file = libraryPath();
  let lib;
  try {
    lib = koffi.load(file);
  } catch (err) {
    const hint = existsSync(file)
      ? ''
      : ` (not found: install ${platformPackageName()} (npm installs it with mcp-session-core on a supported platform), run \`cargo build --release\` in a checkout, or set MCP_SESSION_CORE_LIB)`;
    throw new Error(`mcp-session-core: cannot load ${file}${hint}: ${err.message}`, { cause: err });
  }
  nativeApi = declare(lib);
  return nativeApi;
}

/** The library's version, e.g. `"0.1.0"`. */
export function version() {
  return native().msc_version();
}

/** The library's English description of a `msc_status` number. */
export function statusText(status) {
  return native().msc_status_str(status);
}

// ---------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------

/** A failed registry operation. */
export class SessionError extends Error {
  /**
   * @param {string} code one of `ErrorCode`
   * @param {string} [message]
   * @param {{ status?: number, retryAfterMs?: number }} [extra]
   */
  constructor(code, message, extra = {}) {
    super(message ?? code);
    this.name = 'SessionError';
    /** One of `ErrorCode`. */
    this.code = code;
    /** The raw `msc_status` number, when the error came from the library. */
    this.status = extra.status;
    /** The HTTP status to answer with (DESIGN.md "HTTP mapping"). */
    this.httpStatus = HTTP_STATUS[code] ?? 500;
    /** For AT_CAPACITY, RATE_LIMITED and STORE_UNAVAILABLE: when a retry
     * can succeed (ms). */
    this.retryAfterMs = extra.retryAfterMs;
  }

  /** `retryAfterMs` rounded up to whole seconds, for a `Retry-After` header. */
  get retryAfterSeconds() {
    if (this.retryAfterMs === undefined) return undefined;
    return Math.ceil(this.retryAfterMs / 1000);
  }
}

function statusError(status, extra = {}) {
  const code = STATUS_CODES[status] ?? ErrorCode.UNKNOWN;
  return new SessionError(code, native().msc_status_str(status), { status, ...extra });
}

/**
 * The SessionError for a `msc_status` number (for hosts calling `native()`
 * directly); `null` for 0 (`MSC_OK`), which is not an error.
 */
export function errorFromStatus(status) {
  return status === 0 ? null : statusError(status);
}

function check(status) {
  if (status !== 0) throw statusError(status);
}

// ---------------------------------------------------------------------------
// Argument conversion
// ---------------------------------------------------------------------------

function toNumber(v) {
  return typeof v === 'bigint' ? Number(v) : v;
}

const CONFIG_KEYS = new Set([
  'maxSessions',
  'onFull',
  'idleTimeoutMs',
  'maxLifetimeMs',
  'initTimeoutMs',
  'rateLimit',
  'eventQueueCapacity',
  'onClose',
  'maxSessionsPerPrincipal',
  'maxAnonymousSessions',
  'rateLimitPerPrincipal',
]);

// The C library's default queue and its maximum.
const MIN_DEFAULT_QUEUE = 4096;
const MAX_QUEUE = 2 ** 24;

/** The queue an absent/0 eventQueueCapacity gets: room for every session. */
function defaultQueueCapacity(maxSessions) {
  const max = Number(maxSessions);
  return Math.min(Math.max(max, MIN_DEFAULT_QUEUE), MAX_QUEUE);
}

function configInt(name, v) {
  if (typeof v === 'bigint' ? v >= 0n && v < 2n ** 64n : Number.isSafeInteger(v) && v >= 0) return v;
  throw new SessionError(ErrorCode.INVALID_CONFIG, `${name} must be a non-negative integer, got ${String(v)}`, {
    status: 2,
  });
}

function buildConfig(options) {
  if (options === null || typeof options !== 'object') {
    throw new TypeError('SessionRegistry options must be an object');
  }
  for (const key of Object.keys(options)) {
    if (!CONFIG_KEYS.has(key)) {
      throw new SessionError(ErrorCode.INVALID_CONFIG, `unknown option: ${key}`, { status: 2 });
    }
  }
  const c = native().msc_config_default();
  const set = (field, name, v) => {
    if (v !== undefined) c[field] = configInt(name, v);
  };
  set('max_sessions', 'maxSessions', options.maxSessions);
  set('idle_timeout_ms', 'idleTimeoutMs', options.idleTimeoutMs);
  set('max_lifetime_ms', 'maxLifetimeMs', options.maxLifetimeMs);
  set('init_timeout_ms', 'initTimeoutMs', options.initTimeoutMs);
  set('event_queue_capacity', 'eventQueueCapacity', options.eventQueueCapacity);
  // Settings only msc_options has (the frozen msc_config cannot carry
  // them); `null` when none is set.
  let fairness = null;
  const fair = (key, v) => {
    fairness ??= { onFull: c.evict_oldest, perPrincipal: 0, anonymous: 0, rateMax: 0, rateWindowMs: 0 };
    fairness[key] = v;
  };
  if (options.onFull !== undefined) {
    if (options.onFull === 'evict') c.evict_oldest = 1;
    else if (options.onFull === 'reject') c.evict_oldest = 0;
    else if (options.onFull === 'evict-idle') fair('onFull', 2);
    else {
      throw new SessionError(
        ErrorCode.INVALID_CONFIG,
        `onFull must be 'evict', 'evict-idle' or 'reject', got ${String(options.onFull)}`,
        { status: 2 },
      );
    }
  }
  if (options.maxSessionsPerPrincipal !== undefined) {
    fair('perPrincipal', configInt('maxSessionsPerPrincipal', options.maxSessionsPerPrincipal));
  }
  if (options.maxAnonymousSessions !== undefined) {
    fair('anonymous', configInt('maxAnonymousSessions', options.maxAnonymousSessions));
  }
  const prl = options.rateLimitPerPrincipal;
  if (prl !== undefined && prl !== null) {
    if (typeof prl !== 'object') {
      throw new SessionError(ErrorCode.INVALID_CONFIG, 'rateLimitPerPrincipal must be { max, windowMs }', {
        status: 2,
      });
    }
    fair('rateMax', configInt('rateLimitPerPrincipal.max', prl.max ?? 0));
    fair('rateWindowMs', configInt('rateLimitPerPrincipal.windowMs', prl.windowMs ?? 0));
  }
  const rl = options.rateLimit;
  if (rl !== undefined && rl !== null) {
    if (typeof rl !== 'object') {
      throw new SessionError(ErrorCode.INVALID_CONFIG, 'rateLimit must be { max, windowMs }', { status: 2 });
    }
    set('rate_limit_max', 'rateLimit.max', rl.max ?? 0);
    set('rate_limit_window_ms', 'rateLimit.windowMs', rl.windowMs ?? 0);
  }
  if (!options.eventQueueCapacity) c.event_queue_capacity = defaultQueueCapacity(c.max_sessions);
  if (options.onClose !== undefined && options.onClose !== null && typeof options.onClose !== 'function') {
    throw new SessionError(ErrorCode.INVALID_CONFIG, 'onClose must be a function', { status: 2 });
  }
  if (fairness && fairness.onFull !== 2) fairness.onFull = c.evict_oldest;
  return { c, fairness };
}

/** A registry through msc_options: every msc_config field, then the fairness settings. */
function newWithOptions(api, c, f, out) {
  const o = [null];
  check(api.msc_options_new(o));
  try {
    for (const status of [
      api.msc_options_set_max_sessions(o[0], c.max_sessions),
      api.msc_options_set_on_full(o[0], f.onFull),
      api.msc_options_set_idle_timeout_ms(o[0], c.idle_timeout_ms),
      api.msc_options_set_max_lifetime_ms(o[0], c.max_lifetime_ms),
      api.msc_options_set_init_timeout_ms(o[0], c.init_timeout_ms),
      api.msc_options_set_rate_limit(o[0], c.rate_limit_max, c.rate_limit_window_ms),
      api.msc_options_set_event_queue_capacity(o[0], c.event_queue_capacity),
      api.msc_options_set_max_sessions_per_principal(o[0], f.perPrincipal),
      api.msc_options_set_max_anonymous_sessions(o[0], f.anonymous),
      api.msc_options_set_rate_limit_per_principal(o[0], f.rateMax, f.rateWindowMs),
      api.msc_registry_new_with_options(o[0], out),
    ]) {
      check(status);
    }
  } finally {
    api.msc_options_free(o[0]);
  }
}

// ---------------------------------------------------------------------------
// The registry
// ---------------------------------------------------------------------------

// Frees the native registry of a SessionRegistry that was garbage-collected
// without free(). Its values are gone with it, so nothing is reported.
const finalizer = new FinalizationRegistry((ptr) => {
  nativeApi?.msc_registry_free(ptr);
});

/**
 * An exact-capacity session registry. Methods are synchronous; the library
 * is lock-free, so they never block the event loop for long.
 *
 * Close events: every call that can close a session (create, close,
 * purgeExpired, a get/confirm/close that finds it expired) moves the C
 * queue's events into the binding, so the C queue never fills and drops
 * one. With the `onClose` option each event is passed to it there and then
 * (its value released); without it, events wait for `drainClosed()`, at
 * most `eventQueueCapacity + maxSessions` of them (`eventQueueCapacity`
 * defaults to `maxSessions`, at least 4,096), so a purge of every session
 * never discards one even with a queue's worth already waiting; beyond
 * that the oldest are discarded and counted in `stats().eventsDiscarded`.
 * So a host that never drains holds at most
 * `2 * maxSessions + eventQueueCapacity` values, never an unbounded number.
 */
export class SessionRegistry {
  #ptr;
  #values = new Map(); // tag -> { id, value }
  #nextTag = 1;
  #api;
  // Scratch buffers reused across calls (the event loop is single-threaded
  // and no call re-enters JS).
  #idBuf = Buffer.alloc(ID_BUF_LEN);
  #u64 = new BigUint64Array(1);
  #eventBuf;
  // Close events taken from the C queue (so it never fills and drops one),
  // waiting for drainClosed(); at most #pendingMax, the oldest discarded
  // beyond that. Unused with onClose.
  #pending = [];
  #pendingMax;
  #discarded = 0;
  #onClose = null;

  /**
   * @param {import('./index.js').SessionRegistryOptions} [options]
   */
  constructor(options = {}) {
    this.#api = native();
    const { c: config, fairness } = buildConfig(options);
    const out = [null];
    if (fairness) newWithOptions(this.#api, config, fairness, out);
    else check(this.#api.msc_registry_new(config, out));
    this.#ptr = out[0];
    this.#pendingMax = Number(config.event_queue_capacity) + Number(config.max_sessions);
    this.#onClose = options.onClose ?? null;
    this.#eventBuf = Buffer.alloc(koffi.sizeof(this.#api.types.msc_closed_event) * DRAIN_BATCH);
    finalizer.register(this, this.#ptr, this);
  }

  #live() {
    if (this.#ptr === null) {
      throw new SessionError(ErrorCode.REGISTRY_FREED, 'the registry was freed');
    }
    return this.#ptr;
  }

  #entry(tag) {
    const entry = this.#values.get(toNumber(tag));
    if (!entry) {
      // Cannot happen unless the library reports a tag it was never given.
      throw new SessionError(ErrorCode.INTERNAL, `no value for tag ${tag}`);
    }
    return entry;
  }

  /**
   * Creates a session holding `value`, bound to `principal` if given (then
   * only `get` calls presenting the same principal find it). At capacity the
   * oldest session is evicted (its value comes back from `drainClosed()`),
   * or with `onFull: 'reject'` this throws AT_CAPACITY.
   * @returns {string} the new session id
   */
  create(value, principal) {
    const ptr = this.#live();
    const [p, plen] = principalArg(principal);
    const tag = this.#nextTag++;
    const status = this.#api.msc_session_create_ex(ptr, tag, p, plen, this.#idBuf, ID_BUF_LEN, this.#u64);
    if (status !== 0) {
      const retryAfterMs = [3, 4, 10, 11].includes(status)
        ? Math.min(Number(this.#u64[0]), Number.MAX_SAFE_INTEGER)
        : undefined;
      const err = statusError(status, { retryAfterMs });
      this.#collect(); // a create at capacity may have closed expired sessions
      throw err;
    }
    const id = this.#idBuf.toString('latin1', 0, SESSION_ID_LEN);
    this.#values.set(tag, { id, value });
    this.#collect(); // an eviction (or expired sessions reclaimed) queued events
    return id;
  }

  /**
   * Validates a request's session (e.g. the `Mcp-Session-Id` header) for the
   * caller `principal`, refreshes its activity and returns its value.
   * Throws MALFORMED_ID (400) or NOT_FOUND (404).
   */
  get(id, principal) {
    const ptr = this.#live();
    const idText = idArg(id);
    const [p, plen] = principalArg(principal);
    const status = this.#api.msc_session_get_ex(ptr, idText, p, plen, this.#u64);
    if (status !== 0) {
      const err = statusError(status);
      if (status === 5) this.#collect(); // it may have expired here
      throw err;
    }
    return this.#entry(this.#u64[0]).value;
  }

  /**
   * Marks a pending session initialized (its `initialize` handshake done),
   * so the init timeout no longer applies. Idempotent.
   */
  confirm(id) {
    const ptr = this.#live();
    const status = this.#api.msc_session_confirm(ptr, idArg(id));
    if (status !== 0) {
      const err = statusError(status);
      if (status === 5) this.#collect(); // it may have expired here
      throw err;
    }
  }

  /**
   * Closes a session (e.g. on HTTP DELETE) and returns its value. The value
   * stays held until `drainClosed()` reports the close (reason 'closed').
   * The principal is not checked: validate the caller with `get` first.
   * A second close throws NOT_FOUND.
   */
  close(id) {
    const ptr = this.#live();
    const status = this.#api.msc_session_close(ptr, idArg(id), this.#u64);
    if (status !== 0) {
      const err = statusError(status);
      if (status === 5) this.#collect(); // it may have expired here
      throw err;
    }
    const { value } = this.#entry(this.#u64[0]);
    this.#collect();
    return value;
  }

  /**
   * Takes a session for single use: closes it (reason 'redeemed') and
   * returns its value, to exactly one caller among takes, closes, evictions
   * and expiries. For one-time tokens (nonces, redeemable handles). The
   * principal is checked as by `get`.
   * @throws {SessionError} MALFORMED_ID (400), NOT_FOUND (404: not open,
   *   another principal's, expired, or already taken or closed)
   */
  take(id, principal) {
    const ptr = this.#live();
    const [p, plen] = principalArg(principal);
    const status = this.#api.msc_session_take_ex(ptr, idArg(id), p, plen, this.#u64);
    if (status !== 0) {
      const err = statusError(status);
      if (status === 5) this.#collect(); // it may have expired here
      throw err;
    }
    const { value } = this.#entry(this.#u64[0]);
    this.#collect();
    return value;
  }

  /**
   * Closes every expired session and returns how many. Their close events
   * go to `onClose`, or wait for `drainClosed()`. The C queue is emptied
   * first, so a purge of up to `eventQueueCapacity` sessions (by default
   * all `maxSessions`) drops none.
   */
  purgeExpired() {
    const ptr = this.#live();
    this.#collect();
    const out = [0];
    check(this.#api.msc_registry_purge_expired(ptr, out));
    this.#collect();
    return toNumber(out[0]);
  }

  /**
   * Moves every event of the C queue out of it, releasing the values from
   * #values: to `onClose`, or to #pending (bounded by #pendingMax, that is
   * eventQueueCapacity + maxSessions: the
   * oldest are discarded, counted in `eventsDiscarded`).
   */
  #collect() {
    if (this.#ptr === null) return;
    const events = this.#takeNative();
    if (events.length === 0) return;
    if (this.#onClose === null) {
      for (const ev of events) this.#pending.push(ev);
      const excess = this.#pending.length - this.#pendingMax;
      if (excess > 0) {
        this.#pending.splice(0, excess);
        this.#discarded += excess;
      }
      return;
    }
    this.#deliver(events);
  }

  /** Calls onClose for each event; an exception is rethrown asynchronously. */
  #deliver(events) {
    for (const ev of events) {
      try {
        this.#onClose(ev);
      } catch (err) {
        queueMicrotask(() => {
          throw err;
        });
      }
    }
  }

  /** Pops every event of the C queue, oldest first, releasing the values. */
  #takeNative() {
    const { msc_registry_drain_closed, types } = this.#api;
    const size = koffi.sizeof(types.msc_closed_event);
    const closed = [];
    for (;;) {
      const n = toNumber(msc_registry_drain_closed(this.#ptr, this.#eventBuf, DRAIN_BATCH));
      for (let i = 0; i < n; i++) {
        const ev = koffi.decode(this.#eventBuf, i * size, types.msc_closed_event);
        const tag = toNumber(ev.tag);
        const entry = this.#values.get(tag);
        this.#values.delete(tag);
        closed.push({
          id: ev.id,
          value: entry?.value,
          reason: CLOSE_REASONS[ev.reason] ?? `unknown(${ev.reason})`,
        });
      }
      if (n < DRAIN_BATCH) return closed;
    }
  }

  /**
   * Takes every close event not yet reported, oldest first, and releases
   * each value: a session's value is returned here exactly once. With
   * `onClose`, events go there instead and this returns []. [] after free().
   * @returns {{ id: string, value: any, reason: string }[]}
   */
  drainClosed() {
    if (this.#ptr === null) return [];
    this.#collect();
    const closed = this.#pending;
    this.#pending = [];
    return closed;
  }

  /** Open sessions now (never above maxSessions); 0 after free(). */
  get len() {
    return this.#ptr === null ? 0 : toNumber(this.#api.msc_registry_len(this.#ptr));
  }

  /**
   * Values held by the binding: open sessions plus closed ones not yet
   * drained (at most `2 * maxSessions + eventQueueCapacity`). 0 once everything
   * is drained (or after free()).
   */
  get heldValues() {
    return this.#values.size + this.#pending.length;
  }

  /** True once `free()` ran. */
  get freed() {
    return this.#ptr === null;
  }

  /** A snapshot of the registry's counters. */
  stats() {
    const ptr = this.#live();
    const s = {};
    check(this.#api.msc_registry_stats(ptr, s));
    return {
      live: toNumber(s.live),
      maxSessions: toNumber(s.max_sessions),
      created: toNumber(s.created),
      closed: toNumber(s.closed),
      evicted: toNumber(s.evicted),
      expired: toNumber(s.expired),
      rejectedFull: toNumber(s.rejected_full),
      rateLimited: toNumber(s.rate_limited),
      eventsDropped: toNumber(s.events_dropped),
      eventsDiscarded: this.#discarded,
      rejectedPrincipalFull: this.#stat(ptr, 9),
      rateLimitedPrincipal: this.#stat(ptr, 10),
      principalsTracked: this.#stat(ptr, 11),
    };
  }

  /** One counter by its `msc_stat` number (counters after the frozen msc_stats). */
  #stat(ptr, which) {
    const v = [0];
    check(this.#api.msc_registry_stat(ptr, which, v));
    return toNumber(v[0]);
  }

  /**
   * Frees the native registry. Idempotent. Returns every value still held:
   * first the queued close events, then each session still open with reason
   * 'shutdown' (closed by the library's `msc_registry_shutdown`, a queue's
   * worth at a time, so none is dropped). Afterwards `heldValues` is 0.
   * `onClose` is not called for these. [] on later calls.
   */
  free() {
    if (this.#ptr === null) return [];
    const released = this.#pending;
    this.#pending = [];
    released.push(...this.#takeNative());
    const remaining = [0];
    for (;;) {
      if (this.#api.msc_registry_shutdown(this.#ptr, remaining) !== 0) break;
      released.push(...this.#takeNative());
      if (toNumber(remaining[0]) === 0) break;
    }
    // Only sessions whose close event the queue dropped earlier are left.
    for (const { id, value } of this.#values.values()) {
      released.push({ id, value, reason: CloseReason.SHUTDOWN });
    }
    this.#values.clear();
    const ptr = this.#ptr;
    this.#ptr = null;
    finalizer.unregister(this);
    this.#api.msc_registry_free(ptr);
    return released;
  }

  [Symbol.dispose ?? Symbol.for('Symbol.dispose')]() {
    this.free();
  }
}

export { Fleet, fleetSupported } from './fleet.js';
