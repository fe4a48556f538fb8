//! Creating, inspecting and freeing a registry; draining close events.

use std::ffi::c_char;

use super::config::msc_config;
use super::panic::ffi_boundary;
use super::status::{msc_close_reason, msc_status};
use super::util::write_id;
use crate::{RegistryBuilder, SESSION_ID_LEN, SessionRegistry};

/// The length of a session id's text form, without the NUL terminator.
/// Buffers for ids are `MSC_SESSION_ID_LEN + 1` bytes.
pub const MSC_SESSION_ID_LEN: usize = 36;

const _: () = assert!(MSC_SESSION_ID_LEN == SESSION_ID_LEN);

/// A session registry. Opaque; thread-safe: any function may be called on
/// one registry from many threads at once. Created by `msc_registry_new`,
/// freed by `msc_registry_free`.
pub struct msc_registry {
    pub(crate) inner: SessionRegistry<u64>,
}

/// One closed session, as returned by `msc_registry_drain_closed`.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct msc_closed_event {
    /// The session id, NUL-terminated (`MSC_SESSION_ID_LEN + 1` bytes).
    pub id: [c_char; 37],
    /// The tag given at creation.
    pub tag: u64,
    /// Why it closed.
    pub reason: msc_close_reason,
}

const _: () = assert!(MSC_SESSION_ID_LEN + 1 == 37);

/// A snapshot of the registry's counters (see `msc_registry_stats`). This
/// layout is frozen, like `msc_config`'s: counters added later get
/// functions of their own.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct msc_stats {
    /// Open sessions now (never above `max_sessions`).
    pub live: u64,
    /// The capacity.
    pub max_sessions: u64,
    /// Sessions created.
    pub created: u64,
    /// Sessions closed by `msc_session_close`.
    pub closed: u64,
    /// Sessions evicted (FIFO) to make room.
    pub evicted: u64,
    /// Sessions expired (idle, max lifetime, init timeout).
    pub expired: u64,
    /// Creates refused at capacity (reject policy).
    pub rejected_full: u64,
    /// Creates refused by the rate limit.
    pub rate_limited: u64,
    /// Close events dropped because the queue was full: each is a session
    /// the host will not hear of (its tag is not returned). Size the queue
    /// (`event_queue_capacity`) for the sessions that can close between two
    /// drains; a growing count means tags are leaking.
    pub events_dropped: u64,
}

/// Creates a registry with `*config` and stores it in `*out`.
///
/// Returns `MSC_OK`; `MSC_ERR_NULL_ARGUMENT` if `config` or `out` is NULL;
/// `MSC_ERR_INVALID_CONFIG` if the settings cannot work (`max_sessions` 0,
/// `evict_oldest` not 0 or 1, a rate limit over 1,048,576 or with a zero
/// window, an event queue over 16,777,216). `*out` is written only on
/// `MSC_OK`; the caller owns the registry and frees it with
/// `msc_registry_free`.
///
/// # Safety
///
/// `config` is NULL or points to a readable `msc_config`; `out` is NULL or
/// points to writable memory for one pointer.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn msc_registry_new(
    config: *const msc_config,
    out: *mut *mut msc_registry,
) -> msc_status {
    ffi_boundary(|| {
        if config.is_null() {
            return msc_status::MSC_ERR_NULL_ARGUMENT;
        }
        // SAFETY: non-NULL and readable by the caller's contract; every bit
        // pattern is a valid msc_config (integers only).
        let config = unsafe { *config };
        // SAFETY: forwarded caller contract for `out`.
        unsafe { new_registry(&config, Some, out) }
    })
}

/// Builds a registry from `config`, then `more` settings, into `*out`
/// (written only on `MSC_OK`).
///
/// # Safety
///
/// `out` is NULL or writable for one pointer.
pub(crate) unsafe fn new_registry(
    config: &msc_config,
    more: impl FnOnce(RegistryBuilder<u64>) -> Option<RegistryBuilder<u64>>,
    out: *mut *mut msc_registry,
) -> msc_status {
    if out.is_null() {
        return msc_status::MSC_ERR_NULL_ARGUMENT;
    }
    let Some(builder) = config.apply(SessionRegistry::builder()).and_then(more) else {
        return msc_status::MSC_ERR_INVALID_CONFIG;
    };
    match builder.build() {
        Ok(inner) => {
            let registry = Box::into_raw(Box::new(msc_registry { inner }));
            // SAFETY: non-NULL and writable by the caller's contract.
            unsafe { out.write(registry) };
            msc_status::MSC_OK
        }
        Err(_) => msc_status::MSC_ERR_INVALID_CONFIG,
    }
}

/// Frees a registry made by `msc_registry_new`. Sessions still open are
/// closed and events still queued are discarded, unreported: call
/// `msc_registry_shutdown` and drain first to hear of every session (and
/// free each tag). NULL is a no-op.
///
/// **Not thread-safe**, unlike every other function: no other call on this
/// registry may run, on any thread, during or after this one.
///
/// # Safety
///
/// `registry` is NULL or a pointer from `msc_registry_new` not yet freed.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn msc_registry_free(registry: *mut msc_registry) {
    ffi_boundary(|| {
        if !registry.is_null() {
            // SAFETY: made by Box::into_raw in msc_registry_new and, by the
            // caller's contract, freed only once.
            drop(unsafe { Box::from_raw(registry) });
        }
    })
}

