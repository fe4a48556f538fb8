//! Creating, validating, confirming and closing sessions.

use std::ffi::c_char;

use super::panic::ffi_boundary;
use super::registry::{MSC_SESSION_ID_LEN, msc_registry, registry_ref};
use super::status::msc_status;
use super::util::{read_id, read_principal, read_principal_bytes, write_id};
use crate::{CreateError, LookupError, SessionId, SessionRegistry};

/// Creates a session holding `tag`, bound to `principal` if it is not NULL
/// (then only `msc_session_get` calls presenting the same principal find
/// it), and writes its id, NUL-terminated, to `out_id`.
///
/// Checks the rate limit, then capacity: at capacity the oldest session is
/// evicted (its close event is queued) or, with `evict_oldest = 0`, the
/// create fails. The session starts pending; see `msc_session_confirm`.
///
/// Returns `MSC_OK`; `MSC_ERR_NULL_ARGUMENT` if `registry` or `out_id` is
/// NULL; `MSC_ERR_AT_CAPACITY` (HTTP 503); `MSC_ERR_RATE_LIMITED` (HTTP
/// 429); `MSC_ERR_INTERNAL` if the OS random generator fails. `out_id` is
/// written only on `MSC_OK`.
///
/// # Safety
///
/// `registry` is NULL or live; `principal` is NULL or a NUL-terminated
/// string; `out_id` is NULL or writable for `MSC_SESSION_ID_LEN + 1` bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn msc_session_create(
    registry: *mut msc_registry,
    tag: u64,
    principal: *const c_char,
    out_id: *mut c_char,
) -> msc_status {
    ffi_boundary(|| {
        // SAFETY: forwarded caller contract.
        let Some(registry) = (unsafe { registry_ref(registry) }) else {
            return msc_status::MSC_ERR_NULL_ARGUMENT;
        };
        if out_id.is_null() {
            return msc_status::MSC_ERR_NULL_ARGUMENT;
        }
        // SAFETY: NULL or NUL-terminated by the caller's contract.
        let principal = unsafe { read_principal(principal) };
        match registry.inner.create_with(principal, |_| tag) {
            Ok(session) => {
                // SAFETY: non-NULL, writable for 37 bytes by contract.
                unsafe { write_id(session.id(), out_id) };
                msc_status::MSC_OK
            }
            Err(err) => msc_status::from(&err),
        }
    })
}

