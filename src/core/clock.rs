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
/// Its resolution is the kernel tick (1–4 ms on Linux, read with
/// `clock_getres`; on other targets measured once per process, e.g. about
/// 16 ms on Windows), far finer than any sensible session timeout, and it
/// costs a few nanoseconds instead of the ~23 ns of
/// `std::time::Instant::now()`. The tick plus 1 ms (the truncation to
/// milliseconds) is its [`Clock::resolution_ms`], added to every deadline:
/// timeouts never fire early, on every target, as long as the kernel keeps
/// its tick. A virtual machine whose CPU is descheduled can miss ticks, and
/// the coarse clock then lags by the time missed (steps of 24 ms were seen
/// on a loaded 2-vCPU VM with a 4 ms tick); where a timeout must hold to
/// the millisecond there, give the builder a [`Clock`] that reads
/// `std::time::Instant` (about 20 ns more per lookup).
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

/// Elsewhere the tick is measured, once per process: `coarsetime` reads
/// `GetTickCount64` on Windows (~15.6 ms), an approximate clock on macOS and
/// `CLOCK_MONOTONIC_FAST` on FreeBSD, whose ticks no API reports reliably.
#[cfg(not(target_os = "linux"))]
fn coarse_tick_ms() -> u64 {
    static TICK_MS: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    *TICK_MS.get_or_init(measure_tick_ms)
}

/// If the clock shows no step within this budget, this tick is assumed
/// (coarser than any common OS timer tick, Windows' 15.6 ms included).
#[cfg_attr(target_os = "linux", allow(dead_code))]
const ASSUMED_TICK_MS: u64 = 16;

/// Measures the coarse clock's tick: the largest step between consecutive
/// distinct readings over three steps, rounded up to whole milliseconds,
/// spinning at most 100 ms (about two ticks on Windows, a few microseconds
/// on a fine clock). A clock that does not step within the budget is
/// assumed to tick every [`ASSUMED_TICK_MS`].
#[cfg_attr(target_os = "linux", allow(dead_code))]
pub(crate) fn measure_tick_ms() -> u64 {
    let deadline = std::time::Instant::now() + Duration::from_millis(100);
    let next_step = |from: coarsetime::Instant| loop {
        let now = coarsetime::Instant::now_without_cache_update();
        if now != from {
            return Some(now);
        }
        if std::time::Instant::now() > deadline {
            return None;
        }
        std::hint::spin_loop();
    };
    // Align to a step first: the first interval may be a partial tick.
    let Some(mut previous) = next_step(coarsetime::Instant::now_without_cache_update()) else {
        return ASSUMED_TICK_MS;
    };
    let mut largest_ns = 0u64;
    for _ in 0..3 {
        let Some(now) = next_step(previous) else {
            return ASSUMED_TICK_MS.max(largest_ns.div_ceil(1_000_000));
        };
        largest_ns = largest_ns.max(now.duration_since(previous).as_nanos());
        previous = now;
    }
    largest_ns.div_ceil(1_000_000)
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The measurement the other targets rely on never underestimates the
    /// tick where the kernel reports it: one step is never shorter than the
    /// tick. (It may be longer: a descheduled virtual CPU misses ticks.)
    #[cfg(target_os = "linux")]
    #[test]
    fn measured_tick_is_at_least_the_reported_one() {
        let reported = coarse_tick_ms();
        let measured = measure_tick_ms();
        assert!(
            measured >= reported,
            "measured {measured} ms < reported {reported} ms"
        );
    }
}
