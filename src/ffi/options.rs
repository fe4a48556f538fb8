//! `msc_options`: the extensible way to configure a registry.
//!
//! `msc_config` is a plain struct whose layout is frozen (v1): a host
//! compiled against an older header passes the older, smaller struct, so no
//! field can ever be added to it. Every setting, and every setting added in
//! a later version, is reachable through this opaque object and its
//! setters instead (the `wasm_config_t` pattern): a host built against an
//! older header never calls a setter it does not know, and the options it
//! does not set keep their defaults.

use super::config::msc_config;
use super::fairness::Fairness;
use super::panic::ffi_boundary;
use super::registry::{msc_registry, new_registry};
use super::status::msc_status;

/// Registry settings, opaque: made by `msc_options_new` (all defaults, as
/// `msc_config_default()`), changed by the `msc_options_set_*` functions,
/// used by `msc_registry_new_with_options` (which copies them: the options
/// may be freed or reused right after), freed by `msc_options_free`. Not
/// thread-safe: one thread at a time may use one `msc_options`.
pub struct msc_options {
    config: msc_config,
    fairness: Fairness,
}

/// What a create does at capacity (`msc_options_set_on_full`). Stable
/// numbers.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum msc_on_full {
    /// Refuse the new session with `MSC_ERR_AT_CAPACITY`.
    Reject = 0,
    /// Close the oldest open session (FIFO, reason `MSC_CLOSE_EVICTED`) and
    /// give its slot to the new one. The default.
    EvictOldest = 1,
    /// Evict the idle before the active (S3-FIFO-like): the oldest session
    /// that has served no request since its handshake (`msc_session_get` of
    /// a confirmed session) goes first; among the rest, a second chance
    /// (CLOCK). A session that served a request after its handshake is
    /// never evicted while one that served none is open.
    EvictIdle = 2,
}

/// Makes options with every setting at its default and stores them in
/// `*out`; the caller frees them with `msc_options_free`.
///
/// Returns `MSC_OK`, or `MSC_ERR_NULL_ARGUMENT` if `out` is NULL.
///
/// # Safety
///
/// `out` is NULL or writable for one pointer.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn msc_options_new(out: *mut *mut msc_options) -> msc_status {
    ffi_boundary(|| {
        if out.is_null() {
            return msc_status::MSC_ERR_NULL_ARGUMENT;
        }
        let options = Box::new(msc_options {
            config: super::config::defaults(),
            fairness: Fairness::default(),
        });
        // SAFETY: non-NULL and writable by the caller's contract.
        unsafe { out.write(Box::into_raw(options)) };
        msc_status::MSC_OK
    })
}

/// Frees options made by `msc_options_new`. NULL is a no-op.
///
/// # Safety
///
/// `options` is NULL or a pointer from `msc_options_new` not yet freed.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn msc_options_free(options: *mut msc_options) {
    ffi_boundary(|| {
        if !options.is_null() {
            // SAFETY: made by Box::into_raw in msc_options_new and, by the
            // caller's contract, freed only once.
            drop(unsafe { Box::from_raw(options) });
        }
    })
}

/// Runs `set` on the options behind `options`, or answers
/// `MSC_ERR_NULL_ARGUMENT` for NULL.
///
/// # Safety
///
/// `options` is NULL or a live pointer from `msc_options_new`, used by this
/// thread only.
unsafe fn with_options(
    options: *mut msc_options,
    set: impl FnOnce(&mut msc_config) -> msc_status,
) -> msc_status {
    ffi_boundary(|| {
        // SAFETY: by the caller's contract, non-NULL means live and not
        // shared with another thread during this call.
        match unsafe { options.as_mut() } {
            Some(options) => set(&mut options.config),
            None => msc_status::MSC_ERR_NULL_ARGUMENT,
        }
    })
}

/// As [`with_options`], on the fairness settings.
///
/// # Safety
///
/// As [`with_options`].
pub(crate) unsafe fn with_fairness(
    options: *mut msc_options,
    set: impl FnOnce(&mut Fairness) -> msc_status,
) -> msc_status {
    ffi_boundary(|| {
        // SAFETY: as in `with_options`.
        match unsafe { options.as_mut() } {
            Some(options) => set(&mut options.fairness),
            None => msc_status::MSC_ERR_NULL_ARGUMENT,
        }
    })
}

/// Sets the most sessions open at once (at least 1; 0 makes
/// `msc_registry_new_with_options` fail with `MSC_ERR_INVALID_CONFIG`).
/// Default 10,000.
///
/// Returns `MSC_OK`, or `MSC_ERR_NULL_ARGUMENT` if `options` is NULL.
///
/// # Safety
///
/// `options` is NULL or live (from `msc_options_new`).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn msc_options_set_max_sessions(
    options: *mut msc_options,
    max_sessions: u64,
) -> msc_status {
    // SAFETY: forwarded caller contract.
    unsafe {
        with_options(options, |c| {
            c.max_sessions = max_sessions;
            msc_status::MSC_OK
        })
    }
}

