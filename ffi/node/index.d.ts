// Hand-written declarations for mcp-session-core's Node bindings (index.js).

/// <reference types="node" />

/** Length of a session id's text form (a canonical lowercase UUID v4). */
export declare const SESSION_ID_LEN: 36;

/** Error codes a `SessionError` carries. */
export declare const ErrorCode: Readonly<{
  NULL_ARGUMENT: 'NULL_ARGUMENT';
  INVALID_CONFIG: 'INVALID_CONFIG';
  AT_CAPACITY: 'AT_CAPACITY';
  RATE_LIMITED: 'RATE_LIMITED';
  NOT_FOUND: 'NOT_FOUND';
  MALFORMED_ID: 'MALFORMED_ID';
  BUFFER_TOO_SMALL: 'BUFFER_TOO_SMALL';
  INTERNAL: 'INTERNAL';
  SHUT_DOWN: 'SHUT_DOWN';
  /** The principal (or the anonymous class) holds its cap of sessions (onFull 'reject'); HTTP 429. */
  PRINCIPAL_FULL: 'PRINCIPAL_FULL';
  /** The principal's creation rate limit is exhausted; HTTP 429. */
  PRINCIPAL_RATE_LIMITED: 'PRINCIPAL_RATE_LIMITED';
  /** Fleet mode: Redis is unreachable or too slow (503, with `retryAfterMs`). */
  STORE_UNAVAILABLE: 'STORE_UNAVAILABLE';
  /** Binding-level: the registry was used after `free()`. */
  REGISTRY_FREED: 'REGISTRY_FREED';
  /** A status number this binding does not know (a newer library). */
  UNKNOWN: 'UNKNOWN';
}>;
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

/** Why a session left the registry. */
export declare const CloseReason: Readonly<{
  /** `close()` (e.g. HTTP DELETE). */
  CLOSED: 'closed';
  /** Evicted (FIFO, oldest creation first) to make room for a new session. */
  EVICTED: 'evicted';
  /** No lookup found it for `idleTimeoutMs`. */
  IDLE_TIMEOUT: 'idle_timeout';
  /** Older than `maxLifetimeMs`. */
  MAX_LIFETIME: 'max_lifetime';
  /** Not confirmed within `initTimeoutMs`. */
  INIT_TIMEOUT: 'init_timeout';
  /** Still open when the registry was freed (reported by `free()` only). */
  SHUTDOWN: 'shutdown';
  /** Taken for single use by `take`. */
  REDEEMED: 'redeemed';
}>;
/**
 * A close reason: one of `CloseReason`, or `unknown(n)` for a reason number
 * this binding does not know (a newer library).
 */
export type CloseReason = (typeof CloseReason)[keyof typeof CloseReason] | `unknown(${number})`;

/** A caller identity a session can be bound to: UTF-8 text or raw bytes. */
export type Principal = string | Uint8Array;

/** A 64-bit setting: a safe integer, or a BigInt for larger values. */
export type U64 = number | bigint;

