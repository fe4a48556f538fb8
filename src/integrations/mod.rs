//! Integrations with MCP server frameworks, each behind its own feature.
//!
//! - [`rmcp`] (feature `rmcp`): a [`SessionManager`] for the official Rust
//!   SDK's Streamable HTTP server, backed by the registry, and a tower layer
//!   that binds sessions to principals and answers 400/404/429/503 the way
//!   MCP's Streamable HTTP transport expects.
//! - [`redis`] (feature `redis`): fleet mode, the registry on Redis.
//!
//! [`SessionManager`]: ::rmcp::transport::streamable_http_server::session::SessionManager

#[cfg(feature = "rmcp")]
pub mod rmcp;

#[cfg(feature = "redis")]
pub mod redis;