/// `msc_session_create` for hosts with binary principals and sized
/// buffers: the principal is `principal_len` bytes at `principal` (NULL
/// with length 0 = unbound; non-NULL with length 0 = the empty principal),
/// the id goes to `out_id`, a buffer of `out_id_len` bytes, and when a create
/// is refused `*out_retry_after_ms` (if not NULL) gets the time after which
/// a retry can succeed, for a `Retry-After` header.
///
/// Returns as `msc_session_create`, and also `MSC_ERR_NULL_ARGUMENT` for a
/// NULL `principal` with a non-zero length and `MSC_ERR_BUFFER_TOO_SMALL`
/// if `out_id_len < MSC_SESSION_ID_LEN + 1` (checked before anything is
/// created). `out_id` is written only on `MSC_OK`; `*out_retry_after_ms`
/// only on `MSC_ERR_RATE_LIMITED` and `MSC_ERR_PRINCIPAL_RATE_LIMITED` (the
/// wait until the limiter grants again, never short), `MSC_ERR_AT_CAPACITY`
/// and `MSC_ERR_PRINCIPAL_FULL` (1000).
///
/// # Safety
///
/// `registry` is NULL or live; `principal` is NULL or readable for
/// `principal_len` bytes; `out_id` is NULL or writable for `out_id_len`
/// bytes; `out_retry_after_ms` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn msc_session_create_ex(
    registry: *mut msc_registry,
    tag: u64,
    principal: *const u8,
    principal_len: usize,
    out_id: *mut c_char,
    out_id_len: usize,
    out_retry_after_ms: *mut u64,
) -> msc_status {
    ffi_boundary(|| {
        // SAFETY: forwarded caller contract.
        let Some(registry) = (unsafe { registry_ref(registry) }) else {
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
        match registry.inner.create_with(principal, |_| tag) {
            Ok(session) => {
                // SAFETY: non-NULL and at least 37 bytes, checked above.
                unsafe { write_id(session.id(), out_id) };
                msc_status::MSC_OK
            }
            Err(err) => {
                let retry_ms = match &err {
                    CreateError::RateLimited { retry_after }
                    | CreateError::PrincipalFull { retry_after }
                    | CreateError::PrincipalRateLimited { retry_after } => {
                        Some(u64::try_from(retry_after.as_millis()).unwrap_or(u64::MAX))
                    }
                    CreateError::AtCapacity | CreateError::IdCollision => Some(1_000),
                    _ => None,
                };
                if let (Some(ms), false) = (retry_ms, out_retry_after_ms.is_null()) {
                    // SAFETY: non-NULL and writable by the caller's contract.
                    unsafe { out_retry_after_ms.write(ms) };
                }
                msc_status::from(&err)
            }
        }
    })
}

/// Validates a request's session: looks up `id` (the `Mcp-Session-Id`
/// header value) for a caller presenting `principal` (NULL = none),
/// refreshes its activity and stores its tag in `*out_tag` if `out_tag` is
/// not NULL. Lock-free and allocation-free, except that a session found
/// expired is closed here (a bucket lock is taken to unlink it) and its close
/// event, with its expiry reason, is queued: `msc_registry_purge_expired`
/// will not count it again.
///
/// Returns `MSC_OK`; `MSC_ERR_NULL_ARGUMENT` if `registry` or `id` is NULL;
/// `MSC_ERR_MALFORMED_ID` (HTTP 400) if `id` is not a canonical session id
/// (at most 37 bytes of it are read); `MSC_ERR_NOT_FOUND` (HTTP 404) if it
/// is unknown, closed, evicted, expired or bound to another principal.
///
/// # Safety
///
/// `registry` is NULL or live; `id` is NULL or NUL-terminated (or readable
/// for 37 bytes); `principal` is NULL or NUL-terminated; `out_tag` is NULL or
/// writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn msc_session_get(
    registry: *mut msc_registry,
    id: *const c_char,
    principal: *const c_char,
    out_tag: *mut u64,
) -> msc_status {
    ffi_boundary(|| {
        // SAFETY: forwarded caller contract.
        let principal = unsafe { read_principal(principal) };
        // SAFETY: forwarded caller contract.
        unsafe { get(registry, id, principal, out_tag) }
    })
}

/// `msc_session_get` with a binary principal of `principal_len` bytes
/// (NULL with length 0 = none). Returns as `msc_session_get`, and
/// `MSC_ERR_NULL_ARGUMENT` for a NULL `principal` with a non-zero length.
///
/// # Safety
///
/// As `msc_session_get`; `principal` is NULL or readable for
/// `principal_len` bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn msc_session_get_ex(
    registry: *mut msc_registry,
    id: *const c_char,
    principal: *const u8,
    principal_len: usize,
    out_tag: *mut u64,
) -> msc_status {
    ffi_boundary(|| {
        // SAFETY: forwarded caller contract.
        let principal = match unsafe { read_principal_bytes(principal, principal_len) } {
            Ok(principal) => principal,
            Err(status) => return status,
        };
        // SAFETY: forwarded caller contract.
        unsafe { get(registry, id, principal, out_tag) }
    })
}

/// # Safety
///
/// As `msc_session_get`.
unsafe fn get(
    registry: *mut msc_registry,
    id: *const c_char,
    principal: Option<&[u8]>,
    out_tag: *mut u64,
) -> msc_status {
    // SAFETY: forwarded caller contract.
    unsafe {
        tag_call(registry, id, out_tag, |registry, id| {
            registry.with_session(id, principal, |tag| *tag)
        })
    }
}

