//! Fleet mode: the registry's semantics on Redis, shared by every instance
//! of an MCP server behind a load balancer. Feature `redis`.
//!
//! [`RedisRegistry`] gives a fleet what [`SessionRegistry`](crate::SessionRegistry)
//! gives one process: an **exact global** `max_sessions` (FIFO eviction of
//! the globally oldest session, or rejection), a global sliding-window
//! creation rate limit, principal binding, lookup = validate + touch, close, single-use take,
//! idle timeout, max lifetime and init deadline judged by Redis's own clock,
//! merged per-session metadata, and a stream of close events that every
//! instance reads ([`ClosedEvents`]). With the `rmcp` feature too,
//! `integrations::redis::rmcp` adds rmcp's `SessionStore` on Redis and a session
//! manager that restores a session initialized on another instance.
//!
//! ```no_run
//! use std::time::Duration;
//! use mcp_session_core::OnFull;
//! use mcp_session_core::integrations::redis::{EventsFrom, RedisRegistry};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let registry = RedisRegistry::builder()
//!     .secret(std::fs::read("/etc/mcp/fleet-secret")?) // or MCP_SESSION_CORE_REDIS_SECRET
//!     .prefix("my-mcp")                  // keys `{my-mcp}:...`, one Cluster slot
//!     .max_sessions(10_000)              // exact, across the fleet
//!     .on_full(OnFull::EvictOldest)
//!     .idle_timeout(Duration::from_secs(30 * 60))
//!     .rate_limit(100, Duration::from_secs(1))
//!     .connect("redis://127.0.0.1:6379/")
//!     .await?;
//! let _reaper = registry.spawn_reaper(Duration::from_millis(500));
//! let mut closed = registry.closed_events(EventsFrom::Now);
//!
//! let session = registry.create(Some(b"alice")).await?;          // initialize
//! registry.confirm(&session.id).await?;                          // handshake done
//! registry.lookup(&session.id, Some(b"alice")).await?;           // every request
//! registry.set_meta(&session.id, Some(b"alice"), &[("lang", b"en")]).await?;
//! registry.close(&session.id).await?;                            // DELETE
//! let event = closed.recv().await.unwrap()?;                     // on every instance
//! assert_eq!(event.id, session.id);
//! # Ok(()) }
//! ```
//!
//! # Data model
//!
//! All keys of a registry share the hash tag `{prefix}` (so it works on
//! Redis Cluster: one slot), and these eleven plus one rate-limit window
//! per principal are all of them: every script receives the keys it
//! touches in `KEYS` and touches no other key (Redis's rule for scripts,
//! relied on by Redis Cluster, proxies and key-pattern ACLs):
//!
//! | key | type | holds |
//! | --- | --- | --- |
//! | `{p}:fifo` | sorted set | live session id → global creation sequence: the FIFO, and `ZCARD` is the live count |
//! | `{p}:idle` | sorted set | id → idle deadline (ms, Redis `TIME`), pushed back by each lookup |
//! | `{p}:life` | sorted set | id → max-lifetime deadline |
//! | `{p}:init` | sorted set | id → init deadline, until [`confirm`](RedisRegistry::confirm) |
//! | `{p}:seq` | string | the global creation sequence (`INCR`) |
//! | `{p}:rate` | sorted set | one entry per creation granted in the current window |
//! | `{p}:owner` | hash | id → HMAC-SHA256(fleet secret, principal) (empty: unbound); a session without an entry is found by nobody |
//! | `{p}:data` | hash | id → MessagePack map: `m:<name>` = metadata, `r:<name>` = integration state (bounded by [`max_meta_bytes`](RedisRegistryBuilder::max_meta_bytes) / [`max_state_bytes`](RedisRegistryBuilder::max_state_bytes)) |
//! | `{p}:events` | stream | close events `{id, reason, n}` (`n` numbers them consecutively), `MAXLEN ~` [`events_maxlen`](RedisRegistryBuilder::events_maxlen) |
//! | `{p}:byprin` | sorted set | every live session as `class · seq · id` (score 0; class `p`+principal digest, or `a` for unbound): each principal's sessions in creation order, counted by `ZLEXCOUNT` for [`max_sessions_per_principal`](RedisRegistryBuilder::max_sessions_per_principal) |
//! | `{p}:prate:<class>` | sorted set | with [`rate_limit_per_principal`](RedisRegistryBuilder::rate_limit_per_principal): one entry per creation the class (`p`+hex principal digest, or `a` for unbound) was granted in its current window; expires a window after its last grant (create passes its class's key as `KEYS[12]`, only with this limit on) |
//! | `{p}:stats` | hash | monotonic counters: `created`, `closed`, `evicted`, `idle_timeout`, `max_lifetime`, `init_timeout`, `redeemed`, `rejected_full`, `rejected_principal_full`, `rate_limited`, `rate_limited_principal`, `events`, `events_gaps` |
//!
//! Each operation is one Lua script (`EVALSHA`, loaded again automatically
//! after a `NOSCRIPT`, e.g. when Redis restarted), so it is one round trip
//! and atomic: no other operation interleaves with it. The work of one
//! script is bounded: it removes at most [`SWEEP_BATCH`] expired sessions
//! per deadline kind, so a backlog of expired sessions never stalls Redis.
//!
//! # Guarantees
//!
//! - **Exact global bound.** A create first recognises a repeat of itself
//!   (same id: its first reply was lost), then removes up to
//!   [`SWEEP_BATCH`] expired sessions per deadline kind (each closes with
//!   its reason and emits its event: at least one if any expired, which is
//!   all a create at capacity needs), then checks the principal's and the
//!   fleet's rate limits, compares
//!   `ZCARD {p}:fifo` to `max_sessions`, evicts or refuses, and inserts —
//!   all inside one script, so the live count never exceeds the bound and
//!   an expired session never costs a live one its slot.
//! - **FIFO**: the session evicted is the live one with the smallest global
//!   creation sequence.
//! - **Exactly-once close**: a session leaves `{p}:fifo` once; that removal
//!   writes exactly one close event and increments one counter, so
//!   `live + closes = created` at all times.
//! - **Time** is Redis's (`TIME` inside the scripts): the instances' clocks
//!   do not matter. Deadlines are millisecond-exact; an expired session is
//!   never found by a lookup, and is removed by the next create, lookup of
//!   it, [`purge_expired`](RedisRegistry::purge_expired) or reaper tick.
//! - **Binding**: the principal is stored and compared as
//!   HMAC-SHA256(fleet secret, principal), so a dump of Redis does not tell
//!   which known principal owns a session, and digests differ between
//!   fleets. Lua's string comparison is not constant time; a timing
//!   difference reveals at most how many leading bytes of two MACs agree.
//!   A session whose owner entry is missing is found by nobody (fails
//!   closed), and [`connect`](RedisRegistryBuilder::connect) refuses a
//!   Redis whose `maxmemory-policy` can evict the registry's keys.
//! - **Metadata** is merged: a write sets only the fields it names, and
//!   [`incr_meta`](RedisRegistry::incr_meta) is atomic. Its size is
//!   bounded per session ([`StoreError::TooLarge`], HTTP 413).
//! - **Close events** are numbered; a subscriber that finds events it had
//!   not read trimmed away or lost yields an [`EventsGap`] (and counts
//!   it), so it can reconcile.
//!
//! Needs Redis 6.2 or newer (exclusive `XRANGE` ranges; scripts that read
//! `TIME` and then write rely on effects replication, the default since 5
//! and the only mode since 7). Tested with Redis 7.0, one node and Redis
//! Cluster ([`connect_cluster`](RedisRegistryBuilder::connect_cluster)).
//!
//! # Failure behaviour
//!
//! Every call runs under a timeout
//! ([`call_timeout`](RedisRegistryBuilder::call_timeout), default 1 s) and
//! fails with [`StoreError::StoreUnavailable`] (HTTP 503 with
//! `Retry-After: 1`) when Redis is unreachable, restarting or slow; never a
//! panic, never a hang. The connection (redis-rs's `ConnectionManager`)
//! reconnects by itself; scripts are reloaded on `NOSCRIPT`. A create whose
//! reply was lost may have happened: the registry closes that session in
//! the background (reason `init_timeout`), and the init deadline (on by
//! default, 30 s) reclaims it if that close cannot get through either.
//! Redis without persistence loses the
//! sessions on restart (clients get 404 and re-initialize); with AOF or
//! RDB they survive, up to the persistence window.

/// The `tracing` target of the Redis integration's logs.
pub const LOG_TARGET: &str = "mcp_session_core::redis";

mod conn;
mod error;
mod events;
mod store;

#[cfg(feature = "rmcp")]
pub mod rmcp;

pub use error::{RedisBuildError, StoreError, StoreUnavailable};
pub use events::{ClosedEvent, ClosedEvents, EventsFrom, EventsGap};
pub use store::{
    Created, DEFAULT_CALL_TIMEOUT, DEFAULT_EVENTS_MAXLEN, DEFAULT_INIT_TIMEOUT,
    DEFAULT_MAX_META_BYTES, DEFAULT_MAX_STATE_BYTES, DEFAULT_PREFIX, RedisRegistry,
    RedisRegistryBuilder, RedisStats, SECRET_ENV, SWEEP_BATCH,
};