export interface SessionRegistryOptions<V = unknown> {
  /** The most sessions open at once; at least 1. Default 10,000. */
  maxSessions?: U64;
  /**
   * At capacity: evict the oldest session (default), evict the idle first
   * ('evict-idle': a session that served a request after its handshake —
   * a `get` after `confirm` — is never evicted while one that served none
   * is open), or reject the new one.
   */
  onFull?: 'evict' | 'evict-idle' | 'reject';
  /**
   * The most sessions one principal may hold open at once (exact); 0/absent
   * = no cap. At the cap the principal's own oldest (or idlest) session is
   * evicted, or with onFull 'reject' `create` throws PRINCIPAL_FULL.
   */
  maxSessionsPerPrincipal?: U64;
  /** Cap of sessions created without a principal; 0/absent = `maxSessionsPerPrincipal`. */
  maxAnonymousSessions?: U64;
  /** Per principal (and the anonymous class): at most `max` creations per sliding window of `windowMs`. */
  rateLimitPerPrincipal?: { max: U64; windowMs: U64 } | null;
  /** Close a session no `get` has found for this long (ms); 0/absent = off. */
  idleTimeoutMs?: U64;
  /** Close a session this long after its creation (ms); 0/absent = off. */
  maxLifetimeMs?: U64;
  /** Close a session not `confirm`ed this long after creation (ms); 0/absent = off. */
  initTimeoutMs?: U64;
  /** At most `max` creations per sliding window of `windowMs` (ms). */
  rateLimit?: { max: U64; windowMs: U64 } | null;
  /**
   * The C close-event queue's size; 0/absent = `maxSessions` (at least
   * 4,096, at most 16,777,216), so that every session can expire in one
   * `purgeExpired()` without a drop. The binding keeps up to
   * `eventQueueCapacity + maxSessions` undrained events for `drainClosed()`;
   * beyond that the oldest are discarded (their values released), counted
   * in `eventsDiscarded`. Unused with `onClose`.
   */
  eventQueueCapacity?: U64;
  /**
   * Receives each close event as soon as the binding sees it (during the
   * `create`, `close`, `purgeExpired`, `get` or `confirm` call that closed
   * the session); the value is released then, and `drainClosed()` returns
   * []. An exception it throws is rethrown asynchronously (an uncaught
   * exception), after the other events were delivered. Not called by
   * `free()`, which returns the rest.
   */
  onClose?: ((event: ClosedSession<V>) => void) | null;
}

/** A session that left the registry, with the value it held. */
export interface ClosedSession<V = unknown> {
  id: string;
  value: V;
  reason: CloseReason;
}

/** A snapshot of the registry's counters. */
export interface RegistryStats {
  /** Open sessions now (never above `maxSessions`). */
  live: number;
  maxSessions: number;
  created: number;
  /** Closed by `close()`. */
  closed: number;
  /** Evicted (FIFO) to make room. */
  evicted: number;
  /** Expired (idle, max lifetime, init timeout). */
  expired: number;
  /** Creates refused at capacity (onFull 'reject'). */
  rejectedFull: number;
  /** Creates refused by the rate limit. */
  rateLimited: number;
  /** Close events the C queue dropped because it was full (0 with this binding's default settings). */
  eventsDropped: number;
  /**
   * Undrained close events the binding discarded (their values released)
   * because more than `eventQueueCapacity + maxSessions` were waiting for
   * `drainClosed()`.
   */
  eventsDiscarded: number;
  /** Creates refused at a principal's cap (onFull 'reject'). */
  rejectedPrincipalFull: number;
  /** Creates refused by the per-principal rate limit. */
  rateLimitedPrincipal: number;
  /** Principals holding per-principal state now (a gauge). */
  principalsTracked: number;
}

/** A failed registry operation. */
export declare class SessionError extends Error {
  constructor(code: ErrorCode, message?: string, extra?: { status?: number; retryAfterMs?: number });
  readonly name: 'SessionError';
  /** What went wrong. */
  code: ErrorCode;
  /** The raw `msc_status` number, when the error came from the library. */
  status: number | undefined;
  /**
   * The HTTP status to answer with: MALFORMED_ID 400, NOT_FOUND 404,
   * RATE_LIMITED 429, AT_CAPACITY, SHUT_DOWN, STORE_UNAVAILABLE and
   * REGISTRY_FREED 503,
   * anything else 500.
   */
  httpStatus: number;
  /** AT_CAPACITY, RATE_LIMITED and STORE_UNAVAILABLE: when a retry can succeed, in ms. */
  retryAfterMs: number | undefined;
  /** `retryAfterMs` rounded up to seconds, for a `Retry-After` header. */
  readonly retryAfterSeconds: number | undefined;
}

/**
 * An exact-capacity session registry over the C library. Values stay in
 * JavaScript; each session's value is returned by `drainClosed()` (or
 * `free()`) exactly once when the session leaves.
 */
