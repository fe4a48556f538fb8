//! The in-process session core: ids, the admission protocol, the registry.

pub(crate) mod admission;
pub(crate) mod clock;
pub(crate) mod config;
pub(crate) mod entry;
pub(crate) mod error;
pub(crate) mod events;
pub(crate) mod id;
pub(crate) mod principals;
pub(crate) mod rate_limit;
pub(crate) mod registry;
pub(crate) mod stats;
pub(crate) mod store;
pub(crate) mod timeouts;
