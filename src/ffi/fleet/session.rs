//! Fleet sessions: create, get, confirm, close, take.

use std::ffi::c_char;

use super::error::finish;
use super::handle::{fleet_ref, msc_fleet};
use crate::SessionId;
use crate::ffi::panic::ffi_boundary;
use crate::ffi::registry::MSC_SESSION_ID_LEN;
use crate::ffi::status::msc_status;
use crate::ffi::util::{read_id, read_principal_bytes, write_id};
use crate::integrations::redis::{RedisRegistry, StoreError};

/// Creates a session in the fleet, bound to the principal of
/// `principal_len` bytes at `principal` (NULL with length 0 = unbound,
/// found by any caller, and counted in the anonymous class; non-NULL with
/// length 0 = the empty principal), and writes its id, NUL-terminated, to
/// `out_id` (a buffer of `out_id_len` bytes). One atomic script on Redis:
/// removes a bounded batch of expired sessions, checks the principal's
/// rate limit (`msc_fleet_options_set_rate_limit_per_principal`), then the
/// fleet's rate limit, then the principal's cap
/// (`msc_fleet_options_set_max_sessions_per_principal`; at it, evict closes
/// that principal's own oldest session, reject fails), then the exact
/// global bound (at capacity it evicts the globally oldest session or,
/// under reject, fails). Evicted sessions' close events are drained by
/// every handle. The session starts pending: confirm it after its
/// `initialize` handshake (`msc_fleet_session_confirm`).
///
/// Returns `MSC_OK`; `MSC_ERR_NULL_ARGUMENT` if `fleet` or `out_id` is
/// NULL, or `principal` is NULL with a non-zero length;
/// `MSC_ERR_BUFFER_TOO_SMALL` if `out_id_len < MSC_SESSION_ID_LEN + 1`
/// (checked first); `MSC_ERR_PRINCIPAL_RATE_LIMITED` (HTTP 429);
/// `MSC_ERR_RATE_LIMITED` (HTTP 429); `MSC_ERR_PRINCIPAL_FULL` (HTTP 429);
/// `MSC_ERR_AT_CAPACITY` (HTTP 503); `MSC_ERR_STORE_UNAVAILABLE` (HTTP
/// 503: Redis unreachable or too slow; a create that may have happened is
/// reclaimed in the background); `MSC_ERR_INTERNAL` without OS randomness.
/// `out_id` is written only on `MSC_OK`; `*out_retry_after_ms` (if not
/// NULL) only with `MSC_ERR_RATE_LIMITED` and
/// `MSC_ERR_PRINCIPAL_RATE_LIMITED` (the wait until that limiter grants
/// again, to the millisecond), `MSC_ERR_PRINCIPAL_FULL`,
/// `MSC_ERR_AT_CAPACITY` and `MSC_ERR_STORE_UNAVAILABLE` (1000), for a
/// `Retry-After` header (round up to whole seconds).
///
/// Feature `redis` (see `msc_features`).
///
/// # Safety
///
/// `fleet` is NULL or live; `principal` is NULL or readable for
/// `principal_len` bytes; `out_id` is NULL or writable for `out_id_len`
/// bytes; `out_retry_after_ms` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn msc_fleet_session_create(
    fleet: *mut msc_fleet,
    principal: *const u8,
    principal_len: usize,
    out_id: *mut c_char,
    out_id_len: usize,
    out_retry_after_ms: *mut u64,
) -> msc_status {
    ffi_boundary(|| {
        // SAFETY: forwarded caller contract.
        let Some(fleet) = (unsafe { fleet_ref(fleet) }) else {
            return msc_status::MSC_ERR_NULL_ARGUMENT;
        };
        if out_id.is_null() {
            return msc_status::MSC_ERR_NULL_ARGUMENT;
        }
        if out_id_len < MSC_SESSION_ID_LEN + 1 {
            return msc_status::MSC_ERR_BUFFER_TOO_SMALL;
        }
        // SAFETY: forwarded caller contract.
        let principal = match unsafe { read_principal_bytes(principal, principal_len) } {
            Ok(principal) => principal,
            Err(status) => return status,
        };
        let result = fleet.block_on(fleet.registry().create(principal));
        // SAFETY: forwarded caller contract.
        match unsafe { finish(result, out_retry_after_ms) } {
            Ok(created) => {
                // SAFETY: non-NULL and at least 37 bytes, checked above.
                unsafe { write_id(created.id, out_id) };
                msc_status::MSC_OK
            }
            Err(status) => status,
        }
    })
}