/// The shape of `get` and `take`: the registry and id arguments checked,
/// then `op`, whose tag goes to `*out_tag` (if not NULL) on success.
///
/// # Safety
///
/// `registry` is NULL or live; `id` is NULL or NUL-terminated (or readable
/// for 37 bytes); `out_tag` is NULL or writable.
unsafe fn tag_call(
    registry: *mut msc_registry,
    id: *const c_char,
    out_tag: *mut u64,
    op: impl FnOnce(&SessionRegistry<u64>, &SessionId) -> Result<u64, LookupError>,
) -> msc_status {
    // SAFETY: forwarded caller contract.
    let (registry, id) = match unsafe { registry_and_id(registry, id) } {
        Ok(args) => args,
        Err(status) => return status,
    };
    match op(&registry.inner, &id) {
        // SAFETY: forwarded caller contract (NULL or writable).
        Ok(tag) => unsafe { write_optional(out_tag, tag) },
        Err(err) => err.into(),
    }
}

/// Takes the session `id` for single use: closes it (reason
/// `MSC_CLOSE_REDEEMED`, queued like every close) and stores its tag in
/// `*out_tag` (if not NULL), for exactly one caller among concurrent takers,
/// closes, evictions and expiries. For one-time tokens: nonces, redeemable
/// handles. `principal` is checked as by `msc_session_get` (NULL = none).
///
/// Returns `MSC_OK`; `MSC_ERR_NULL_ARGUMENT` if `registry` or `id` is NULL;
/// `MSC_ERR_MALFORMED_ID`; `MSC_ERR_NOT_FOUND` if no open session with this
/// id is visible to `principal` or another caller took or closed it first
/// (an expired session is closed with its expiry reason). `*out_tag` is
/// written only on `MSC_OK`. The tag is still reported by
/// `msc_registry_drain_closed` (as every closed session's is).
///
/// # Safety
///
/// `registry` is NULL or live; `id` is NULL or NUL-terminated (or readable
/// for 37 bytes); `principal` is NULL or NUL-terminated; `out_tag` is NULL
/// or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn msc_session_take(
    registry: *mut msc_registry,
    id: *const c_char,
    principal: *const c_char,
    out_tag: *mut u64,
) -> msc_status {
    ffi_boundary(|| {
        // SAFETY: forwarded caller contract.
        let principal = unsafe { read_principal(principal) };
        // SAFETY: forwarded caller contract.
        unsafe { take(registry, id, principal, out_tag) }
    })
}

/// `msc_session_take` with a binary principal of `principal_len` bytes
/// (NULL with length 0 = none). Returns as `msc_session_take`, and
/// `MSC_ERR_NULL_ARGUMENT` for a NULL `principal` with a non-zero length.
///
/// # Safety
///
/// As `msc_session_take`; `principal` is NULL or readable for
/// `principal_len` bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn msc_session_take_ex(
    registry: *mut msc_registry,
    id: *const c_char,
    principal: *const u8,
    principal_len: usize,
    out_tag: *mut u64,
) -> msc_status {
    ffi_boundary(|| {
        // SAFETY: forwarded caller contract.
        let principal = match unsafe { read_principal_bytes(principal, principal_len) } {
            Ok(principal) => principal,
            Err(status) => return status,
        };
        // SAFETY: forwarded caller contract.
        unsafe { take(registry, id, principal, out_tag) }
    })
}

/// # Safety
///
/// As `msc_session_take`.
unsafe fn take(
    registry: *mut msc_registry,
    id: *const c_char,
    principal: Option<&[u8]>,
    out_tag: *mut u64,
) -> msc_status {
    // SAFETY: forwarded caller contract.
    unsafe {
        tag_call(registry, id, out_tag, |registry, id| {
            registry.take(id, principal).map(|session| *session)
        })
    }
}