/// Sets what a create does at capacity: an `msc_on_full` value, passed as
/// an integer so that any value is defined here. Default
/// `MSC_ON_FULL_EVICT_OLDEST`.
///
/// Returns `MSC_OK`; `MSC_ERR_NULL_ARGUMENT` if `options` is NULL;
/// `MSC_ERR_INVALID_CONFIG` (changing nothing) for a value that is not an
/// `msc_on_full`.
///
/// # Safety
///
/// `options` is NULL or live (from `msc_options_new`).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn msc_options_set_on_full(
    options: *mut msc_options,
    on_full: u32,
) -> msc_status {
    ffi_boundary(|| {
        // SAFETY: by the caller's contract, non-NULL means live and not
        // shared with another thread during this call.
        let Some(options) = (unsafe { options.as_mut() }) else {
            return msc_status::MSC_ERR_NULL_ARGUMENT;
        };
        match on_full {
            0..=2 => {
                options.config.evict_oldest = u32::from(on_full != 0);
                options.fairness.evict_idle = on_full == 2;
                msc_status::MSC_OK
            }
            _ => msc_status::MSC_ERR_INVALID_CONFIG,
        }
    })
}

/// Sets the idle timeout: close a session no lookup has found for this long
/// (ms); 0 = off (the default).
///
/// Returns `MSC_OK`, or `MSC_ERR_NULL_ARGUMENT` if `options` is NULL.
///
/// # Safety
///
/// `options` is NULL or live (from `msc_options_new`).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn msc_options_set_idle_timeout_ms(
    options: *mut msc_options,
    idle_timeout_ms: u64,
) -> msc_status {
    // SAFETY: forwarded caller contract.
    unsafe {
        with_options(options, |c| {
            c.idle_timeout_ms = idle_timeout_ms;
            msc_status::MSC_OK
        })
    }
}

/// Sets the max lifetime: close a session this long after it was created
/// (ms); 0 = off (the default).
///
/// Returns `MSC_OK`, or `MSC_ERR_NULL_ARGUMENT` if `options` is NULL.
///
/// # Safety
///
/// `options` is NULL or live (from `msc_options_new`).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn msc_options_set_max_lifetime_ms(
    options: *mut msc_options,
    max_lifetime_ms: u64,
) -> msc_status {
    // SAFETY: forwarded caller contract.
    unsafe {
        with_options(options, |c| {
            c.max_lifetime_ms = max_lifetime_ms;
            msc_status::MSC_OK
        })
    }
}

/// Sets the init deadline: close a session not confirmed
/// (`msc_session_confirm`) this long after it was created (ms); 0 = off
/// (the default).
///
/// Returns `MSC_OK`, or `MSC_ERR_NULL_ARGUMENT` if `options` is NULL.
///
/// # Safety
///
/// `options` is NULL or live (from `msc_options_new`).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn msc_options_set_init_timeout_ms(
    options: *mut msc_options,
    init_timeout_ms: u64,
) -> msc_status {
    // SAFETY: forwarded caller contract.
    unsafe {
        with_options(options, |c| {
            c.init_timeout_ms = init_timeout_ms;
            msc_status::MSC_OK
        })
    }
}

/// Sets the creation rate limit: at most `max` creations per sliding window
/// of `window_ms` ms; `max` 0 = off (the default). A `max` over 1,048,576 or
/// a zero window with `max` set makes `msc_registry_new_with_options` fail
/// with `MSC_ERR_INVALID_CONFIG`.
///
/// Returns `MSC_OK`, or `MSC_ERR_NULL_ARGUMENT` if `options` is NULL.
///
/// # Safety
///
/// `options` is NULL or live (from `msc_options_new`).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn msc_options_set_rate_limit(
    options: *mut msc_options,
    max: u64,
    window_ms: u64,
) -> msc_status {
    // SAFETY: forwarded caller contract.
    unsafe {
        with_options(options, |c| {
            c.rate_limit_max = max;
            c.rate_limit_window_ms = window_ms;
            msc_status::MSC_OK
        })
    }
}

/// Sets how many close events are kept for `msc_registry_drain_closed`
/// before new ones are dropped (and counted in `events_dropped`); 0 = the
/// default, 4,096; at most 16,777,216 (its slots are allocated up front).
///
/// Returns `MSC_OK`, or `MSC_ERR_NULL_ARGUMENT` if `options` is NULL.
///
/// # Safety
///
/// `options` is NULL or live (from `msc_options_new`).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn msc_options_set_event_queue_capacity(
    options: *mut msc_options,
    capacity: u64,
) -> msc_status {
    // SAFETY: forwarded caller contract.
    unsafe {
        with_options(options, |c| {
            c.event_queue_capacity = capacity;
            msc_status::MSC_OK
        })
    }
}

/// Creates a registry with `*options` and stores it in `*out`, as
/// `msc_registry_new` does with an `msc_config`.
///
/// Returns `MSC_OK`; `MSC_ERR_NULL_ARGUMENT` if `options` or `out` is NULL;
/// `MSC_ERR_INVALID_CONFIG` if the settings cannot work (see the setters).
/// `*out` is written only on `MSC_OK`; the caller owns the registry and
/// frees it with `msc_registry_free`. The options stay the caller's.
///
/// # Safety
///
/// `options` is NULL or live (from `msc_options_new`); `out` is NULL or
/// writable for one pointer.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn msc_registry_new_with_options(
    options: *const msc_options,
    out: *mut *mut msc_registry,
) -> msc_status {
    ffi_boundary(|| {
        // SAFETY: by the caller's contract, non-NULL means live.
        let Some(options) = (unsafe { options.as_ref() }) else {
            return msc_status::MSC_ERR_NULL_ARGUMENT;
        };
        // SAFETY: forwarded caller contract for `out`.
        unsafe { new_registry(&options.config, |b| options.fairness.apply(b), out) }
    })
}