/// The shape of every call on one session: the handle and id checked, then
/// `op`, its error mapped (with its wait to `*out_retry_after_ms`).
///
/// # Safety
///
/// `fleet` is NULL or live; `id` is NULL or NUL-terminated (or readable
/// for 37 bytes); `out_retry_after_ms` is NULL or writable.
unsafe fn on_session<F>(
    fleet: *mut msc_fleet,
    id: *const c_char,
    out_retry_after_ms: *mut u64,
    op: impl FnOnce(RedisRegistry, SessionId) -> F,
) -> msc_status
where
    F: std::future::Future<Output = Result<(), StoreError>>,
{
    // SAFETY: forwarded caller contract.
    let Some(fleet) = (unsafe { fleet_ref(fleet) }) else {
        return msc_status::MSC_ERR_NULL_ARGUMENT;
    };
    if id.is_null() {
        return msc_status::MSC_ERR_NULL_ARGUMENT;
    }
    // SAFETY: non-NULL, NUL-terminated or 37 readable bytes by contract.
    let id = match unsafe { read_id(id) } {
        Ok(id) => id,
        Err(status) => return status,
    };
    let result = fleet.block_on(op(fleet.registry().clone(), id));
    // SAFETY: forwarded caller contract.
    match unsafe { finish(result, out_retry_after_ms) } {
        Ok(()) => msc_status::MSC_OK,
        Err(status) => status,
    }
}

/// Validates a request's session anywhere in the fleet: finds `id` (the
/// `Mcp-Session-Id` header value) for a caller presenting the principal of
/// `principal_len` bytes at `principal` (NULL with length 0 = none) and
/// refreshes its idle deadline, in one round trip. A session found expired
/// is closed here with its expiry reason.
///
/// Returns `MSC_OK`; `MSC_ERR_NULL_ARGUMENT` if `fleet` or `id` is NULL, or
/// `principal` is NULL with a non-zero length; `MSC_ERR_MALFORMED_ID`
/// (HTTP 400, no round trip); `MSC_ERR_NOT_FOUND` (HTTP 404) if it is
/// unknown, closed, evicted, expired, taken or bound to another principal;
/// `MSC_ERR_STORE_UNAVAILABLE` (HTTP 503, with `*out_retry_after_ms` if
/// not NULL).
///
/// Feature `redis` (see `msc_features`).
///
/// # Safety
///
/// `fleet` is NULL or live; `id` is NULL or NUL-terminated (or readable for
/// 37 bytes); `principal` is NULL or readable for `principal_len` bytes;
/// `out_retry_after_ms` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn msc_fleet_session_get(
    fleet: *mut msc_fleet,
    id: *const c_char,
    principal: *const u8,
    principal_len: usize,
    out_retry_after_ms: *mut u64,
) -> msc_status {
    ffi_boundary(|| {
        // SAFETY: forwarded caller contract.
        let principal = match unsafe { read_principal_bytes(principal, principal_len) } {
            Ok(principal) => principal,
            Err(status) => return status,
        };
        // SAFETY: forwarded caller contract.
        unsafe {
            on_session(fleet, id, out_retry_after_ms, |r, id| async move {
                r.lookup(&id, principal).await
            })
        }
    })
}

