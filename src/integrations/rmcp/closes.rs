//! [`ClosesByReason`]: the manager's count of closed sessions per
//! [`CloseReason`], kept by its close callback.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::CloseReason;

/// Every close reason, in the order of [`ClosesByReason::iter`].
const REASONS: [CloseReason; 7] = [
    CloseReason::Closed,
    CloseReason::Evicted,
    CloseReason::IdleTimeout,
    CloseReason::MaxLifetime,
    CloseReason::InitTimeout,
    CloseReason::Shutdown,
    CloseReason::Redeemed,
];

/// The index of `reason` in [`REASONS`]. An exhaustive match, so that a new
/// [`CloseReason`] cannot be left uncounted.
const fn index(reason: CloseReason) -> usize {
    match reason {
        CloseReason::Closed => 0,
        CloseReason::Evicted => 1,
        CloseReason::IdleTimeout => 2,
        CloseReason::MaxLifetime => 3,
        CloseReason::InitTimeout => 4,
        CloseReason::Shutdown => 5,
        CloseReason::Redeemed => 6,
    }
}

/// Live counters of closed sessions, one per [`CloseReason`] (wait-free:
/// one relaxed `fetch_add` per close). The manager keeps one; a host that
/// must read the counts after the manager is gone (e.g. the sessions a
/// shutdown closed) keeps its own and feeds it from the registry's
/// `on_close` callback.
///
/// # Examples
///
/// ```
/// use std::sync::Arc;
/// use mcp_session_core::{CloseReason, SessionRegistry};
/// use mcp_session_core::integrations::rmcp::CloseCounter;
///
/// let closes = Arc::new(CloseCounter::default());
/// let counted = closes.clone();
/// let registry = SessionRegistry::<u32>::builder()
///     .on_close(move |closed| counted.count(closed.reason))
///     .build()
///     .unwrap();
/// let session = registry.create(1).unwrap();
/// registry.close(&session.id());
/// drop(registry);
/// assert_eq!(closes.snapshot().get(CloseReason::Closed), 1);
/// ```
#[derive(Debug, Default)]
pub struct CloseCounter {
    counts: [AtomicU64; REASONS.len()],
}

impl CloseCounter {
    /// Counts one session closed with `reason`.
    pub fn count(&self, reason: CloseReason) {
        self.counts[index(reason)].fetch_add(1, Ordering::Relaxed);
    }

    /// The counts now.
    pub fn snapshot(&self) -> ClosesByReason {
        ClosesByReason {
            counts: std::array::from_fn(|i| self.counts[i].load(Ordering::Relaxed)),
        }
    }
}

/// Sessions closed per [`CloseReason`] since the manager started, as
/// [`RegistrySessionManager::closes_by_reason`](super::RegistrySessionManager::closes_by_reason)
/// returns them. Every session that leaves the registry is counted once,
/// under its one reason (the registry's exactly-once close path), so the
/// sum is the number of sessions closed.
///
/// # Examples
///
/// ```
/// use mcp_session_core::{CloseReason, SessionRegistry};
/// use mcp_session_core::integrations::rmcp::RegistrySessionManager;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let manager = RegistrySessionManager::new(SessionRegistry::builder()).unwrap();
/// let closes = manager.closes_by_reason();
/// assert_eq!(closes.get(CloseReason::Evicted), 0);
/// assert_eq!(closes.iter().count(), 7);
/// # }
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ClosesByReason {
    counts: [u64; REASONS.len()],
}

impl ClosesByReason {
    /// How many sessions closed with `reason`.
    pub fn get(&self, reason: CloseReason) -> u64 {
        self.counts[index(reason)]
    }

    /// Every reason with its count, each reason once (zeros included).
    pub fn iter(&self) -> impl Iterator<Item = (CloseReason, u64)> + '_ {
        REASONS.iter().map(|reason| (*reason, self.get(*reason)))
    }

    /// All sessions closed, whatever the reason.
    pub fn total(&self) -> u64 {
        self.counts.iter().sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_reason_has_its_own_count() {
        let counter = CloseCounter::default();
        for (i, reason) in REASONS.iter().enumerate() {
            for _ in 0..=i {
                counter.count(*reason);
            }
        }
        let closes = counter.snapshot();
        for (i, (reason, count)) in closes.iter().enumerate() {
            assert_eq!(reason, REASONS[i]);
            assert_eq!(count, i as u64 + 1, "{reason}");
        }
        assert_eq!(closes.total(), 28);
    }
}
