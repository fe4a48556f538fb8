//! [`RefusalLog`]: refused creations, counted per cause and logged once per
//! cause per interval, so that a flood of refusals is not a flood of logs.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// How often, at most, one cause of refusal is logged.
pub(crate) const REFUSAL_LOG_INTERVAL: Duration = Duration::from_secs(60);

/// Why a create was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(usize)]
pub(crate) enum Cause {
    RateLimited = 0,
    AtCapacity = 1,
    PrincipalRequired = 2,
    Other = 3,
    /// Fleet mode: the session store (Redis) did not answer.
    #[cfg_attr(not(feature = "redis"), allow(dead_code))]
    StoreUnavailable = 4,
}

impl Cause {
    const ALL: [Cause; 5] = [
        Cause::RateLimited,
        Cause::AtCapacity,
        Cause::PrincipalRequired,
        Cause::Other,
        Cause::StoreUnavailable,
    ];

    fn as_str(self) -> &'static str {
        match self {
            Cause::RateLimited => "rate limited",
            Cause::AtCapacity => "at capacity",
            Cause::PrincipalRequired => "no principal",
            Cause::Other => "internal error",
            Cause::StoreUnavailable => "session store unavailable",
        }
    }
}

/// Refused creations per cause since the manager started, as
/// [`RegistrySessionManager::refusals`](super::RegistrySessionManager::refusals)
/// returns them (the registry's own stats count `rate_limited` and
/// `rejected_full` too; these add the causes only the manager sees).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Refusals {
    /// Refused by the creation rate limit (HTTP 429).
    pub rate_limited: u64,
    /// Refused at capacity under `OnFull::Reject`, or no free id (503).
    pub at_capacity: u64,
    /// Refused because `require_principal` is set and the request carried
    /// no principal (403).
    pub principal_required: u64,
    /// Failed for another reason (the OS random generator; 500).
    pub other: u64,
    /// Fleet mode: the session store (Redis) was unreachable or too slow
    /// (503).
    pub store_unavailable: u64,
}

/// Counts and rate-limited logging of refusals.
#[derive(Debug)]
pub(crate) struct RefusalLog {
    started: Instant,
    counts: [AtomicU64; 5],
    /// Per cause: when it was last logged (ms since `started`, +1; 0 = never).
    logged_at: [AtomicU64; 5],
    /// Per cause: the count when it was last logged.
    logged_count: [AtomicU64; 5],
}

impl Default for RefusalLog {
    fn default() -> Self {
        Self {
            started: Instant::now(),
            counts: Default::default(),
            logged_at: Default::default(),
            logged_count: Default::default(),
        }
    }
}

impl RefusalLog {
    /// Counts a refusal; logs it at `warn` if its cause was not logged in
    /// the last [`REFUSAL_LOG_INTERVAL`] (with how many were refused since),
    /// else stays silent. Returns `true` if it logged.
    pub(crate) fn refused(&self, cause: Cause, detail: &dyn std::fmt::Display) -> bool {
        let index = cause as usize;
        let total = self.counts[index].fetch_add(1, Ordering::Relaxed) + 1;
        let now = self.started.elapsed().as_millis() as u64 + 1;
        let last = self.logged_at[index].load(Ordering::Relaxed);
        let due = last == 0 || now.saturating_sub(last) >= REFUSAL_LOG_INTERVAL.as_millis() as u64;
        if !due
            || self.logged_at[index]
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_err()
        {
            return false;
        }
        let previous = self.logged_count[index].swap(total, Ordering::Relaxed);
        tracing::warn!(
            target: super::LOG_TARGET,
            cause = cause.as_str(),
            refused_since_last_log = total - previous,
            refused_total = total,
            %detail,
            "session creation refused (logged at most once a minute per cause)"
        );
        true
    }

    pub(crate) fn snapshot(&self) -> Refusals {
        let [
            rate_limited,
            at_capacity,
            principal_required,
            other,
            store_unavailable,
        ] = Cause::ALL.map(|cause| self.counts[cause as usize].load(Ordering::Relaxed));
        Refusals {
            rate_limited,
            at_capacity,
            principal_required,
            other,
            store_unavailable,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flood_is_counted_in_full_and_logged_once_per_cause() {
        let log = RefusalLog::default();
        let logged = (0..1_000)
            .filter(|_| log.refused(Cause::RateLimited, &"flood"))
            .count();
        assert_eq!(logged, 1);
        assert!(
            log.refused(Cause::AtCapacity, &"full"),
            "another cause logs"
        );
        assert!(!log.refused(Cause::AtCapacity, &"full"));
        let counts = log.snapshot();
        assert_eq!(counts.rate_limited, 1_000);
        assert_eq!(counts.at_capacity, 2);
        assert_eq!(counts.principal_required, 0);
    }
}
