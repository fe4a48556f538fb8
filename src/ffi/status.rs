//! Status codes, close reasons and their names.

use std::ffi::{c_char, c_int};

use super::panic::ffi_boundary;
use crate::{CloseReason, CreateError, LookupError};

/// The result of every fallible `msc_*` call. The numbers are stable: new
/// codes are only ever appended.
///
/// cbindgen:prefix-with-name=false
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum msc_status {
    /// Success.
    MSC_OK = 0,
    /// A required pointer argument was NULL.
    MSC_ERR_NULL_ARGUMENT = 1,
    /// The configuration cannot work (e.g. `max_sessions == 0`, a rate
    /// limit with a zero window, `evict_oldest` not 0 or 1).
    MSC_ERR_INVALID_CONFIG = 2,
    /// At capacity and the policy is reject (HTTP 503 with `Retry-After`).
    MSC_ERR_AT_CAPACITY = 3,
    /// The creation rate limit is exhausted (HTTP 429 with `Retry-After`).
    MSC_ERR_RATE_LIMITED = 4,
    /// No open session with this id is visible to the caller: unknown,
    /// closed, evicted, expired or another principal's (HTTP 404).
    MSC_ERR_NOT_FOUND = 5,
    /// The id is not a canonical session id (HTTP 400).
    MSC_ERR_MALFORMED_ID = 6,
    /// The output buffer is too small (an id needs `MSC_SESSION_ID_LEN + 1`
    /// bytes).
    MSC_ERR_BUFFER_TOO_SMALL = 7,
    /// An internal failure: a caught panic, or no OS randomness for ids.
    MSC_ERR_INTERNAL = 8,
    /// The registry is shut down (`msc_registry_shutdown`): it creates no
    /// more sessions (HTTP 503).
    MSC_ERR_SHUT_DOWN = 9,
    /// The principal (or the anonymous class) holds its cap of open
    /// sessions and the policy is reject (HTTP 429 with `Retry-After`).
    MSC_ERR_PRINCIPAL_FULL = 10,
    /// The principal's creation rate limit is exhausted (HTTP 429 with
    /// `Retry-After`).
    MSC_ERR_PRINCIPAL_RATE_LIMITED = 11,
    /// Fleet mode (`msc_fleet_*`): Redis is unreachable, restarting or did
    /// not answer within the call timeout (HTTP 503 with `Retry-After`,
    /// given in `*out_retry_after_ms`). A create that failed so may have
    /// happened; the library reclaims it.
    MSC_ERR_STORE_UNAVAILABLE = 12,
}

/// Why a session was closed (see `msc_registry_drain_closed`). Stable
/// numbers.
///
/// cbindgen:prefix-with-name=false
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum msc_close_reason {
    /// Closed by `msc_session_close`.
    MSC_CLOSE_CLOSED = 0,
    /// Evicted (FIFO) to make room for a new session.
    MSC_CLOSE_EVICTED = 1,
    /// Idle for `idle_timeout_ms`.
    MSC_CLOSE_IDLE_TIMEOUT = 2,
    /// Older than `max_lifetime_ms`.
    MSC_CLOSE_MAX_LIFETIME = 3,
    /// Not confirmed within `init_timeout_ms`.
    MSC_CLOSE_INIT_TIMEOUT = 4,
    /// Closed by `msc_registry_shutdown`.
    MSC_CLOSE_SHUTDOWN = 5,
    /// Taken for single use by `msc_session_take`.
    MSC_CLOSE_REDEEMED = 6,
}

impl From<CloseReason> for msc_close_reason {
    fn from(reason: CloseReason) -> Self {
        match reason {
            CloseReason::Closed => Self::MSC_CLOSE_CLOSED,
            CloseReason::Evicted => Self::MSC_CLOSE_EVICTED,
            CloseReason::IdleTimeout => Self::MSC_CLOSE_IDLE_TIMEOUT,
            CloseReason::MaxLifetime => Self::MSC_CLOSE_MAX_LIFETIME,
            CloseReason::InitTimeout => Self::MSC_CLOSE_INIT_TIMEOUT,
            CloseReason::Shutdown => Self::MSC_CLOSE_SHUTDOWN,
            CloseReason::Redeemed => Self::MSC_CLOSE_REDEEMED,
        }
    }
}

impl From<&CreateError> for msc_status {
    fn from(err: &CreateError) -> Self {
        match err {
            CreateError::AtCapacity | CreateError::IdCollision => Self::MSC_ERR_AT_CAPACITY,
            CreateError::RateLimited { .. } => Self::MSC_ERR_RATE_LIMITED,
            CreateError::ShutDown => Self::MSC_ERR_SHUT_DOWN,
            CreateError::PrincipalFull { .. } => Self::MSC_ERR_PRINCIPAL_FULL,
            CreateError::PrincipalRateLimited { .. } => Self::MSC_ERR_PRINCIPAL_RATE_LIMITED,
            _ => Self::MSC_ERR_INTERNAL,
        }
    }
}

impl From<LookupError> for msc_status {
    fn from(err: LookupError) -> Self {
        match err {
            LookupError::MalformedId(_) => Self::MSC_ERR_MALFORMED_ID,
            LookupError::NotFound => Self::MSC_ERR_NOT_FOUND,
        }
    }
}

/// A static, NUL-terminated English description of `status` (e.g.
/// `"session not found"`); `"unknown status"` for a value that is not an
/// `msc_status`. The string is never freed.
///
/// `status` is an `int` rather than `msc_status` so that any integer a host
/// passes is well-defined here.
#[unsafe(no_mangle)]
pub extern "C" fn msc_status_str(status: c_int) -> *const c_char {
    ffi_boundary(|| status_text(status).as_ptr().cast())
}

fn status_text(status: c_int) -> &'static [u8] {
    match status {
        0 => b"ok\0",
        1 => b"a required pointer argument was NULL\0",
        2 => b"invalid configuration\0",
        3 => b"session capacity reached\0",
        4 => b"session creation rate limit reached\0",
        5 => b"session not found\0",
        6 => b"malformed session id\0",
        7 => b"output buffer too small\0",
        8 => b"internal error\0",
        9 => b"the registry is shut down\0",
        10 => b"this principal's session limit reached\0",
        11 => b"this principal's session creation rate limit reached\0",
        12 => b"the session store (Redis) is unavailable\0",
        _ => b"unknown status\0",
    }
}

/// The library version, a static NUL-terminated string such as `"0.1.0"`.
#[unsafe(no_mangle)]
pub extern "C" fn msc_version() -> *const c_char {
    ffi_boundary(|| concat!(env!("CARGO_PKG_VERSION"), "\0").as_ptr().cast())
}
