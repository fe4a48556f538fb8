//! Integrations with MCP server frameworks, each behind its own feature.
//!
//! - [`rmcp`] (feature `rmcp`): a [`SessionManager`] for the official Rust
//!   SDK's Streamable HTTP server, backed by the registry, and a tower layer
//!   that binds sessions to principals and answers 400/404/429/503 the way
//!   MCP's Streamable HTTP transport expects.
//!
//! [`SessionManager`]: ::rmcp::transport::streamable_http_server::session::SessionManager

pub mod rmcp;
