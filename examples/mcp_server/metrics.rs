//! `GET /metrics` of the example server: the Prometheus text format, from
//! `integrations::rmcp::metrics` (the registry's stats, closes by reason,
//! refusals by cause, and HTTP responses of `/mcp` by status code).

use std::sync::Arc;

use axum::Router;
use axum::http::header::CONTENT_TYPE;
use axum::routing::get;
use mcp_session_core::integrations::rmcp::RegistrySessionManager;
use mcp_session_core::integrations::rmcp::metrics::{
    self, ResponseStatusCounter, SessionMetrics, prometheus_client::registry::Registry,
};

/// The `/metrics` route, and the counter whose
/// [`layer`](ResponseStatusCounter::layer) goes around the `/mcp` service.
pub struct Metrics {
    /// `GET /metrics`.
    pub route: Router,
    /// HTTP responses of `/mcp` by status code.
    pub responses: ResponseStatusCounter,
}

/// The metrics of `manager` (held weakly: `/metrics` does not keep the
/// sessions alive through a shutdown).
pub fn metrics(manager: &Arc<RegistrySessionManager>) -> Metrics {
    let responses = ResponseStatusCounter::new();
    let mut registry = Registry::default();
    SessionMetrics::new(manager).register(&mut registry);
    responses.register(&mut registry);
    let registry = Arc::new(registry);
    let route = Router::new().route(
        "/metrics",
        get(move || {
            let text = metrics::encode(&registry);
            async move { ([(CONTENT_TYPE, metrics::CONTENT_TYPE)], text) }
        }),
    );
    Metrics { route, responses }
}
