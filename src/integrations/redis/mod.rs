//! Fleet mode: the registry's semantics on Redis, shared by every instance
//! of an MCP server behind a load balancer. Feature `redis`.
//!
//! [`RedisRegistry`] gives a fleet what [`SessionRegistry`](crate::SessionRegistry)
//! gives one process: an **exact global** `max_sessions` (FIFO eviction of
//! the globally oldest session, or rejection), a global sliding-window
//! creation rate limit, principal binding, lookup = validate + touch, close,
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
//! registry.lookup(&session.id, Some(b"alice")).await?;           // every request
//! registry.set_meta(&session.id, Some(b"alice"), &[("lang", b"en")]).await?;
//! registry.close(&session.id).await?;                            // DELETE
//! let event = closed.recv().await.unwrap();                      // on every instance
//! assert_eq!(event.id, session.id);
//! # Ok(()) }
//! ```
//!
//! # Data model
//!
//! All keys of a registry share the hash tag `{prefix}` (so it works on
//! Redis Cluster: one slot):
//!
//! | key | type | holds |
//! | --- | --- | --- |
//! | `{p}:fifo` | sorted set | live session id → global creation sequence: the FIFO, and `ZCARD` is the live count |
//! | `{p}:idle` | sorted set | id → idle deadline (ms, Redis `TIME`), pushed back by each lookup |
//! | `{p}:life` | sorted set | id → max-lifetime deadline |
//! | `{p}:init` | sorted set | id → init deadline, until [`confirm`](RedisRegistry::confirm) |
//! | `{p}:seq` | string | the global creation sequence (`INCR`) |
//! | `{p}:rate` | sorted set | one entry per creation granted in the current window |
//! | `{p}:s:<id>` | hash | `p` = SHA-256 of the principal (empty: unbound), `c` = created (ms), `q` = sequence, `m:<name>` = metadata, `r:<name>` = integration state |
//! | `{p}:events` | stream | close events `{id, reason}`, `MAXLEN ~` [`events_maxlen`](RedisRegistryBuilder::events_maxlen) |
//! | `{p}:stats` | hash | monotonic counters: `created`, `closed`, `evicted`, `idle_timeout`, `max_lifetime`, `init_timeout`, `rejected_full`, `rate_limited` |
//!
//! Each operation is one Lua script (`EVALSHA`, loaded again automatically
//! after a `NOSCRIPT`, e.g. when Redis restarted), so it is one round trip
//! and atomic: no other operation interleaves with it. The scripts touch
//! the per-session hashes of evicted or expired sessions by name (not
//! through `KEYS`); they are in the same slot by the hash tag, which Redis
//! Cluster allows.
//!
//! # Guarantees
//!
//! - **Exact global bound.** A create first removes every expired session
//!   (each closes with its reason and emits its event), then compares
//!   `ZCARD {p}:fifo` to `max_sessions`, then evicts or refuses, then
//!   inserts — all inside one script, so the live count never exceeds the
//!   bound and an expired session never costs a live one its slot.
//! - **FIFO**: the session evicted is the live one with the smallest global
//!   creation sequence.
//! - **Exactly-once close**: a session leaves `{p}:fifo` once; that removal
//!   writes exactly one close event and increments one counter, so
//!   `live + closes = created` at all times.
//! - **Time** is Redis's (`TIME` inside the scripts): the instances' clocks
//!   do not matter. Deadlines are millisecond-exact; an expired session is
//!   never found by a lookup, and is removed by the next create, lookup of
//!   it, [`purge_expired`](RedisRegistry::purge_expired) or reaper tick.
//! - **Binding**: the principal is stored and compared as its SHA-256
//!   digest. Lua's string comparison is not constant time; comparing
//!   digests means a timing difference reveals at most how many leading
//!   bytes of two SHA-256 digests agree, nothing usable about the principal.
//! - **Metadata** is merged: a write sets only the fields it names
//!   (`HSET`), and [`incr_meta`](RedisRegistry::incr_meta) is atomic.
//!
//! Needs Redis 5 or newer (streams; scripts that read `TIME` and then write
//! rely on effects replication, the default since 5 and the only mode
//! since 7). Tested with Redis 7.0.
//!
//! # Failure behaviour
//!
//! Every call runs under a timeout
//! ([`call_timeout`](RedisRegistryBuilder::call_timeout), default 1 s) and
//! fails with [`StoreError::StoreUnavailable`] (HTTP 503 with
//! `Retry-After: 1`) when Redis is unreachable, restarting or slow; never a
//! panic, never a hang. The connection (redis-rs's `ConnectionManager`)
//! reconnects by itself; scripts are reloaded on `NOSCRIPT`. A create whose
//! reply was lost may have happened: that session holds a slot until it
//! expires (set an `init_timeout`). Redis without persistence loses the
//! sessions on restart (clients get 404 and re-initialize); with AOF or
//! RDB they survive, up to the persistence window.

/// The `tracing` target of the Redis integration's logs.
pub const LOG_TARGET: &str = "mcp_session_core::redis";

mod error;
mod events;
mod store;

#[cfg(feature = "rmcp")]
pub mod rmcp;

pub use error::{RedisBuildError, StoreError, StoreUnavailable};
pub use events::{ClosedEvent, ClosedEvents, EventsFrom};
pub use store::{
    Created, DEFAULT_CALL_TIMEOUT, DEFAULT_EVENTS_MAXLEN, DEFAULT_PREFIX, RedisRegistry,
    RedisRegistryBuilder, RedisStats,
};
