//! Time for expiry and rate limiting, injectable so tests never sleep.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// A monotonic millisecond clock.
///
/// The registry reads it on every create and, when an idle timeout or other
/// deadline is configured, on every lookup; an implementation should be
/// cheap (a few nanoseconds) and must never go backwards.
pub trait Clock: Send + Sync {
    /// Milliseconds since an arbitrary fixed origin.
    fn now_ms(&self) -> u64;
}

/// The default clock: the OS coarse monotonic clock
/// (`CLOCK_MONOTONIC_COARSE` on Linux, through `coarsetime`), read without
/// touching any shared cache line, milliseconds since the clock was made.
///
/// Its resolution is the kernel tick (1–4 ms on Linux), far finer than any
/// sensible session timeout, and it costs a few nanoseconds instead of the
/// ~23 ns of `std::time::Instant::now()`.
#[derive(Debug, Clone, Copy)]
pub struct SystemClock {
    origin: coarsetime::Instant,
}

impl SystemClock {
    /// A clock whose origin is now.
    pub fn new() -> Self {
        Self {
            origin: coarsetime::Instant::now_without_cache_update(),
        }
    }
}

impl Default for SystemClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for SystemClock {
    #[inline]
    fn now_ms(&self) -> u64 {
        coarsetime::Instant::now_without_cache_update()
            .duration_since(self.origin)
            .as_millis()
    }
}

/// A clock that moves only when told to: for tests and simulations.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use mcp_session_core::{Clock, ManualClock};
///
/// let clock = ManualClock::new();
/// clock.advance(Duration::from_secs(2));
/// assert_eq!(clock.now_ms(), 2_000);
/// ```
#[derive(Debug, Default)]
pub struct ManualClock {
    now_ms: AtomicU64,
}

impl ManualClock {
    /// A clock at 0 ms.
    pub fn new() -> Self {
        Self::default()
    }

    /// Moves the clock forward by `by` (whole milliseconds; the rest is
    /// dropped).
    pub fn advance(&self, by: Duration) {
        self.now_ms.fetch_add(duration_to_ms(by), Ordering::SeqCst);
    }

    /// Sets the clock to `ms`, which should not be earlier than the current
    /// reading (a clock must not go backwards).
    pub fn set_ms(&self, ms: u64) {
        self.now_ms.store(ms, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now_ms(&self) -> u64 {
        self.now_ms.load(Ordering::SeqCst)
    }
}

/// Whole milliseconds of `d`, saturating at `u64::MAX`.
pub(crate) fn duration_to_ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}
