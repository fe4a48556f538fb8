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

    /// The most an interval measured by two readings can fall short of the
    /// real interval, in milliseconds (the clock's tick plus the
    /// millisecond truncation). The registry adds it to every timeout and
    /// rate-limit window, so a session never expires early and the limit is
    /// never exceeded in real time; they may act up to two such margins
    /// late. 0 for an exact clock (the default).
    fn resolution_ms(&self) -> u64 {
        0
    }
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
    resolution_ms: u64,
}

impl SystemClock {
    /// A clock whose origin is now.
    pub fn new() -> Self {
        Self {
            origin: coarsetime::Instant::now_without_cache_update(),
            resolution_ms: coarse_tick_ms() + 1,
        }
    }
}

/// The coarse clock's tick, rounded up to whole milliseconds.
#[cfg(target_os = "linux")]
fn coarse_tick_ms() -> u64 {
    let mut res = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `res` is a valid, writable timespec; clock_getres only writes
    // it and reports errors by its return value.
    let rc = unsafe { libc::clock_getres(libc::CLOCK_MONOTONIC_COARSE, &mut res) };
    if rc != 0 {
        // Unknown: assume the coarsest common kernel tick (HZ=100).
        return 10;
    }
    let ns = (res.tv_sec as u64)
        .saturating_mul(1_000_000_000)
        .saturating_add(res.tv_nsec as u64);
    ns.div_ceil(1_000_000)
}

/// Elsewhere `coarsetime` reads a fine-grained clock; only the truncation
/// to milliseconds remains.
#[cfg(not(target_os = "linux"))]
fn coarse_tick_ms() -> u64 {
    0
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

    fn resolution_ms(&self) -> u64 {
        self.resolution_ms
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

/// The registry's clock: the default [`SystemClock`] called directly (no
/// virtual call on the lookup path), or any other [`Clock`].
#[derive(Clone)]
pub(crate) enum RegistryClock {
    System(SystemClock),
    Custom(std::sync::Arc<dyn Clock>),
}

impl RegistryClock {
    #[inline]
    pub(crate) fn now_ms(&self) -> u64 {
        match self {
            Self::System(clock) => clock.now_ms(),
            Self::Custom(clock) => clock.now_ms(),
        }
    }

    pub(crate) fn resolution_ms(&self) -> u64 {
        match self {
            Self::System(clock) => clock.resolution_ms(),
            Self::Custom(clock) => clock.resolution_ms(),
        }
    }
}