export declare class SessionRegistry<V = unknown> implements Disposable {
  /** @throws {SessionError} INVALID_CONFIG */
  constructor(options?: SessionRegistryOptions<V>);

  /**
   * Creates a session holding `value`, bound to `principal` if given.
   * At capacity evicts the oldest session (its value comes back from
   * `drainClosed()`), or with `onFull: 'reject'` throws AT_CAPACITY.
   * @returns the session id
   * @throws {SessionError} AT_CAPACITY, RATE_LIMITED (both with `retryAfterMs`), INTERNAL
   * @throws {TypeError} for a principal that is not a string or bytes
   */
  create(value: V, principal?: Principal | null): string;

  /**
   * Validates a session id (e.g. the `Mcp-Session-Id` header) for the caller
   * `principal`, refreshes the session's activity and returns its value.
   * Any non-string id is MALFORMED_ID.
   * @throws {SessionError} MALFORMED_ID (400), NOT_FOUND (404)
   */
  get(id: unknown, principal?: Principal | null): V;

  /**
   * Marks a session initialized, so the init timeout no longer applies.
   * Idempotent.
   * @throws {SessionError} MALFORMED_ID, NOT_FOUND
   */
  confirm(id: unknown): void;

  /**
   * Closes a session and returns its value; `drainClosed()` then reports it
   * with reason 'closed' (and releases the value). The principal is not
   * checked: validate the caller with `get` first.
   * @throws {SessionError} MALFORMED_ID, NOT_FOUND (also on a second close)
   */
  close(id: unknown): V;

  /**
   * Takes a session for single use: closes it (reason 'redeemed') and
   * returns its value, to exactly one caller among takes, closes, evictions
   * and expiries. The principal is checked as by `get`.
   * @throws {SessionError} MALFORMED_ID, NOT_FOUND (not open, another
   *   principal's, expired, or already taken)
   */
  take(id: unknown, principal?: Principal | null): V;

  /**
   * Closes every expired session and returns how many; their events go to
   * `onClose` or wait for `drainClosed()`. None is dropped.
   */
  purgeExpired(): number;

  /**
   * Takes every close event not yet reported, oldest first, releasing each
   * value. [] with `onClose`, and after `free()`.
   */
  drainClosed(): ClosedSession<V>[];

  /** Open sessions now; 0 after `free()`. */
  readonly len: number;

  /**
   * Values the binding holds: open sessions plus closed ones not yet
   * drained; at most `2 * maxSessions + eventQueueCapacity`.
   */
  readonly heldValues: number;

  /** True once `free()` ran. */
  readonly freed: boolean;

  /** A snapshot of the counters. */
  stats(): RegistryStats;

  /**
   * Frees the native registry; idempotent. Returns every value still held:
   * the queued close events, then each still-open session with reason
   * 'shutdown'. Returns [] on later calls. Any other method then throws
   * REGISTRY_FREED (except `len`, `drainClosed`, `heldValues`, `freed`).
   */
  free(): ClosedSession<V>[];

  [Symbol.dispose](): void;
}

/**
 * The library loaded: `$MCP_SESSION_CORE_LIB`, else the one in the
 * per-platform package (`platformPackageName()`), else
 * `<repo>/target/release/` in a checkout.
 */
export declare function libraryPath(): string;

/** The per-platform package for this machine, e.g. `mcp-session-core-linux-x64-gnu`. */
export declare function platformPackageName(): string;

/** The library's version, e.g. "0.1.0". */
export declare function version(): string;

/** The library's English description of a `msc_status` number. */
export declare function statusText(status: number): string;

/** The SessionError for a `msc_status` number (for callers of `native()`); null for 0 (`MSC_OK`). */
export declare function errorFromStatus(status: 0): null;
export declare function errorFromStatus(status: number): SessionError | null;

