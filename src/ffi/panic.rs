//! The panic boundary: one helper wraps each exported function's body.

use std::panic::{AssertUnwindSafe, catch_unwind};

use super::status::msc_status;

/// The value an exported function returns when its body panicked.
pub(crate) trait PanicFallback {
    /// The neutral value for this return type.
    fn on_panic() -> Self;
}

impl PanicFallback for msc_status {
    fn on_panic() -> Self {
        msc_status::MSC_ERR_INTERNAL
    }
}

impl PanicFallback for usize {
    fn on_panic() -> Self {
        0
    }
}

impl PanicFallback for *const std::ffi::c_char {
    fn on_panic() -> Self {
        c"internal error".as_ptr()
    }
}

impl PanicFallback for u32 {
    fn on_panic() -> Self {
        0
    }
}

impl PanicFallback for () {
    fn on_panic() -> Self {}
}

/// Runs `body`, turning a panic into `R::on_panic()` so it never unwinds
/// across the C ABI.
#[inline]
pub(crate) fn ffi_boundary<R: PanicFallback>(body: impl FnOnce() -> R) -> R {
    catch_unwind(AssertUnwindSafe(body)).unwrap_or_else(|_| R::on_panic())
}
