//! This project: `SessionRegistry<u64>` with FIFO eviction and no event
//! queue (no host drains it here). `Core<true>` (column `core`) has a 1 h
//! idle timeout, so lookups read the clock and refresh last-activity, as
//! moka's `time_to_idle` and rmcp's keep-alive do: the configuration the
//! peers are compared with. `Core<false>` (`core-noexpiry`) has no timeout
//! at all, to show what the expiry check costs on the lookup path; it runs
//! the lookup workloads only. `core` also runs the 2026-07-28 rows: `take`
//! (single use) and the lookup of a principal-bound handle.

use std::time::Duration;

use mcp_session_core::{OnFull, SessionId, SessionRegistry};

use super::Peer;

pub struct Core<const IDLE: bool>(pub SessionRegistry<u64>);

impl<const IDLE: bool> Peer for Core<IDLE> {
    type Key = SessionId;
    const NAME: &'static str = if IDLE { "core" } else { "core-noexpiry" };
    const ASYNC: bool = false;
    const BOUNDED: bool = true;
    const WRITES: bool = IDLE;

    fn new(max_sessions: usize) -> Self {
        let builder = SessionRegistry::builder()
            .max_sessions(max_sessions)
            .on_full(OnFull::EvictOldest)
            .event_queue_capacity(0);
        let builder = if IDLE {
            builder.idle_timeout(Duration::from_secs(3600))
        } else {
            builder
        };
        Self(builder.build().expect("valid config"))
    }

    async fn create(&self) -> Option<SessionId> {
        self.0.create(1).ok().map(|s| s.id())
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

    const ERAS: bool = IDLE;

    async fn take(&self, key: &SessionId) -> bool {
        self.0.take(key, None).is_ok()
    }

    async fn create_handle(&self) -> Option<SessionId> {
        self.0.create_bound(PRINCIPAL, 1).ok().map(|s| s.id())
    }

    async fn lookup_handle_text(&self, text: &str) -> bool {
        self.0.get_str(text, Some(PRINCIPAL)).is_ok()
    }
}

/// The principal the handles are bound to (a typical user id's length).
const PRINCIPAL: &[u8] = b"user-7f3a9c21@example.com";
