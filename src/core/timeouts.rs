//! Expiry rules: idle timeout, max lifetime, init deadline.

use super::entry::Entry;
use super::events::CloseReason;

/// The configured deadlines, in milliseconds; `None` = off.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Timeouts {
    pub(crate) idle_ms: Option<u64>,
    pub(crate) lifetime_ms: Option<u64>,
    pub(crate) init_ms: Option<u64>,
    /// The clock's resolution, added to every deadline so that none fires
    /// early (see `Clock::resolution_ms`).
    pub(crate) margin_ms: u64,
}

impl Timeouts {
    /// `true` if any deadline is on, i.e. lookups must read the clock.
    #[inline]
    pub(crate) fn any(&self) -> bool {
        self.idle_ms.is_some() || self.lifetime_ms.is_some() || self.init_ms.is_some()
    }

    /// Why `entry` has expired at `now_ms`, if it has. A session expires
    /// when `now_ms - since >= timeout + margin`; if several deadlines have
    /// passed, the one that passed first is the reason.
    pub(crate) fn expiry<V>(&self, entry: &Entry<V>, now_ms: u64) -> Option<CloseReason> {
        let m = self.margin_ms;
        let idle = self.idle_ms.map(|t| {
            let last = entry
                .last_activity_ms
                .load(std::sync::atomic::Ordering::Relaxed);
            (
                last.saturating_add(t).saturating_add(m),
                CloseReason::IdleTimeout,
            )
        });
        let lifetime = self.lifetime_ms.map(|t| {
            (
                entry.created_ms.saturating_add(t.saturating_add(m)),
                CloseReason::MaxLifetime,
            )
        });
        let init = self.init_ms.filter(|_| entry.state.is_pending()).map(|t| {
            (
                entry.created_ms.saturating_add(t.saturating_add(m)),
                CloseReason::InitTimeout,
            )
        });
        [init, lifetime, idle]
            .into_iter()
            .flatten()
            .filter(|&(deadline, _)| deadline <= now_ms)
            .min_by_key(|&(deadline, _)| deadline)
            .map(|(_, reason)| reason)
    }

    /// How often a create at capacity may sweep for expired sessions: a
    /// quarter of the shortest timeout, between 1 ms and 1 s.
    pub(crate) fn sweep_interval_ms(&self) -> u64 {
        [self.idle_ms, self.lifetime_ms, self.init_ms]
            .into_iter()
            .flatten()
            .min()
            .map_or(1_000, |t| (t / 4).clamp(1, 1_000))
    }
}
