//! A fleet call's error as a status code and its `Retry-After`.

use crate::CreateError;
use crate::ffi::status::msc_status;
use crate::integrations::redis::{RedisBuildError, StoreError};

/// The `Retry-After` of `MSC_ERR_STORE_UNAVAILABLE` and
/// `MSC_ERR_AT_CAPACITY` (ms), as the Rust API's HTTP mapping gives it.
/// The refusals that carry their own wait (`RateLimited`, `PrincipalFull`,
/// `PrincipalRateLimited`) give it to the millisecond, as
/// `msc_session_create_ex` does.
const RETRY_AFTER_MS: u64 = 1_000;

/// The status for `error` and, where a retry can help, the wait in ms.
pub(super) fn status(error: &StoreError) -> (msc_status, Option<u64>) {
    match error {
        StoreError::Create(
            error @ (CreateError::RateLimited { retry_after }
            | CreateError::PrincipalFull { retry_after }
            | CreateError::PrincipalRateLimited { retry_after }),
        ) => (
            msc_status::from(error),
            Some(u64::try_from(retry_after.as_millis()).unwrap_or(u64::MAX)),
        ),
        StoreError::Create(error) => (
            msc_status::from(error),
            error.retry_after_secs().map(|s| s.saturating_mul(1_000)),
        ),
        StoreError::Lookup(error) => (msc_status::from(*error), None),
        StoreError::StoreUnavailable(_) => {
            (msc_status::MSC_ERR_STORE_UNAVAILABLE, Some(RETRY_AFTER_MS))
        }
        // Only metadata writes can be too large; the C API makes none.
        _ => (msc_status::MSC_ERR_INTERNAL, None),
    }
}

/// The status of a failed connect.
pub(super) fn connect_status(error: &RedisBuildError) -> msc_status {
    match error {
        RedisBuildError::Unavailable(_) => msc_status::MSC_ERR_STORE_UNAVAILABLE,
        _ => msc_status::MSC_ERR_INVALID_CONFIG,
    }
}

/// Maps `result` to a status, writing the wait to `*out_retry_after_ms`
/// (if not NULL) when the error has one.
///
/// # Safety
///
/// `out_retry_after_ms` is NULL or writable.
pub(super) unsafe fn finish<T>(
    result: Result<T, StoreError>,
    out_retry_after_ms: *mut u64,
) -> Result<T, msc_status> {
    result.map_err(|error| {
        let (status, retry) = status(&error);
        if let (Some(ms), false) = (retry, out_retry_after_ms.is_null()) {
            // SAFETY: non-NULL and writable by the caller's contract.
            unsafe { out_retry_after_ms.write(ms) };
        }
        status
    })
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::LookupError;

    #[test]
    fn statuses_and_retry_after() {
        let limited = StoreError::Create(CreateError::RateLimited {
            retry_after: Duration::from_millis(250),
        });
        assert_eq!(
            status(&limited),
            (msc_status::MSC_ERR_RATE_LIMITED, Some(250))
        );
        assert_eq!(
            status(&StoreError::Create(CreateError::AtCapacity)),
            (msc_status::MSC_ERR_AT_CAPACITY, Some(1_000))
        );
        // Per principal: the exact wait, not rounded up to whole seconds.
        let principal_limited = StoreError::Create(CreateError::PrincipalRateLimited {
            retry_after: Duration::from_millis(1_250),
        });
        assert_eq!(
            status(&principal_limited),
            (msc_status::MSC_ERR_PRINCIPAL_RATE_LIMITED, Some(1_250))
        );
        let principal_full = StoreError::Create(CreateError::PrincipalFull {
            retry_after: Duration::from_millis(1_000),
        });
        assert_eq!(
            status(&principal_full),
            (msc_status::MSC_ERR_PRINCIPAL_FULL, Some(1_000))
        );
        assert_eq!(
            status(&StoreError::Create(CreateError::ShutDown)),
            (msc_status::MSC_ERR_SHUT_DOWN, None)
        );
        assert_eq!(
            status(&StoreError::Lookup(LookupError::NotFound)),
            (msc_status::MSC_ERR_NOT_FOUND, None)
        );
        let down = StoreError::StoreUnavailable(
            crate::integrations::redis::StoreUnavailable::Timeout(Duration::from_secs(1)),
        );
        assert_eq!(
            status(&down),
            (msc_status::MSC_ERR_STORE_UNAVAILABLE, Some(1_000))
        );
    }
}
