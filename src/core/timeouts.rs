//! Expiry rules: idle timeout, max lifetime, init deadline.

use super::admission::StateSnapshot;
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

    /// Why a session in state `state`, published at `opened_ms`, has
    /// expired at `now_ms`, if it has. A session expires when
    /// `now_ms - since >= timeout + margin`; if several deadlines have
    /// passed, the one that passed first is the reason.
    #[inline]
    pub(crate) fn expiry(
        &self,
        state: StateSnapshot,
        opened_ms: u64,
        now_ms: u64,
    ) -> Option<CloseReason> {
        self.first_deadline(state, opened_ms)
            .filter(|&(deadline, _)| deadline <= now_ms)
            .map(|(_, reason)| reason)
    }

    /// The earliest deadline (ms) of a session in state `state`, published
    /// at `opened_ms`, and the reason it would close with then; `None` if
    /// no timeout applies to it. Deadlines only move later (a lookup
    /// refreshes activity, a confirm drops the init deadline), so this is a
    /// lower bound on when it can expire.
    #[inline]
    pub(crate) fn first_deadline(
        &self,
        state: StateSnapshot,
        opened_ms: u64,
    ) -> Option<(u64, CloseReason)> {
        let after =
            |since: u64, timeout: u64| since.saturating_add(timeout).saturating_add(self.margin_ms);
        let idle = self
            .idle_ms
            .map(|t| (after(state.activity_ms(), t), CloseReason::IdleTimeout));
        let lifetime = self
            .lifetime_ms
            .map(|t| (after(opened_ms, t), CloseReason::MaxLifetime));
        let init = self
            .init_ms
            .filter(|_| state.is_pending())
            .map(|t| (after(opened_ms, t), CloseReason::InitTimeout));
        [init, lifetime, idle]
            .into_iter()
            .flatten()
            .min_by_key(|&(deadline, _)| deadline)
    }

    /// The shortest timeout plus the margin: no session created at or after
    /// `now` can expire before `now + horizon`.
    pub(crate) fn horizon_ms(&self) -> u64 {
        // An unset timeout counts as u64::MAX, which saturates to MAX as
        // "none" does. Written without `flatten().min()`: LLVM compiled
        // that (inlined into `purge_expired_at`) into a compare of a
        // `None`'s uninitialised payload ahead of its tag check, harmless
        // but a valgrind memcheck error in ffi/c/test.sh.
        let shortest = [self.idle_ms, self.lifetime_ms, self.init_ms]
            .map(|t| t.unwrap_or(u64::MAX))
            .into_iter()
            .min()
            .unwrap_or(u64::MAX);
        shortest.saturating_add(self.margin_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::Timeouts;

    #[test]
    fn horizon_is_the_shortest_timeout_plus_the_margin() {
        let t = |idle_ms, lifetime_ms, init_ms, margin_ms| Timeouts {
            idle_ms,
            lifetime_ms,
            init_ms,
            margin_ms,
        };
        assert_eq!(t(None, None, None, 2).horizon_ms(), u64::MAX);
        assert_eq!(t(Some(10), None, Some(5), 2).horizon_ms(), 7);
        assert_eq!(t(None, Some(3), None, 0).horizon_ms(), 3);
        assert_eq!(t(Some(u64::MAX), None, None, 2).horizon_ms(), u64::MAX);
        assert_eq!(t(Some(u64::MAX - 1), None, None, 5).horizon_ms(), u64::MAX);
    }
}