/// The registry and the parsed id of a call that takes both.
///
/// # Errors
///
/// `MSC_ERR_NULL_ARGUMENT` if either pointer is NULL; `MSC_ERR_MALFORMED_ID`
/// if the id is not a canonical session id.
///
/// # Safety
///
/// `registry` is NULL or live; `id` is NULL or NUL-terminated (or readable
/// for 37 bytes).
unsafe fn registry_and_id<'a>(
    registry: *const msc_registry,
    id: *const c_char,
) -> Result<(&'a msc_registry, SessionId), msc_status> {
    // SAFETY: forwarded caller contract.
    let registry = unsafe { registry_ref(registry) }.ok_or(msc_status::MSC_ERR_NULL_ARGUMENT)?;
    if id.is_null() {
        return Err(msc_status::MSC_ERR_NULL_ARGUMENT);
    }
    // SAFETY: non-NULL, and NUL-terminated or 37 readable bytes by contract.
    let id = unsafe { read_id(id) }?;
    Ok((registry, id))
}

/// Writes `value` to `out` unless `out` is NULL; returns `MSC_OK`.
///
/// # Safety
///
/// `out` is NULL or writable.
unsafe fn write_optional(out: *mut u64, value: u64) -> msc_status {
    if !out.is_null() {
        // SAFETY: non-NULL and writable by the caller's contract.
        unsafe { out.write(value) };
    }
    msc_status::MSC_OK
}

/// Confirms a pending session once its `initialize` handshake completed, so
/// the init timeout no longer applies. Idempotent. A session found expired
/// is closed here, as by `msc_session_get`.
///
/// Returns `MSC_OK`; `MSC_ERR_NULL_ARGUMENT` if `registry` or `id` is NULL;
/// `MSC_ERR_MALFORMED_ID`; `MSC_ERR_NOT_FOUND` if the session is not open.
///
/// # Safety
///
/// `registry` is NULL or live; `id` is NULL or NUL-terminated.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn msc_session_confirm(
    registry: *mut msc_registry,
    id: *const c_char,
) -> msc_status {
    ffi_boundary(|| {
        // SAFETY: forwarded caller contract.
        match unsafe { registry_and_id(registry, id) } {
            Ok((registry, id)) => match registry.inner.confirm(&id) {
                Ok(()) => msc_status::MSC_OK,
                Err(err) => err.into(),
            },
            Err(status) => status,
        }
    })
}

/// Closes the session `id` (e.g. on HTTP `DELETE`): a close event with
/// reason `MSC_CLOSE_CLOSED` is queued, and its tag is stored in
/// `*out_tag` if `out_tag` is not NULL. The principal is not checked:
/// validate the caller with `msc_session_get` first.
///
/// Returns `MSC_OK`; `MSC_ERR_NULL_ARGUMENT` if `registry` or `id` is NULL;
/// `MSC_ERR_MALFORMED_ID`; `MSC_ERR_NOT_FOUND` if it was not open (a second
/// close of one session returns this) or had already expired (it is then
/// closed with its expiry reason, and `out_tag` is not written).
///
/// # Safety
///
/// `registry` is NULL or live; `id` is NULL or NUL-terminated; `out_tag` is
/// NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn msc_session_close(
    registry: *mut msc_registry,
    id: *const c_char,
    out_tag: *mut u64,
) -> msc_status {
    ffi_boundary(|| {
        // SAFETY: forwarded caller contract.
        let (registry, id) = match unsafe { registry_and_id(registry, id) } {
            Ok(args) => args,
            Err(status) => return status,
        };
        match registry.inner.close(&id) {
            // SAFETY: forwarded caller contract (NULL or writable).
            Some(session) => unsafe { write_optional(out_tag, *session) },
            None => msc_status::MSC_ERR_NOT_FOUND,
        }
    })
}
