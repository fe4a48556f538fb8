//! Fairness settings and counters in the C ABI (DESIGN.md "Fairness"):
//! per-principal caps and rate limits, `MSC_ON_FULL_EVICT_IDLE`, and a
//! keyed counter getter, `msc_registry_stat`, through which counters added
//! after the frozen `msc_stats` layout are read (and every later one will
//! be: a host never passes a key its header does not know, and a library
//! older than the host's header answers an unknown key with
//! `MSC_ERR_NOT_FOUND`).

use std::time::Duration;

use super::options::{msc_options, with_fairness};
use super::panic::ffi_boundary;
use super::registry::{msc_registry, registry_ref};
use super::status::msc_status;
use crate::{OnFull, RegistryBuilder};

/// The settings of this module, kept in `msc_options` beside the frozen
/// `msc_config`.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Fairness {
    pub(crate) evict_idle: bool,
    per_principal: u64,
    anonymous: u64,
    rate_max: u64,
    rate_window_ms: u64,
}

impl Fairness {
    /// Applies these settings (after `msc_config::apply`); `None` for a
    /// value no builder setting can express (the builder checks the rest).
    pub(crate) fn apply(&self, mut builder: RegistryBuilder<u64>) -> Option<RegistryBuilder<u64>> {
        if self.evict_idle {
            builder = builder.on_full(OnFull::EvictIdle);
        }
        if self.per_principal > 0 {
            builder = builder.max_sessions_per_principal(usize::try_from(self.per_principal).ok()?);
        }
        if self.anonymous > 0 {
            builder = builder.max_anonymous_sessions(usize::try_from(self.anonymous).ok()?);
        }
        if self.rate_max > 0 {
            builder = builder.rate_limit_per_principal(
                self.rate_max,
                Duration::from_millis(self.rate_window_ms),
            );
        }
        Some(builder)
    }
}

/// Sets the most sessions one principal may hold open at once (the
/// per-principal exact bound; sessions created without a principal form
/// the anonymous class, capped by `msc_options_set_max_anonymous_sessions`,
/// by default this same cap). At a principal's cap, evicting policies close
/// *that principal's* oldest (or, under `MSC_ON_FULL_EVICT_IDLE`, idlest)
/// session; `MSC_ON_FULL_REJECT` fails with `MSC_ERR_PRINCIPAL_FULL`.
/// 0 = no cap (the default).
///
/// Returns `MSC_OK`, or `MSC_ERR_NULL_ARGUMENT` if `options` is NULL.
///
/// # Safety
///
/// `options` is NULL or live (from `msc_options_new`).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn msc_options_set_max_sessions_per_principal(
    options: *mut msc_options,
    max: u64,
) -> msc_status {
    // SAFETY: forwarded caller contract.
    unsafe {
        with_fairness(options, |f| {
            f.per_principal = max;
            msc_status::MSC_OK
        })
    }
}

/// Sets the most sessions without a principal open at once (the anonymous
/// class). 0 = the default: the per-principal cap, or none if that is
/// unset.
///
/// Returns `MSC_OK`, or `MSC_ERR_NULL_ARGUMENT` if `options` is NULL.
///
/// # Safety
///
/// `options` is NULL or live (from `msc_options_new`).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn msc_options_set_max_anonymous_sessions(
    options: *mut msc_options,
    max: u64,
) -> msc_status {
    // SAFETY: forwarded caller contract.
    unsafe {
        with_fairness(options, |f| {
            f.anonymous = max;
            msc_status::MSC_OK
        })
    }
}

/// Sets a per-principal creation rate limit: each principal (and the
/// anonymous class) at most `max` creations in any sliding window of
/// `window_ms`, checked before the global limit; refusals are
/// `MSC_ERR_PRINCIPAL_RATE_LIMITED` (HTTP 429). `max` 0 = off (the
/// default); otherwise 1 to 1,048,576 with `window_ms` at least 1, or
/// `msc_registry_new_with_options` fails with `MSC_ERR_INVALID_CONFIG`.
///
/// Returns `MSC_OK`, or `MSC_ERR_NULL_ARGUMENT` if `options` is NULL.
///
/// # Safety
///
/// `options` is NULL or live (from `msc_options_new`).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn msc_options_set_rate_limit_per_principal(
    options: *mut msc_options,
    max: u64,
    window_ms: u64,
) -> msc_status {
    // SAFETY: forwarded caller contract.
    unsafe {
        with_fairness(options, |f| {
            f.rate_max = max;
            f.rate_window_ms = window_ms;
            msc_status::MSC_OK
        })
    }
}