/** koffi type objects of the header's types. */
export interface NativeTypes {
  msc_status: unknown;
  msc_close_reason: unknown;
  msc_registry: unknown;
  msc_config: unknown;
  msc_closed_event: unknown;
  msc_stats: unknown;
}

/** The header's `msc_config`, as koffi converts it. */
export interface NativeConfig {
  max_sessions: U64;
  evict_oldest: number;
  idle_timeout_ms: U64;
  max_lifetime_ms: U64;
  init_timeout_ms: U64;
  rate_limit_max: U64;
  rate_limit_window_ms: U64;
  event_queue_capacity: U64;
}

/** A registry pointer (koffi 3 represents pointers as BigInt). */
export type RegistryPtr = bigint;
type OutBuf = Uint8Array | null;
type OutU64 = BigUint64Array | [number | bigint | null] | null;

/**
 * The raw koffi bindings of the C ABI, loaded on first use. Statuses are
 * returned as numbers; nothing is checked beyond what koffi checks.
 */
export interface NativeApi {
  lib: unknown;
  types: NativeTypes;
  msc_config_default(): NativeConfig;
  msc_registry_new(config: NativeConfig | null, out: [RegistryPtr | null]): number;
  msc_registry_free(registry: RegistryPtr | null): void;
  msc_registry_shutdown(registry: RegistryPtr | null, outRemaining: [number | bigint | null] | null): number;
  msc_registry_len(registry: RegistryPtr | null): number;
  msc_registry_purge_expired(registry: RegistryPtr | null, outCount: [number | bigint | null] | null): number;
  msc_registry_drain_closed(registry: RegistryPtr | null, out: OutBuf, capacity: number): number;
  msc_registry_stats(registry: RegistryPtr | null, out: Record<string, unknown> | null): number;
  msc_session_create(registry: RegistryPtr | null, tag: U64, principal: string | null, outId: OutBuf): number;
  msc_session_create_ex(
    registry: RegistryPtr | null,
    tag: U64,
    principal: Uint8Array | null,
    principalLen: number,
    outId: OutBuf,
    outIdLen: number,
    outRetryAfterMs: OutU64,
  ): number;
  msc_session_get(registry: RegistryPtr | null, id: string | null, principal: string | null, outTag: OutU64): number;
  msc_session_get_ex(
    registry: RegistryPtr | null,
    id: string | null,
    principal: Uint8Array | null,
    principalLen: number,
    outTag: OutU64,
  ): number;
  msc_session_confirm(registry: RegistryPtr | null, id: string | null): number;
  msc_session_close(registry: RegistryPtr | null, id: string | null, outTag: OutU64): number;
  msc_status_str(status: number): string;
  msc_version(): string;
}

/** The raw C ABI (low level; prefer `SessionRegistry`). */
export declare function native(): NativeApi;

