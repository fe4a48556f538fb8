//! `msc_config`: the C view of the registry's settings.

use std::time::Duration;

use super::panic::ffi_boundary;
use crate::{DEFAULT_EVENT_QUEUE_CAPACITY, DEFAULT_MAX_SESSIONS, OnFull};

/// Registry settings, version 1. **This layout is frozen**: a host built
/// against any version of this header passes this exact struct, so no field
/// is ever added to it. Settings added later are set through `msc_options`
/// (`msc_options_new`, `msc_options_set_*`, `msc_registry_new_with_options`),
/// which also sets all of these. Start from `msc_config_default()`.
///
/// Times are milliseconds; 0 turns a timeout or the rate limit off.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct msc_config {
    /// The most sessions open at once; at least 1.
    pub max_sessions: u64,
    /// At capacity: 1 = evict the oldest session (FIFO), 0 = reject the new
    /// one with `MSC_ERR_AT_CAPACITY`. Any other value is invalid.
    pub evict_oldest: u32,
    /// Close a session no lookup has found for this long (ms); 0 = off.
    pub idle_timeout_ms: u64,
    /// Close a session this long after its creation (ms); 0 = off.
    pub max_lifetime_ms: u64,
    /// Close a session not confirmed (`msc_session_confirm`) this long
    /// after its creation (ms); 0 = off.
    pub init_timeout_ms: u64,
    /// At most this many creations per `rate_limit_window_ms`; 0 = off.
    pub rate_limit_max: u64,
    /// The sliding window of the rate limit (ms); must be at least 1 when
    /// `rate_limit_max` is set.
    pub rate_limit_window_ms: u64,
    /// How many close events are kept for `msc_registry_drain_closed`
    /// before new ones are dropped (and counted); 0 = the default, 4096.
    pub event_queue_capacity: u64,
}

/// The default settings: 10,000 sessions, evict the oldest, no timeouts, no
/// rate limit, 4,096 queued close events.
#[unsafe(no_mangle)]
pub extern "C" fn msc_config_default() -> msc_config {
    ffi_boundary(defaults)
}

/// The defaults, as `msc_config_default` returns them.
pub(crate) fn defaults() -> msc_config {
    msc_config {
        max_sessions: DEFAULT_MAX_SESSIONS as u64,
        evict_oldest: 1,
        idle_timeout_ms: 0,
        max_lifetime_ms: 0,
        init_timeout_ms: 0,
        rate_limit_max: 0,
        rate_limit_window_ms: 0,
        event_queue_capacity: DEFAULT_EVENT_QUEUE_CAPACITY as u64,
    }
}

impl super::panic::PanicFallback for msc_config {
    fn on_panic() -> Self {
        // Built without anything that can panic.
        defaults()
    }
}

impl msc_config {
    /// Applies these settings to a builder.
    /// `None` for a value no builder setting can express (the builder
    /// checks the rest).
    pub(crate) fn apply(
        &self,
        mut builder: crate::RegistryBuilder<u64>,
    ) -> Option<crate::RegistryBuilder<u64>> {
        let max = usize::try_from(self.max_sessions).ok()?;
        builder = builder.max_sessions(max).on_full(match self.evict_oldest {
            1 => OnFull::EvictOldest,
            0 => OnFull::Reject,
            _ => return None,
        });
        let ms = Duration::from_millis;
        if self.idle_timeout_ms > 0 {
            builder = builder.idle_timeout(ms(self.idle_timeout_ms));
        }
        if self.max_lifetime_ms > 0 {
            builder = builder.max_lifetime(ms(self.max_lifetime_ms));
        }
        if self.init_timeout_ms > 0 {
            builder = builder.init_timeout(ms(self.init_timeout_ms));
        }
        if self.rate_limit_max > 0 {
            builder = builder.rate_limit(self.rate_limit_max, ms(self.rate_limit_window_ms));
        }
        let queue = match self.event_queue_capacity {
            0 => DEFAULT_EVENT_QUEUE_CAPACITY,
            n => usize::try_from(n).ok()?,
        };
        Some(builder.event_queue_capacity(queue))
    }
}
