//! Fleet mode from C (`msc_fleet_*`, feature `redis`): a blocking API over
//! [`RedisRegistry`](crate::integrations::redis::RedisRegistry), each
//! handle with its own tokio runtime.
//!
//! The conventions are the rest of the C ABI's (see [`crate::ffi`]), plus:
//!
//! - Every call on a session is one Redis round trip under the call
//!   timeout; an unreachable or slow Redis is `MSC_ERR_STORE_UNAVAILABLE`
//!   (HTTP 503) with its `Retry-After` in `*out_retry_after_ms`, never a
//!   hang or a crash.
//! - Fleet sessions carry no tag: a session created on one instance may be
//!   used on another, so the host maps session ids to its transports
//!   itself, and `msc_fleet_drain_events` reports closes from the whole
//!   fleet by id (ignore the ids you do not host).
//! - `msc_features()` tells whether the library was built with this
//!   module (`MSC_FEATURE_FLEET`).

mod error;
mod handle;
mod options;
mod session;

pub use handle::{
    msc_fleet, msc_fleet_connect, msc_fleet_connect_cluster, msc_fleet_counters,
    msc_fleet_drain_events, msc_fleet_event, msc_fleet_event_kind, msc_fleet_free,
    msc_fleet_purge_expired, msc_fleet_stat, msc_fleet_stats,
};
pub use options::{
    MSC_FLEET_DEFAULT_REAPER_INTERVAL_MS, msc_fleet_options, msc_fleet_options_free,
    msc_fleet_options_new, msc_fleet_options_set_allow_evicting_policy,
    msc_fleet_options_set_call_timeout_ms, msc_fleet_options_set_events_maxlen,
    msc_fleet_options_set_idle_timeout_ms, msc_fleet_options_set_init_timeout_ms,
    msc_fleet_options_set_max_anonymous_sessions, msc_fleet_options_set_max_lifetime_ms,
    msc_fleet_options_set_max_sessions, msc_fleet_options_set_max_sessions_per_principal,
    msc_fleet_options_set_on_full, msc_fleet_options_set_prefix, msc_fleet_options_set_rate_limit,
    msc_fleet_options_set_rate_limit_per_principal, msc_fleet_options_set_reaper_interval_ms,
    msc_fleet_options_set_secret, msc_fleet_options_set_wait_for_replicas,
};
pub use session::{
    msc_fleet_session_close, msc_fleet_session_confirm, msc_fleet_session_create,
    msc_fleet_session_get, msc_fleet_session_take,
};