/// Shuts the registry down: from now on every create fails with
/// `MSC_ERR_SHUT_DOWN`, and open sessions are closed with reason
/// `MSC_CLOSE_SHUTDOWN` into the close-event queue. So that no event is
/// dropped, one call closes at most as many sessions as the queue has free
/// room; it stores how many sessions are still open in `*out_remaining`
/// (if not NULL). Drain (`msc_registry_drain_closed`) and call again until
/// that is 0; then every session the host ever created has been reported
/// exactly once, and `msc_registry_free` loses nothing. Idempotent;
/// thread-safe (lookups keep answering, `MSC_ERR_NOT_FOUND` for the closed
/// sessions).
///
/// Returns `MSC_OK`, or `MSC_ERR_NULL_ARGUMENT` if `registry` is NULL.
///
/// # Safety
///
/// `registry` is NULL or live; `out_remaining` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn msc_registry_shutdown(
    registry: *mut msc_registry,
    out_remaining: *mut usize,
) -> msc_status {
    ffi_boundary(|| {
        // SAFETY: forwarded caller contract.
        let Some(registry) = (unsafe { registry_ref(registry) }) else {
            return msc_status::MSC_ERR_NULL_ARGUMENT;
        };
        let remaining = registry.inner.shutdown();
        if !out_remaining.is_null() {
            // SAFETY: non-NULL and writable by the caller's contract.
            unsafe { out_remaining.write(remaining) };
        }
        msc_status::MSC_OK
    })
}

/// Borrows the registry behind a C pointer; `None` for NULL.
///
/// # Safety
///
/// `registry` is NULL or a live pointer from `msc_registry_new`.
pub(crate) unsafe fn registry_ref<'a>(registry: *const msc_registry) -> Option<&'a msc_registry> {
    // SAFETY: by the caller's contract, non-NULL means live.
    unsafe { registry.as_ref() }
}

/// The number of open sessions (never above `max_sessions`); 0 for NULL.
///
/// # Safety
///
/// `registry` is NULL or a live pointer from `msc_registry_new`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn msc_registry_len(registry: *const msc_registry) -> usize {
    ffi_boundary(|| {
        // SAFETY: forwarded caller contract.
        unsafe { registry_ref(registry) }.map_or(0, |r| r.inner.len())
    })
}

/// Closes every session whose idle timeout, max lifetime or init deadline
/// has passed (each queued as a close event with its reason) and stores how
/// many in `*out_count`, if `out_count` is not NULL. Expired sessions that a
/// lookup, confirm, close or create met first were already closed there and
/// are not counted again. Timeouts never fire early; with the default
/// (coarse, kernel-tick) clock they may fire a few milliseconds late.
///
/// Returns `MSC_OK`, or `MSC_ERR_NULL_ARGUMENT` if `registry` is NULL.
///
/// # Safety
///
/// `registry` is NULL or live; `out_count` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn msc_registry_purge_expired(
    registry: *mut msc_registry,
    out_count: *mut usize,
) -> msc_status {
    ffi_boundary(|| {
        // SAFETY: forwarded caller contract.
        let Some(registry) = (unsafe { registry_ref(registry) }) else {
            return msc_status::MSC_ERR_NULL_ARGUMENT;
        };
        let count = registry.inner.purge_expired();
        if !out_count.is_null() {
            // SAFETY: non-NULL and writable by the caller's contract.
            unsafe { out_count.write(count) };
        }
        msc_status::MSC_OK
    })
}

/// Moves up to `capacity` close events, oldest first, into `out[0..n]` and
/// returns `n`. Returns 0 (and takes no event) if `registry` or `out` is
/// NULL or `capacity` is 0. Call it until it returns less than `capacity`
/// to empty the queue; events not drained stay queued.
///
/// # Safety
///
/// `registry` is NULL or live; `out` is NULL or writable for `capacity`
/// events.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn msc_registry_drain_closed(
    registry: *mut msc_registry,
    out: *mut msc_closed_event,
    capacity: usize,
) -> usize {
    ffi_boundary(|| {
        // SAFETY: forwarded caller contract.
        let Some(registry) = (unsafe { registry_ref(registry) }) else {
            return 0;
        };
        if out.is_null() {
            return 0;
        }
        let mut written = 0;
        while written < capacity {
            let Some(closed) = registry.inner.pop_closed() else {
                break;
            };
            let mut event = msc_closed_event {
                id: [0; MSC_SESSION_ID_LEN + 1],
                tag: *closed.session,
                reason: closed.reason.into(),
            };
            // SAFETY: `event.id` is a local buffer of exactly 37 bytes.
            unsafe { write_id(closed.session.id(), event.id.as_mut_ptr()) };
            // SAFETY: `written < capacity` and `out` is writable for
            // `capacity` events by the caller's contract.
            unsafe { out.add(written).write(event) };
            written += 1;
        }
        written
    })
}

/// Stores a snapshot of the counters in `*out`.
///
/// Returns `MSC_OK`, or `MSC_ERR_NULL_ARGUMENT` if `registry` or `out` is
/// NULL (then nothing is written).
///
/// # Safety
///
/// `registry` is NULL or live; `out` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn msc_registry_stats(
    registry: *const msc_registry,
    out: *mut msc_stats,
) -> msc_status {
    ffi_boundary(|| {
        // SAFETY: forwarded caller contract.
        let Some(registry) = (unsafe { registry_ref(registry) }) else {
            return msc_status::MSC_ERR_NULL_ARGUMENT;
        };
        if out.is_null() {
            return msc_status::MSC_ERR_NULL_ARGUMENT;
        }
        let s = registry.inner.stats();
        let stats = msc_stats {
            live: s.live,
            max_sessions: s.max_sessions,
            created: s.created,
            closed: s.closed,
            evicted: s.evicted,
            expired: s.expired,
            rejected_full: s.rejected_full,
            rate_limited: s.rate_limited,
            events_dropped: s.events_dropped,
        };
        // SAFETY: non-NULL and writable by the caller's contract.
        unsafe { out.write(stats) };
        msc_status::MSC_OK
    })
}