/** Settings of a fleet-mode registry (`Fleet.connect`); every instance of a fleet uses the same. */
export interface FleetOptions {
  /** Key prefix (`{prefix}:*`, one Redis Cluster slot); default `'mcp-sessions'`. */
  prefix?: string;
  /** Fleet secret, at least 16 bytes; default: `$MCP_SESSION_CORE_REDIS_SECRET`. */
  secret?: string | Uint8Array;
  /** Most sessions open at once across the fleet (exact); default 10,000. */
  maxSessions?: number;
  /** At capacity: evict the globally oldest session (default) or reject. */
  onFull?: 'evict' | 'reject';
  /** Idle timeout (ms, Redis's clock); 0/absent = off. */
  idleTimeoutMs?: number;
  /** Max lifetime (ms); 0/absent = off. */
  maxLifetimeMs?: number;
  /** Init deadline (ms) until `confirm`; default 30,000; 0 = off. */
  initTimeoutMs?: number;
  /** Fleet-wide creation rate limit (sliding window). */
  rateLimit?: { max: number; windowMs: number } | null;
  /** Bound of every call, and of the connect (ms); default 1,000. */
  callTimeoutMs?: number;
  /** Approximate length of the close-event stream; default 100,000. */
  eventsMaxLen?: number;
  /** Redis `WAIT` after each write (durability across a failover). */
  waitForReplicas?: { replicas: number; timeoutMs: number } | null;
  /** Connect even if Redis's maxmemory-policy can evict keys (a warning). */
  allowEvictingPolicy?: boolean;
  /** How often the handle removes expired sessions (ms); default 1,000; 0 = off. */
  reaperIntervalMs?: number;
  /**
   * The most sessions one principal may hold open at once across the fleet
   * (exact); 0/absent = no cap. At the cap the principal's own oldest
   * session is evicted, or with onFull 'reject' `create` rejects with
   * PRINCIPAL_FULL (429).
   */
  maxSessionsPerPrincipal?: number;
  /** Cap of sessions created without a principal; 0/absent = `maxSessionsPerPrincipal`. */
  maxAnonymousSessions?: number;
  /**
   * Per principal (and the anonymous class), across the fleet: at most
   * `max` creations per sliding window of `windowMs`, checked before
   * `rateLimit`; refusals are PRINCIPAL_RATE_LIMITED (429, exact
   * `retryAfterMs`). `max` at most 1,048,576, `windowMs` at least 1.
   */
  rateLimitPerPrincipal?: { max: number; windowMs: number } | null;
}

/** A fleet event: a session closed anywhere in the fleet, or a gap (events lost). */
export type FleetEvent = { id: string; reason: CloseReason } | { gap: true };

/** The fleet's counters as Redis holds them. */
export interface FleetStats {
  live: number;
  maxSessions: number;
  created: number;
  closed: number;
  evicted: number;
  idleTimeout: number;
  maxLifetime: number;
  initTimeout: number;
  redeemed: number;
  rejectedFull: number;
  rateLimited: number;
  eventsGaps: number;
  /** Creates refused at a principal's (or the anonymous class's) cap (onFull 'reject'). */
  rejectedPrincipalFull: number;
  /** Creates refused by the per-principal rate limit. */
  rateLimitedPrincipal: number;
}

/**
 * Fleet mode (library built with `--features redis`): a session registry
 * shared by every instance through Redis. Holds no values: keep your own
 * map from session id to transport. Methods that talk to Redis are async
 * and reject with a `SessionError` (STORE_UNAVAILABLE, 503, when Redis is
 * unreachable or slow).
 */
export declare class Fleet {
  /**
   * Connects to a Redis URL, or a Redis Cluster `{ cluster: [seed URLs] }`.
   * @throws {SessionError} INVALID_CONFIG, STORE_UNAVAILABLE
   */
  static connect(url: string | { cluster: string[] }, options?: FleetOptions): Promise<Fleet>;
  /**
   * @throws {SessionError} PRINCIPAL_RATE_LIMITED, RATE_LIMITED, PRINCIPAL_FULL,
   *   AT_CAPACITY, STORE_UNAVAILABLE (with `retryAfterMs`)
   */
  create(principal?: Principal | null): Promise<string>;
  /** @throws {SessionError} MALFORMED_ID, NOT_FOUND, STORE_UNAVAILABLE */
  get(id: string, principal?: Principal | null): Promise<void>;
  /** Single use: closes it (reason 'redeemed') for exactly one caller in the fleet. */
  take(id: string, principal?: Principal | null): Promise<void>;
  confirm(id: string): Promise<void>;
  /** @throws {SessionError} NOT_FOUND if it was not open */
  close(id: string): Promise<void>;
  purgeExpired(): Promise<number>;
  stats(): Promise<FleetStats>;
  /** Events since the last call; synchronous, never waits for Redis. */
  drainEvents(): FleetEvent[];
  readonly freed: boolean;
  /** Waits for calls in flight, then frees the handle. Idempotent. */
  free(): Promise<void>;
}

/** True if the loaded library has fleet mode. */
export declare function fleetSupported(): boolean;
