//! # mcp-session-core
//!
//! A lock-free session core for MCP (Model Context Protocol) servers: the
//! server-side sessions of the Streamable HTTP transport, with an **exact**
//! bound. `max_sessions` is never exceeded, not for an instant, under any
//! interleaving of concurrent callers (model-checked with loom in
//! `loom-tests/`, and checked by the stress tests in `tests/`).
//!
//! - [`SessionRegistry`]: create (rate limit → capacity slot → insert; at
//!   capacity evict the oldest, FIFO, or reject), look up (validate the id,
//!   check the principal in constant time, refresh activity; lock-free and
//!   allocation-free), confirm, close, expire (idle timeout, max lifetime,
//!   init deadline).
//! - Every session is closed exactly once, with a [`CloseReason`], reported
//!   to a callback and/or a bounded, drainable event queue.
//! - [`SessionId`]: 122 random bits from the OS CSPRNG, as a canonical UUID
//!   v4; [`SessionId::parse`] rejects anything else before the registry is
//!   touched.
//! - Errors carry their HTTP status ([`CreateError::http_status`],
//!   [`LookupError::http_status`]) after MCP's Streamable HTTP rules.
//! - A C ABI (`msc_*`, header `include/mcp_session_core.h`) for C, Go and
//!   Node hosts.
//!
//! ```
//! use std::time::Duration;
//! use mcp_session_core::{CloseReason, OnFull, SessionRegistry};
//!
//! let registry = SessionRegistry::builder()
//!     .max_sessions(2)
//!     .on_full(OnFull::EvictOldest)
//!     .idle_timeout(Duration::from_secs(600))
//!     .build()?;
//!
//! let first = registry.create("transport 1")?;
//! let _second = registry.create("transport 2")?;
//! let _third = registry.create("transport 3")?; // evicts `first`
//! assert_eq!(registry.len(), 2);
//!
//! // Every request: parse the Mcp-Session-Id header and look it up.
//! let header = first.id().to_string();
//! let err = registry.get_str(&header, None).unwrap_err();
//! assert_eq!(err.http_status(), 404); // evicted: the client re-initializes
//!
//! let closed = registry.pop_closed().unwrap();
//! assert_eq!(closed.reason, CloseReason::Evicted);
//! assert_eq!(*closed.session, "transport 1"); // tear this transport down
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! ## Features
//!
//! - `tokio`: [`SessionRegistry::spawn_reaper`], a task that purges expired
//!   sessions on an interval and stops when the registry is dropped.
//! - `rmcp` (implies `tokio`): [`integrations::rmcp`], a session manager
//!   for rmcp's Streamable HTTP server backed by the registry, and a tower
//!   layer that binds sessions to principals and answers 400/404/429/503.
//!   The `mcp-server` crate (`server/src/main.rs`) is a complete server
//!   built on it. Needs Rust 1.88 (rmcp 3.11's minimum).
//! - `redis` (implies `tokio`): [`integrations::redis`], fleet mode: the
//!   registry's semantics on Redis for several instances behind a load
//!   balancer (exact global bound, FIFO, rate limit, expiry on Redis's
//!   clock, merged metadata, close events on a stream); with `rmcp` too, a
//!   Redis `SessionStore` and cross-instance session restore.
#![warn(missing_docs, unsafe_op_in_unsafe_fn)]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod sync;

/// The admission protocol alone, for `loom-tests/` (built with
/// `--cfg mcp_session_core_loom`, which swaps in loom's atomics and leaves
/// the rest of the crate out).
#[cfg(mcp_session_core_loom)]
#[doc(hidden)]
#[path = "core/admission.rs"]
pub mod admission;

// The Rust API is not part of the C header (`ffi` is):
/// cbindgen:ignore
#[cfg(not(mcp_session_core_loom))]
mod core;

#[cfg(all(feature = "tokio", not(mcp_session_core_loom)))]
mod reaper;

#[cfg(not(mcp_session_core_loom))]
pub mod ffi;

// Rust-only, like `core`: nothing of it belongs in the C header.
/// cbindgen:ignore
#[cfg(all(any(feature = "rmcp", feature = "redis"), not(mcp_session_core_loom)))]
pub mod integrations;

#[cfg(not(mcp_session_core_loom))]
pub use crate::core::{
    admission::OnFull,
    clock::{Clock, ManualClock, SystemClock},
    config::{
        ConfigError, DEFAULT_EVENT_QUEUE_CAPACITY, DEFAULT_MAX_SESSIONS, MAX_EVENT_QUEUE_CAPACITY,
        RegistryBuilder,
    },
    entry::Session,
    error::{CreateError, LookupError},
    events::{CloseCallback, CloseReason, ClosedSession},
    id::{ParseError, SESSION_ID_LEN, SessionId},
    registry::SessionRegistry,
    stats::Stats,
};

/// README.md's examples, compiled and run as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
