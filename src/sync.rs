//! The one place where the crate chooses between `std` and `loom`.
//!
//! Every atomic the admission protocol touches comes from here, so building
//! with `RUSTFLAGS="--cfg mcp_session_core_loom"` swaps them all for loom's
//! model-checked versions at once (the crossbeam-epoch `primitive` pattern).
//! No other module names `loom` or the cfg.

#[cfg(mcp_session_core_loom)]
pub(crate) use loom::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

#[cfg(not(mcp_session_core_loom))]
pub(crate) use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

/// Gives the processor (or, under loom, the model's scheduler) a chance to
/// let another thread finish the step this one waits for.
///
/// Used only in the one wait of the admission protocol (see
/// [`crate::core::admission`]); `attempt` grows with each retry so the wait
/// backs off from spinning to yielding the thread.
#[inline]
pub(crate) fn wait_for_progress(attempt: u32) {
    #[cfg(mcp_session_core_loom)]
    {
        let _ = attempt;
        loom::thread::yield_now();
    }
    #[cfg(not(mcp_session_core_loom))]
    {
        if attempt < 6 {
            for _ in 0..(1u32 << attempt) {
                std::hint::spin_loop();
            }
        } else {
            std::thread::yield_now();
        }
    }
}