/// A counter or gauge for `msc_registry_stat` (and, for the keys fleet mode
/// keeps, `msc_fleet_stat`). Stable numbers, only ever appended; the first
/// nine are `msc_stats`'s fields.
///
/// cbindgen:prefix-with-name=false
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum msc_stat {
    /// Open sessions now.
    MSC_STAT_LIVE = 0,
    /// The capacity.
    MSC_STAT_MAX_SESSIONS = 1,
    /// Sessions created.
    MSC_STAT_CREATED = 2,
    /// Sessions closed by `msc_session_close`.
    MSC_STAT_CLOSED = 3,
    /// Sessions evicted to make room.
    MSC_STAT_EVICTED = 4,
    /// Sessions expired.
    MSC_STAT_EXPIRED = 5,
    /// Creates refused at capacity (reject policy).
    MSC_STAT_REJECTED_FULL = 6,
    /// Creates refused by the global rate limit.
    MSC_STAT_RATE_LIMITED = 7,
    /// Close events dropped (queue full).
    MSC_STAT_EVENTS_DROPPED = 8,
    /// Creates refused at a principal's cap (reject policy).
    MSC_STAT_REJECTED_PRINCIPAL_FULL = 9,
    /// Creates refused by the per-principal rate limit.
    MSC_STAT_RATE_LIMITED_PRINCIPAL = 10,
    /// Principals holding per-principal state now (a gauge).
    MSC_STAT_PRINCIPALS_TRACKED = 11,
    /// Sessions taken for single use (`msc_session_take`).
    MSC_STAT_REDEEMED = 12,
}

impl msc_stat {
    /// The key numbered `value`, or `None` for a number this library does
    /// not know.
    pub(crate) const fn from_u32(value: u32) -> Option<Self> {
        Some(match value {
            0 => Self::MSC_STAT_LIVE,
            1 => Self::MSC_STAT_MAX_SESSIONS,
            2 => Self::MSC_STAT_CREATED,
            3 => Self::MSC_STAT_CLOSED,
            4 => Self::MSC_STAT_EVICTED,
            5 => Self::MSC_STAT_EXPIRED,
            6 => Self::MSC_STAT_REJECTED_FULL,
            7 => Self::MSC_STAT_RATE_LIMITED,
            8 => Self::MSC_STAT_EVENTS_DROPPED,
            9 => Self::MSC_STAT_REJECTED_PRINCIPAL_FULL,
            10 => Self::MSC_STAT_RATE_LIMITED_PRINCIPAL,
            11 => Self::MSC_STAT_PRINCIPALS_TRACKED,
            12 => Self::MSC_STAT_REDEEMED,
            _ => return None,
        })
    }
}

/// Stores one counter, `stat` (an `msc_stat` value, passed as an integer so
/// that any value is defined here), in `*out`.
///
/// Returns `MSC_OK`; `MSC_ERR_NULL_ARGUMENT` if `registry` or `out` is
/// NULL; `MSC_ERR_NOT_FOUND` (writing nothing) for a value this library
/// does not know (a host built against a newer header).
///
/// # Safety
///
/// `registry` is NULL or live; `out` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn msc_registry_stat(
    registry: *const msc_registry,
    stat: u32,
    out: *mut u64,
) -> msc_status {
    ffi_boundary(|| {
        // SAFETY: forwarded caller contract.
        let Some(registry) = (unsafe { registry_ref(registry) }) else {
            return msc_status::MSC_ERR_NULL_ARGUMENT;
        };
        if out.is_null() {
            return msc_status::MSC_ERR_NULL_ARGUMENT;
        }
        let Some(stat) = msc_stat::from_u32(stat) else {
            return msc_status::MSC_ERR_NOT_FOUND;
        };
        let s = registry.inner.stats();
        // Exhaustive: a key added to `msc_stat` must be answered here.
        let value = match stat {
            msc_stat::MSC_STAT_LIVE => s.live,
            msc_stat::MSC_STAT_MAX_SESSIONS => s.max_sessions,
            msc_stat::MSC_STAT_CREATED => s.created,
            msc_stat::MSC_STAT_CLOSED => s.closed,
            msc_stat::MSC_STAT_EVICTED => s.evicted,
            msc_stat::MSC_STAT_EXPIRED => s.expired,
            msc_stat::MSC_STAT_REJECTED_FULL => s.rejected_full,
            msc_stat::MSC_STAT_RATE_LIMITED => s.rate_limited,
            msc_stat::MSC_STAT_EVENTS_DROPPED => s.events_dropped,
            msc_stat::MSC_STAT_REJECTED_PRINCIPAL_FULL => s.rejected_principal_full,
            msc_stat::MSC_STAT_RATE_LIMITED_PRINCIPAL => s.rate_limited_principal,
            msc_stat::MSC_STAT_PRINCIPALS_TRACKED => s.principals_tracked,
            msc_stat::MSC_STAT_REDEEMED => s.redeemed,
        };
        // SAFETY: non-NULL and writable by the caller's contract.
        unsafe { out.write(value) };
        msc_status::MSC_OK
    })
}

#[cfg(test)]
mod tests {
    use super::msc_stat;

    /// `from_u32` is the inverse of the stable numbers: every number it
    /// knows maps to the key with that discriminant, and the first number
    /// past the keys is unknown.
    #[test]
    fn stat_numbers_round_trip() {
        let mut n = 0u32;
        while let Some(stat) = msc_stat::from_u32(n) {
            assert_eq!(stat as u32, n);
            n += 1;
        }
        assert_eq!(n, msc_stat::MSC_STAT_REDEEMED as u32 + 1);
        assert!(msc_stat::from_u32(u32::MAX).is_none());
    }
}
