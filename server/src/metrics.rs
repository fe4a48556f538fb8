//! `GET /metrics` of the example server: the Prometheus text format, from
//! `integrations::rmcp::metrics` (the registry's stats, closes by reason,
//! refusals by cause, and HTTP responses of `/mcp` by status code); in
//! fleet mode, the fleet's counters from Redis.

use std::sync::Arc;

use axum::Router;
use axum::http::StatusCode;
use axum::http::header::{CONTENT_TYPE, RETRY_AFTER};
use axum::routing::get;
use mcp_session_core::integrations::redis::{RedisRegistry, RedisStats};
use mcp_session_core::integrations::rmcp::RegistrySessionManager;
use mcp_session_core::integrations::rmcp::metrics::prometheus_client::{
    collector::Collector,
    encoding::{DescriptorEncoder, EncodeMetric},
    metrics::{MetricType, counter::ConstCounter, gauge::ConstGauge},
    registry::Registry,
};
use mcp_session_core::integrations::rmcp::metrics::{self, ResponseStatusCounter, SessionMetrics};

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

/// Fleet mode's figures, read from Redis at each scrape (the fleet's shared
/// counters, the same on every instance).
#[derive(Debug)]
struct FleetStats(RedisStats);

impl Collector for FleetStats {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let s = &self.0;
        for (name, help, value) in [
            (
                "mcp_sessions_live",
                "Open sessions in the fleet now",
                s.live,
            ),
            (
                "mcp_sessions_capacity",
                "The fleet's max_sessions",
                s.max_sessions,
            ),
        ] {
            let gauge = ConstGauge::new(value);
            gauge.encode(encoder.encode_descriptor(name, help, None, gauge.metric_type())?)?;
        }
        for (name, help, value) in [
            ("mcp_sessions_created", "Sessions created", s.created),
            (
                "mcp_sessions_closed",
                "Sessions closed on request (e.g. HTTP DELETE)",
                s.closed,
            ),
            (
                "mcp_sessions_evicted",
                "Sessions evicted to make room for a new one",
                s.evicted,
            ),
            (
                "mcp_sessions_expired",
                "Sessions expired (idle timeout, max lifetime or init timeout)",
                s.idle_timeout + s.max_lifetime + s.init_timeout,
            ),
            (
                "mcp_sessions_rejected_full",
                "Creations refused at capacity (on-full reject)",
                s.rejected_full,
            ),
            (
                "mcp_sessions_rate_limited",
                "Creations refused by the rate limit",
                s.rate_limited,
            ),
            (
                "mcp_sessions_events_gaps",
                "Close events trimmed from the stream before this instance read them",
                s.events_gaps,
            ),
        ] {
            let counter = ConstCounter::new(value);
            counter.encode(encoder.encode_descriptor(
                name,
                help,
                None,
                counter.metric_type(),
            )?)?;
        }
        let mut closes = encoder.encode_descriptor(
            "mcp_sessions_closes",
            "Sessions closed, per reason",
            None,
            MetricType::Counter,
        )?;
        for (reason, value) in [
            ("closed", s.closed),
            ("evicted", s.evicted),
            ("idle_timeout", s.idle_timeout),
            ("max_lifetime", s.max_lifetime),
            ("init_timeout", s.init_timeout),
        ] {
            ConstCounter::new(value).encode(closes.encode_family(&[("reason", reason)])?)?;
        }
        Ok(())
    }
}

/// Fleet mode's `/metrics`: the fleet's counters from Redis (503 with
/// `Retry-After` while Redis cannot be read) and this instance's HTTP
/// responses by status code.
pub fn fleet_metrics(registry: RedisRegistry) -> Metrics {
    let responses = ResponseStatusCounter::new();
    let counted = responses.clone();
    let route = Router::new().route(
        "/metrics",
        get(move || {
            let registry = registry.clone();
            let responses = counted.clone();
            async move {
                match registry.stats().await {
                    Ok(stats) => {
                        let mut metrics = Registry::default();
                        metrics.register_collector(Box::new(FleetStats(stats)));
                        responses.register(&mut metrics);
                        Ok((
                            [(CONTENT_TYPE, metrics::CONTENT_TYPE)],
                            metrics::encode(&metrics),
                        ))
                    }
                    Err(error) => Err((
                        StatusCode::SERVICE_UNAVAILABLE,
                        [(RETRY_AFTER, "1")],
                        error.to_string(),
                    )),
                }
            }
        }),
    );
    Metrics { route, responses }
}
