//! The C ABI: `msc_*` functions over a [`crate::SessionRegistry`] whose
//! value is the host's `uint64_t` tag. The header is
//! `include/mcp_session_core.h`, generated from this module by cbindgen.
//!
//! # API conventions (after rustls-ffi)
//!
//! - Every function is safe to call from any thread at any time, including
//!   concurrently on one registry, except `msc_registry_free` (nothing else
//!   may run on that registry during or after it) and the `msc_options_*`
//!   functions (one thread at a time per `msc_options`).
//! - ABI stability: status and close-reason numbers are only appended;
//!   `msc_config` and `msc_stats` are frozen structs; settings added later
//!   come as `msc_options_set_*` functions, so a host compiled against an
//!   older header keeps working with a newer library.
//! - Close events: every session that ends is queued for
//!   `msc_registry_drain_closed` with its tag; `msc_registry_shutdown`
//!   closes the rest before `msc_registry_free`. When the queue is full an
//!   event is dropped and counted in `msc_stats.events_dropped`: that is
//!   how a host learns it lost one (size the queue, drain often).
//! - No panic unwinds into C: each body runs inside the one panic-boundary helper (`panic::ffi_boundary`),
//!   which turns a panic into `MSC_ERR_INTERNAL` (or the return type's
//!   neutral value: 0 for counts, a static string for strings).
//! - A NULL pointer where one is required is `MSC_ERR_NULL_ARGUMENT`, never
//!   a crash; pointers documented as nullable may be NULL. Non-NULL pointers
//!   must be valid for the documented size.
//! - Out-parameters are written only when the function returns `MSC_OK`
//!   (the one exception, `out_retry_after_ms`, is documented where it is).
//! - Strings are NUL-terminated, borrowed for the call only; the library
//!   never keeps or frees a pointer the caller passed, and everything the
//!   caller receives is either copied into caller memory or static.
//! - The tag is opaque to the library: it is stored, returned and reported,
//!   never dereferenced.

#![allow(non_camel_case_types)]

mod config;
mod fairness;
mod features;
#[cfg(feature = "redis")]
mod fleet;
mod options;
mod panic;
mod registry;
mod session;
mod status;
mod util;

pub use config::{msc_config, msc_config_default};
pub use fairness::{
    msc_options_set_max_anonymous_sessions, msc_options_set_max_sessions_per_principal,
    msc_options_set_rate_limit_per_principal, msc_registry_stat, msc_stat,
};
pub use features::{MSC_FEATURE_FLEET, msc_features};
#[cfg(feature = "redis")]
pub use fleet::*;
pub use options::{
    msc_on_full, msc_options, msc_options_free, msc_options_new,
    msc_options_set_event_queue_capacity, msc_options_set_idle_timeout_ms,
    msc_options_set_init_timeout_ms, msc_options_set_max_lifetime_ms, msc_options_set_max_sessions,
    msc_options_set_on_full, msc_options_set_rate_limit, msc_registry_new_with_options,
};
pub use registry::{
    MSC_SESSION_ID_LEN, msc_closed_event, msc_registry, msc_registry_drain_closed,
    msc_registry_free, msc_registry_len, msc_registry_new, msc_registry_purge_expired,
    msc_registry_shutdown, msc_registry_stats, msc_stats,
};
pub use session::{
    msc_session_close, msc_session_confirm, msc_session_create, msc_session_create_ex,
    msc_session_get, msc_session_get_ex, msc_session_take, msc_session_take_ex,
};
pub use status::{msc_close_reason, msc_status, msc_status_str, msc_version};
