//! An exact, lock-free sliding-window limit on session creation.
//!
//! "At most `max` creations in any window of `window_ms`" is kept exactly
//! (not approximated, as a two-bucket counter does, nor turned into a
//! steady rate, as GCRA does) with `max` grant slots. Each slot remembers
//! when it was last granted; a slot may be granted again only once its last
//! grant is at least `window_ms` old. Two grants in one slot are therefore at
//! least a window apart, and any window holds at most one grant per slot: at
//! most `max` in all.
//!
//! A grant is one CAS on a slot (lock-free: a failed CAS means another
//! thread's grant succeeded). Giving a grant back ([`RateLimiter::give_back`])
//! restores the slot's previous stamp with one CAS, so a creation that fails
//! after passing the limiter costs no budget. A refusal scans the slots once
//! (O(`max`)), which also yields the exact time until the next free slot.
//! Memory: 8 bytes per slot, allocated only when the limit is configured.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

/// The most grant slots a limiter may have (8 MiB of stamps).
pub(crate) const MAX_RATE_LIMIT: u64 = 1 << 20;

/// A slot stamp is `granted_at_ms + 1`; 0 means "never granted".
const NEVER: u64 = 0;

pub(crate) struct RateLimiter {
    stamps: Box<[AtomicU64]>,
    cursor: AtomicUsize,
    window_ms: u64,
    /// The latest grant's stamp (0: never), for [`RateLimiter::is_idle`].
    /// A give-back leaves it in place (on the safe side: idle a bit later).
    latest: AtomicU64,
}

/// A granted creation; hand it to [`RateLimiter::give_back`] if the
/// creation fails.
#[derive(Debug)]
pub(crate) struct Permit {
    slot: usize,
    stamp: u64,
    previous: u64,
}

impl RateLimiter {
    /// `max` grants per `window_ms`; the config checks `1..=MAX_RATE_LIMIT`
    /// and `window_ms >= 1`.
    pub(crate) fn new(max: usize, window_ms: u64) -> Self {
        Self {
            stamps: (0..max).map(|_| AtomicU64::new(NEVER)).collect(),
            cursor: AtomicUsize::new(0),
            window_ms,
            latest: AtomicU64::new(NEVER),
        }
    }

    /// Grants one creation at `now_ms`, or returns the milliseconds until a
    /// slot frees (at least 1).
    pub(crate) fn try_acquire(&self, now_ms: u64) -> Result<Permit, u64> {
        let len = self.stamps.len();
        let start = self.cursor.load(Ordering::Relaxed) % len;
        let mut wait_ms = u64::MAX;
        for step in 0..len {
            let slot = (start + step) % len;
            let previous = self.stamps[slot].load(Ordering::Acquire);
            let age = self.age(previous, now_ms);
            if age >= self.window_ms {
                let stamp = now_ms.saturating_add(1);
                if self.stamps[slot]
                    .compare_exchange(previous, stamp, Ordering::AcqRel, Ordering::Acquire)
                    .is_ok()
                {
                    self.cursor.store(slot + 1, Ordering::Relaxed);
                    self.latest.fetch_max(stamp, Ordering::AcqRel);
                    return Ok(Permit {
                        slot,
                        stamp,
                        previous,
                    });
                }
                // Another creator took this slot just now; it holds it for a
                // full window.
                wait_ms = wait_ms.min(self.window_ms);
            } else {
                wait_ms = wait_ms.min(self.window_ms - age);
            }
        }
        Err(wait_ms.max(1))
    }

    /// Returns a grant whose creation failed. If its window has already
    /// passed and the slot was granted again, there is nothing to return.
    pub(crate) fn give_back(&self, permit: Permit) {
        let _ = self.stamps[permit.slot].compare_exchange(
            permit.stamp,
            permit.previous,
            Ordering::AcqRel,
            Ordering::Relaxed,
        );
    }

    /// `true` if no grant lies inside the window ending at `now_ms`: the
    /// limiter would grant `max` creations now, exactly as a fresh one (so
    /// it may be dropped and made again without loosening the limit).
    pub(crate) fn is_idle(&self, now_ms: u64) -> bool {
        self.age(self.latest.load(Ordering::Acquire), now_ms) >= self.window_ms
    }

    /// When the latest grant leaves the window (ms), or 0 if it has.
    pub(crate) fn idle_at_ms(&self) -> u64 {
        match self.latest.load(Ordering::Acquire) {
            NEVER => 0,
            stamp => (stamp - 1).saturating_add(self.window_ms),
        }
    }

    fn age(&self, stamp: u64, now_ms: u64) -> u64 {
        if stamp == NEVER {
            u64::MAX
        } else {
            now_ms.saturating_sub(stamp - 1)
        }
    }
}

impl std::fmt::Debug for RateLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RateLimiter")
            .field("max", &self.stamps.len())
            .field("window_ms", &self.window_ms)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn at_most_max_in_any_window() {
        let limiter = RateLimiter::new(3, 1_000);
        let mut granted = Vec::new();
        // Try once per 10 ms for 5 s; record grant times.
        for now in (0..5_000).step_by(10) {
            if limiter.try_acquire(now).is_ok() {
                granted.push(now);
            }
        }
        for (i, &t) in granted.iter().enumerate() {
            let in_window = granted[i..].iter().take_while(|&&u| u < t + 1_000).count();
            assert!(in_window <= 3, "{in_window} grants in the window from {t}");
        }
        // 3 bursts of... exactly 3 per second: 15 in 5 s.
        assert_eq!(granted.len(), 15);
    }

    #[test]
    fn burst_then_refusal_with_exact_wait() {
        let limiter = RateLimiter::new(2, 1_000);
        assert!(limiter.try_acquire(100).is_ok());
        assert!(limiter.try_acquire(400).is_ok());
        assert_eq!(limiter.try_acquire(500).unwrap_err(), 600);
        assert!(limiter.try_acquire(1_099).is_err());
        assert!(limiter.try_acquire(1_100).is_ok());
        assert_eq!(limiter.try_acquire(1_100).unwrap_err(), 300);
    }

    #[test]
    fn idle_once_the_latest_grant_left_the_window() {
        let limiter = RateLimiter::new(2, 1_000);
        assert!(limiter.is_idle(0));
        limiter.try_acquire(100).unwrap();
        limiter.try_acquire(300).unwrap();
        assert!(!limiter.is_idle(1_299));
        assert_eq!(limiter.idle_at_ms(), 1_300);
        assert!(limiter.is_idle(1_300));
    }

    #[test]
    fn give_back_restores_the_budget() {
        let limiter = RateLimiter::new(1, 1_000);
        let permit = limiter.try_acquire(10).unwrap();
        assert!(limiter.try_acquire(20).is_err());
        limiter.give_back(permit);
        assert!(limiter.try_acquire(20).is_ok());
        assert!(limiter.try_acquire(30).is_err());
    }

    #[test]
    fn concurrent_grants_never_exceed_max() {
        let limiter = std::sync::Arc::new(RateLimiter::new(50, 1_000_000));
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let limiter = limiter.clone();
                std::thread::spawn(move || {
                    (0..1_000)
                        .filter(|_| limiter.try_acquire(5).is_ok())
                        .count()
                })
            })
            .collect();
        let total: usize = threads.into_iter().map(|t| t.join().unwrap()).sum();
        assert_eq!(total, 50);
    }
}
