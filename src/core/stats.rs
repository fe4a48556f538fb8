//! Registry counters.

use std::sync::atomic::{AtomicU64, Ordering};

/// A snapshot of a registry's counters ([`crate::SessionRegistry::stats`]).
///
/// `live` and `max_sessions` are gauges; every other field is a monotonic
/// counter since the registry was built. The counters are read one by one,
/// so a snapshot taken during activity may be off by the operations in
/// flight; at quiescence `created == live + closed + evicted + expired +
/// redeemed + shut_down` (sessions still open when the last registry handle
/// is dropped are not counted: the registry is gone).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stats {
    /// Open sessions now: the capacity slots in use (never above
    /// `max_sessions`).
    pub live: u64,
    /// The capacity.
    pub max_sessions: u64,
    /// Sessions created.
    pub created: u64,
    /// Sessions closed by [`crate::SessionRegistry::close`].
    pub closed: u64,
    /// Sessions evicted to make room (FIFO).
    pub evicted: u64,
    /// Sessions expired: idle timeout, max lifetime or init timeout.
    pub expired: u64,
    /// Sessions taken by [`crate::SessionRegistry::take`] (single use).
    pub redeemed: u64,
    /// Sessions closed by [`crate::SessionRegistry::shutdown`].
    pub shut_down: u64,
    /// Creates refused at capacity under [`crate::OnFull::Reject`].
    pub rejected_full: u64,
    /// Creates refused by the rate limit.
    pub rate_limited: u64,
    /// Creates refused at a principal's cap under [`crate::OnFull::Reject`]
    /// ([`crate::CreateError::PrincipalFull`]).
    pub rejected_principal_full: u64,
    /// Creates refused by the per-principal rate limit
    /// ([`crate::CreateError::PrincipalRateLimited`]).
    pub rate_limited_principal: u64,
    /// Principals holding per-principal state now (a gauge; the anonymous
    /// class is not counted): those with an open session, a create in
    /// flight, or a creation inside their rate-limit window. 0 when no
    /// per-principal setting is on.
    pub principals_tracked: u64,
    /// Close events dropped because the event queue was full.
    pub events_dropped: u64,
    /// Close callbacks that panicked (the panic was caught; the session was
    /// closed all the same).
    pub callback_panics: u64,
}

#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) created: AtomicU64,
    pub(crate) closed: AtomicU64,
    pub(crate) evicted: AtomicU64,
    pub(crate) expired: AtomicU64,
    pub(crate) redeemed: AtomicU64,
    pub(crate) shut_down: AtomicU64,
    pub(crate) rejected_full: AtomicU64,
    pub(crate) rate_limited: AtomicU64,
    pub(crate) rejected_principal_full: AtomicU64,
    pub(crate) rate_limited_principal: AtomicU64,
    pub(crate) events_dropped: AtomicU64,
    pub(crate) callback_panics: AtomicU64,
}

impl Counters {
    #[inline]
    pub(crate) fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn snapshot(
        &self,
        live: usize,
        max_sessions: usize,
        principals_tracked: usize,
    ) -> Stats {
        let read = |c: &AtomicU64| c.load(Ordering::Relaxed);
        Stats {
            live: live as u64,
            max_sessions: max_sessions as u64,
            created: read(&self.created),
            closed: read(&self.closed),
            evicted: read(&self.evicted),
            expired: read(&self.expired),
            redeemed: read(&self.redeemed),
            shut_down: read(&self.shut_down),
            rejected_full: read(&self.rejected_full),
            rate_limited: read(&self.rate_limited),
            rejected_principal_full: read(&self.rejected_principal_full),
            rate_limited_principal: read(&self.rate_limited_principal),
            principals_tracked: principals_tracked as u64,
            events_dropped: read(&self.events_dropped),
            callback_panics: read(&self.callback_panics),
        }
    }
}
