//! This project with its fairness settings, beside `core` (same 1 h idle
//! timeout, no event queue), to measure what they cost in one run:
//!
//! - `core-bound`: sessions bound to one of 64 principals in turn, lookups
//!   presenting it, no quota: the baseline of `core-quota` (binding and the
//!   principal check on lookups cost the same with or without a quota).
//! - `core-quota`: the same with `max_sessions_per_principal(max / 16)`, so
//!   every create takes a principal slot and a global slot (and at
//!   capacity evicts the globally oldest, releasing its principal slot).
//! - `core-evict-idle`: `OnFull::EvictIdle` (probation FIFO, second
//!   chance), each session confirmed at creation as after an `initialize`
//!   handshake, so its first lookup promotes it (one CAS) and the evictor
//!   meets promoted sessions: create at capacity alone evicts from
//!   probation, the mixed load evicts among promoted ones too.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use mcp_session_core::{OnFull, SessionId, SessionRegistry};

use super::Peer;

/// Principals the quota peer rotates through.
const PRINCIPALS: usize = 64;

fn principal(n: usize) -> [u8; 9] {
    let mut p = *b"principal";
    p[8] = b'0' + (n % PRINCIPALS) as u8;
    p
}

/// Bound sessions; with `QUOTA` a per-principal cap of `max / 16`.
pub struct CoreQuota<const QUOTA: bool> {
    registry: SessionRegistry<u64>,
    next: AtomicUsize,
}

impl<const QUOTA: bool> Peer for CoreQuota<QUOTA> {
    /// The id and the principal it is bound to.
    type Key = (SessionId, [u8; 9]);
    const NAME: &'static str = if QUOTA { "core-quota" } else { "core-bound" };
    const ASYNC: bool = false;
    const BOUNDED: bool = true;

    fn new(max_sessions: usize) -> Self {
        let mut builder = SessionRegistry::builder();
        if QUOTA {
            builder = builder.max_sessions_per_principal((max_sessions / 16).max(1));
        }
        let registry = builder
            .max_sessions(max_sessions)
            .on_full(OnFull::EvictOldest)
            .event_queue_capacity(0)
            .idle_timeout(Duration::from_secs(3600))
            .build()
            .expect("valid config");
        Self {
            registry,
            next: AtomicUsize::new(0),
        }
    }

    async fn create(&self) -> Option<Self::Key> {
        let p = principal(self.next.fetch_add(1, Ordering::Relaxed));
        self.registry.create_bound(&p, 1).ok().map(|s| (s.id(), p))
    }

    async fn lookup(&self, (id, p): &Self::Key) -> bool {
        self.registry.with_session(id, Some(p), |v| *v).is_ok()
    }

    async fn lookup_text(&self, text: &str) -> bool {
        // The header text carries no principal: the anonymous lookup of a
        // bound session misses, so present the first principal (a miss for
        // most, as for a wrong principal; the cost is the same path).
        self.registry.get_str(text, Some(&principal(0))).is_ok()
    }

    async fn close(&self, (id, _): &Self::Key) -> bool {
        self.registry.close(id).is_some()
    }

    async fn live(&self) -> usize {
        self.registry.len()
    }

    fn text((id, _): &Self::Key) -> String {
        id.to_string()
    }
}

pub struct CoreEvictIdle(SessionRegistry<u64>);

impl Peer for CoreEvictIdle {
    type Key = SessionId;
    const NAME: &'static str = "core-evict-idle";
    const ASYNC: bool = false;
    const BOUNDED: bool = true;

    fn new(max_sessions: usize) -> Self {
        Self(
            SessionRegistry::builder()
                .max_sessions(max_sessions)
                .on_full(OnFull::EvictIdle)
                .event_queue_capacity(0)
                .idle_timeout(Duration::from_secs(3600))
                .build()
                .expect("valid config"),
        )
    }

    async fn create(&self) -> Option<SessionId> {
        let id = self.0.create(1).ok()?.id();
        // The handshake completed; a concurrent eviction may have closed it.
        let _ = self.0.confirm(&id);
        Some(id)
    }

    async fn lookup(&self, key: &SessionId) -> bool {
        self.0.with_session(key, None, |v| *v).is_ok()
    }

    async fn lookup_text(&self, text: &str) -> bool {
        self.0.get_str(text, None).is_ok()
    }

    async fn close(&self, key: &SessionId) -> bool {
        self.0.close(key).is_some()
    }

    async fn live(&self) -> usize {
        self.0.len()
    }

    fn text(key: &SessionId) -> String {
        key.to_string()
    }
}