/// Takes the session `id` for single use: if it is open and visible to the
/// principal (as for `msc_fleet_session_get`), closes it with reason
/// `MSC_CLOSE_REDEEMED` (its slot freed, its event drained by every
/// handle), for exactly one caller across the fleet among concurrent
/// takers, closes, evictions and expiries. For one-time tokens: nonces,
/// redeemable handles.
///
/// Returns as `msc_fleet_session_get`; `MSC_ERR_NOT_FOUND` also if another
/// caller took or closed it first. A take is not repeated after a dropped
/// connection: `MSC_ERR_STORE_UNAVAILABLE` means it may or may not have
/// been taken (never twice).
///
/// Feature `redis` (see `msc_features`).
///
/// # Safety
///
/// As `msc_fleet_session_get`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn msc_fleet_session_take(
    fleet: *mut msc_fleet,
    id: *const c_char,
    principal: *const u8,
    principal_len: usize,
    out_retry_after_ms: *mut u64,
) -> msc_status {
    ffi_boundary(|| {
        // SAFETY: forwarded caller contract.
        let principal = match unsafe { read_principal_bytes(principal, principal_len) } {
            Ok(principal) => principal,
            Err(status) => return status,
        };
        // SAFETY: forwarded caller contract.
        unsafe {
            on_session(fleet, id, out_retry_after_ms, |r, id| async move {
                r.take(&id, principal).await
            })
        }
    })
}

/// Confirms a pending session once its `initialize` handshake completed:
/// its init deadline no longer applies. Idempotent.
///
/// Returns `MSC_OK`; `MSC_ERR_NULL_ARGUMENT` if `fleet` or `id` is NULL;
/// `MSC_ERR_MALFORMED_ID`; `MSC_ERR_NOT_FOUND` if it is not open;
/// `MSC_ERR_STORE_UNAVAILABLE` (with `*out_retry_after_ms` if not NULL).
///
/// Feature `redis` (see `msc_features`).
///
/// # Safety
///
/// `fleet` is NULL or live; `id` is NULL or NUL-terminated (or readable for
/// 37 bytes); `out_retry_after_ms` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn msc_fleet_session_confirm(
    fleet: *mut msc_fleet,
    id: *const c_char,
    out_retry_after_ms: *mut u64,
) -> msc_status {
    ffi_boundary(|| {
        // SAFETY: forwarded caller contract.
        unsafe {
            on_session(fleet, id, out_retry_after_ms, |r, id| async move {
                r.confirm(&id).await
            })
        }
    })
}

/// Closes the session `id` (e.g. on HTTP `DELETE`) with reason
/// `MSC_CLOSE_CLOSED`; its event reaches every handle. The principal is not
/// checked: validate the caller with `msc_fleet_session_get` first.
///
/// Returns `MSC_OK`; `MSC_ERR_NULL_ARGUMENT` if `fleet` or `id` is NULL;
/// `MSC_ERR_MALFORMED_ID`; `MSC_ERR_NOT_FOUND` if it was not open (a
/// second close returns this; an expired one is closed with its expiry
/// reason and returns this too); `MSC_ERR_STORE_UNAVAILABLE` (with
/// `*out_retry_after_ms` if not NULL).
///
/// Feature `redis` (see `msc_features`).
///
/// # Safety
///
/// `fleet` is NULL or live; `id` is NULL or NUL-terminated (or readable for
/// 37 bytes); `out_retry_after_ms` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn msc_fleet_session_close(
    fleet: *mut msc_fleet,
    id: *const c_char,
    out_retry_after_ms: *mut u64,
) -> msc_status {
    ffi_boundary(|| {
        // SAFETY: forwarded caller contract.
        unsafe {
            on_session(fleet, id, out_retry_after_ms, |r, id| async move {
                match r.close(&id).await? {
                    true => Ok(()),
                    false => Err(crate::LookupError::NotFound.into()),
                }
            })
        }
    })
}
