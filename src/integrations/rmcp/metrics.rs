//! Prometheus metrics for a server on [`RegistrySessionManager`]. Feature
//! `metrics`.
//!
//! Two pieces, registered into a [`prometheus_client`] [`Registry`] (the
//! official Rust client of the Prometheus project, re-exported here so that
//! your version matches ours):
//!
//! - [`SessionMetrics`]: every counter and gauge of the registry's
//!   [`Stats`], sessions closed per [`CloseReason`](crate::CloseReason)
//!   and creations refused per cause — read from the manager at each scrape,
//!   so they always equal what [`SessionRegistry::stats`](crate::SessionRegistry::stats)
//!   returns at that instant, and cost nothing between scrapes;
//! - [`ResponseStatusCounter`]: HTTP responses by status code, counted by a
//!   tower layer ([`ResponseStatusLayer`]) in front of your MCP service
//!   (wait-free: one relaxed atomic add per response, no lock).
//!
//! Render the registry with [`encode`] (the Prometheus text format,
//! version 0.0.4, `Content-Type` [`CONTENT_TYPE`]) on your `/metrics`
//! route.
//!
//! | metric | type | what |
//! | --- | --- | --- |
//! | `mcp_sessions_live` | gauge | open sessions now |
//! | `mcp_sessions_capacity` | gauge | `max_sessions` |
//! | `mcp_sessions_created_total` … `mcp_sessions_callback_panics_total` | counter | one per [`Stats`] counter (see [`STATS`]) |
//! | `mcp_sessions_closes_total{reason}` | counter | sessions closed, per reason (`closed`, `evicted`, `idle_timeout`, `max_lifetime`, `init_timeout`, `shutdown`, `redeemed`) |
//! | `mcp_sessions_refused_total{cause}` | counter | creations refused by the manager, per cause (`rate_limited` 429, `at_capacity` 503, `principal_required` 403, `other` 500) |
//! | `mcp_http_responses_total{code}` | counter | HTTP responses by status code (only codes seen) |
//!
//! # Examples
//!
//! ```no_run
//! use std::sync::Arc;
//! use axum::{Router, routing::get};
//! use mcp_session_core::SessionRegistry;
//! use mcp_session_core::integrations::rmcp::RegistrySessionManager;
//! use mcp_session_core::integrations::rmcp::metrics::{
//!     self, ResponseStatusCounter, SessionMetrics, prometheus_client::registry::Registry,
//! };
//! use rmcp::transport::streamable_http_server::StreamableHttpService;
//!
//! # #[derive(Clone, Default)] struct MyServer;
//! # impl rmcp::ServerHandler for MyServer {}
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let manager = Arc::new(RegistrySessionManager::new(SessionRegistry::builder())?);
//! let mcp = StreamableHttpService::new(|| Ok(MyServer), manager.clone(), Default::default());
//!
//! let responses = ResponseStatusCounter::new();
//! let mut registry = Registry::default();
//! SessionMetrics::new(&manager).register(&mut registry);
//! responses.register(&mut registry);
//! let registry = Arc::new(registry);
//!
//! let app: Router = Router::new()
//!     .nest_service("/mcp", manager.layer().layer(mcp))
//!     .layer(responses.layer())
//!     .route(
//!         "/metrics",
//!         get(move || async move {
//!             ([("content-type", metrics::CONTENT_TYPE)], metrics::encode(&registry))
//!         }),
//!     );
//! # let _ = app; Ok(()) }
//! ```

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::task::{Context, Poll};

pub use prometheus_client;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::Registry;
use tower_layer::Layer;
use tower_service::Service;

use super::RegistrySessionManager;
use crate::Stats;

/// The `Content-Type` of [`encode`]'s output: the Prometheus text format,
/// version 0.0.4.
pub const CONTENT_TYPE: &str = prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

/// Renders `registry` in the Prometheus text format (version 0.0.4).
///
/// Never fails for the metrics of this module (their encoders only write
/// to a `String`); a collector of yours that fails leaves the text it wrote
/// so far, ending with a `# encoding failed` comment.
pub fn encode(registry: &Registry) -> String {
    let mut text = String::new();
    if prometheus_client::encoding::prometheus_text::encode(&mut text, registry).is_err() {
        text.push_str("# encoding failed\n");
    }
    text
}

/// Whether a [`STATS`] row is a gauge or a counter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StatKind {
    /// A value that goes up and down (exported as is).
    Gauge,
    /// A monotonic count (exported with the `_total` suffix).
    Counter,
}

/// One exported field of [`Stats`].
#[derive(Clone, Copy, Debug)]
pub struct StatMetric {
    /// The [`Stats`] field it exports.
    pub field: &'static str,
    /// The metric name, without `_total`.
    pub name: &'static str,
    /// The `# HELP` text.
    pub help: &'static str,
    /// Gauge or counter.
    pub kind: StatKind,
    /// Reads the field.
    pub read: fn(&Stats) -> u64,
}

macro_rules! stat {
    ($field:ident, $kind:ident, $name:literal, $help:literal) => {
        StatMetric {
            field: stringify!($field),
            name: $name,
            help: $help,
            kind: StatKind::$kind,
            read: |stats: &Stats| stats.$field,
        }
    };
}

/// Every [`Stats`] field and its metric: the one table to extend when
/// `Stats` gains a field (a unit test fails until it has a row).
pub const STATS: &[StatMetric] = &[
    stat!(
        live,
        Gauge,
        "mcp_sessions_live",
        "Open sessions now (capacity slots in use)"
    ),
    stat!(
        max_sessions,
        Gauge,
        "mcp_sessions_capacity",
        "The most sessions open at once (max_sessions)"
    ),
    stat!(created, Counter, "mcp_sessions_created", "Sessions created"),
    stat!(
        closed,
        Counter,
        "mcp_sessions_closed",
        "Sessions closed on request (e.g. HTTP DELETE)"
    ),
    stat!(
        evicted,
        Counter,
        "mcp_sessions_evicted",
        "Sessions evicted to make room for a new one"
    ),
    stat!(
        expired,
        Counter,
        "mcp_sessions_expired",
        "Sessions expired (idle timeout, max lifetime or init timeout)"
    ),
    stat!(
        redeemed,
        Counter,
        "mcp_sessions_redeemed",
        "Sessions taken for single use"
    ),
    stat!(
        shut_down,
        Counter,
        "mcp_sessions_shut_down",
        "Sessions closed by a shutdown"
    ),
    stat!(
        rejected_full,
        Counter,
        "mcp_sessions_rejected_full",
        "Creations refused at capacity (on-full reject)"
    ),
    stat!(
        rate_limited,
        Counter,
        "mcp_sessions_rate_limited",
        "Creations refused by the rate limit"
    ),
    stat!(
        rejected_principal_full,
        Counter,
        "mcp_sessions_rejected_principal_full",
        "Creations refused at a principal's cap (on-full reject)"
    ),
    stat!(
        rate_limited_principal,
        Counter,
        "mcp_sessions_rate_limited_principal",
        "Creations refused by the per-principal rate limit"
    ),
    stat!(
        principals_tracked,
        Gauge,
        "mcp_sessions_principals_tracked",
        "Principals holding per-principal state now"
    ),
    stat!(
        events_dropped,
        Counter,
        "mcp_sessions_events_dropped",
        "Close events dropped because the event queue was full"
    ),
    stat!(
        callback_panics,
        Counter,
        "mcp_sessions_callback_panics",
        "Close callbacks that panicked (caught; the session closed all the same)"
    ),
];

/// Encodes one value-only metric.
fn encode_value(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    kind: StatKind,
    value: u64,
) -> Result<(), fmt::Error> {
    match kind {
        StatKind::Gauge => {
            let gauge = ConstGauge::new(value);
            let metric = encoder.encode_descriptor(name, help, None, gauge.metric_type())?;
            gauge.encode(metric)
        }
        StatKind::Counter => {
            let counter = ConstCounter::new(value);
            let metric = encoder.encode_descriptor(name, help, None, counter.metric_type())?;
            counter.encode(metric)
        }
    }
}

/// Encodes a counter family with one label.
fn encode_counters<'a>(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    label: &str,
    values: impl IntoIterator<Item = (&'a str, u64)>,
) -> Result<(), fmt::Error> {
    let mut family = encoder.encode_descriptor(name, help, None, MetricType::Counter)?;
    for (value, count) in values {
        let labels = [(label, value)];
        ConstCounter::new(count).encode(family.encode_family(&labels)?)?;
    }
    Ok(())
}

/// The session metrics of one [`RegistrySessionManager`], read at each
/// scrape: the [`STATS`] rows, `mcp_sessions_closes_total{reason}` and
/// `mcp_sessions_refused_total{cause}`.
///
/// It holds the manager weakly: registering it does not keep the manager
/// (and its sessions) alive through a shutdown; once the manager is gone a
/// scrape shows none of these metrics.
#[derive(Clone, Debug)]
pub struct SessionMetrics {
    manager: Weak<RegistrySessionManager>,
}

impl SessionMetrics {
    /// The metrics of `manager`.
    pub fn new(manager: &Arc<RegistrySessionManager>) -> Self {
        Self {
            manager: Arc::downgrade(manager),
        }
    }

    /// Registers them as a collector of `registry`.
    pub fn register(self, registry: &mut Registry) {
        registry.register_collector(Box::new(self));
    }
}

impl Collector for SessionMetrics {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), fmt::Error> {
        let Some(manager) = self.manager.upgrade() else {
            return Ok(());
        };
        let stats = manager.registry().stats();
        for row in STATS {
            encode_value(
                &mut encoder,
                row.name,
                row.help,
                row.kind,
                (row.read)(&stats),
            )?;
        }
        let closes = manager.closes_by_reason();
        encode_counters(
            &mut encoder,
            "mcp_sessions_closes",
            "Sessions closed, per reason",
            "reason",
            closes
                .iter()
                .map(|(reason, count)| (reason.as_str(), count)),
        )?;
        let refused = manager.refusals();
        encode_counters(
            &mut encoder,
            "mcp_sessions_refused",
            "Session creations refused by the manager, per cause",
            "cause",
            [
                ("rate_limited", refused.rate_limited),
                ("at_capacity", refused.at_capacity),
                ("principal_required", refused.principal_required),
                ("other", refused.other),
            ],
        )
    }
}

/// The status codes counted one by one: 100 to 599; any other is counted
/// as `other`.
const CODES: std::ops::RangeInclusive<u16> = 100..=599;

struct StatusCounts {
    by_code: [AtomicU64; 500],
    other: AtomicU64,
}

impl Default for StatusCounts {
    fn default() -> Self {
        Self {
            by_code: std::array::from_fn(|_| AtomicU64::new(0)),
            other: AtomicU64::new(0),
        }
    }
}

impl StatusCounts {
    fn cell(&self, code: u16) -> &AtomicU64 {
        if CODES.contains(&code) {
            &self.by_code[usize::from(code - CODES.start())]
        } else {
            &self.other
        }
    }
}

/// HTTP responses by status code: the counts behind
/// `mcp_http_responses_total{code}`, and the [`layer`](Self::layer) that
/// keeps them. Clones share the counts.
///
/// Counts what the wrapped service answers, once its response head is
/// ready (a streamed SSE body counts once, with its status, when the stream
/// opens). A request the inner service fails with an error (no response)
/// is not counted.
#[derive(Clone, Default)]
pub struct ResponseStatusCounter {
    counts: Arc<StatusCounts>,
}

impl fmt::Debug for ResponseStatusCounter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.seen()).finish()
    }
}

impl ResponseStatusCounter {
    /// Counts at 0.
    pub fn new() -> Self {
        Self::default()
    }

    /// The layer that counts responses into these counts.
    pub fn layer(&self) -> ResponseStatusLayer {
        ResponseStatusLayer {
            counts: self.counts.clone(),
        }
    }

    /// Responses with status `code` so far (codes outside 100–599 share one
    /// count).
    pub fn get(&self, code: u16) -> u64 {
        self.counts.cell(code).load(Ordering::Relaxed)
    }

    /// Every status code seen so far, with its count, in code order
    /// (`None`: a code outside 100–599).
    pub fn seen(&self) -> Vec<(Option<u16>, u64)> {
        let mut seen: Vec<_> = CODES
            .map(|code| (Some(code), self.get(code)))
            .filter(|(_, count)| *count > 0)
            .collect();
        let other = self.counts.other.load(Ordering::Relaxed);
        if other > 0 {
            seen.push((None, other));
        }
        seen
    }

    /// Registers `mcp_http_responses_total{code}` as a collector of
    /// `registry` (sharing these counts).
    pub fn register(&self, registry: &mut Registry) {
        registry.register_collector(Box::new(self.clone()));
    }
}

impl Collector for ResponseStatusCounter {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), fmt::Error> {
        let seen: Vec<(String, u64)> = self
            .seen()
            .into_iter()
            .map(|(code, count)| {
                (
                    code.map_or_else(|| "other".to_owned(), |c| c.to_string()),
                    count,
                )
            })
            .collect();
        encode_counters(
            &mut encoder,
            "mcp_http_responses",
            "HTTP responses by status code",
            "code",
            seen.iter().map(|(code, count)| (code.as_str(), *count)),
        )
    }
}

/// A tower layer counting responses by status code (see
/// [`ResponseStatusCounter`]).
#[derive(Clone)]
pub struct ResponseStatusLayer {
    counts: Arc<StatusCounts>,
}

impl fmt::Debug for ResponseStatusLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseStatusLayer")
            .finish_non_exhaustive()
    }
}

impl<S> Layer<S> for ResponseStatusLayer {
    type Service = ResponseStatusService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        ResponseStatusService {
            inner,
            counts: self.counts.clone(),
        }
    }
}

/// The service of [`ResponseStatusLayer`].
#[derive(Clone)]
pub struct ResponseStatusService<S> {
    inner: S,
    counts: Arc<StatusCounts>,
}

impl<S> fmt::Debug for ResponseStatusService<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseStatusService")
            .finish_non_exhaustive()
    }
}

impl<S, ReqBody, ResBody> Service<http::Request<ReqBody>> for ResponseStatusService<S>
where
    S: Service<http::Request<ReqBody>, Response = http::Response<ResBody>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = CountedResponse<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<ReqBody>) -> Self::Future {
        CountedResponse {
            inner: self.inner.call(request),
            counts: self.counts.clone(),
        }
    }
}

pin_project_lite::pin_project! {
    /// The response future of [`ResponseStatusService`]: the inner future,
    /// counting the status of its response.
    pub struct CountedResponse<F> {
        #[pin]
        inner: F,
        counts: Arc<StatusCounts>,
    }
}

impl<F, ResBody, E> Future for CountedResponse<F>
where
    F: Future<Output = Result<http::Response<ResBody>, E>>,
{
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let output = std::task::ready!(this.inner.poll(cx));
        if let Ok(response) = &output {
            this.counts
                .cell(response.status().as_u16())
                .fetch_add(1, Ordering::Relaxed);
        }
        Poll::Ready(output)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_stats_field_has_a_metric() {
        // `Stats`' Debug output names every field: a field added without a
        // row in `STATS` fails here.
        let debug = format!("{:?}", Stats::default());
        let inner = debug
            .split_once('{')
            .and_then(|(_, rest)| rest.rsplit_once('}'))
            .map(|(fields, _)| fields)
            .expect("Stats { .. }");
        let fields: Vec<&str> = inner
            .split(',')
            .filter_map(|pair| pair.split_once(':'))
            .map(|(name, _)| name.trim())
            .collect();
        assert!(fields.len() >= 12, "{debug}");
        for field in &fields {
            assert!(
                STATS.iter().any(|row| row.field == *field),
                "Stats::{field} has no row in metrics::STATS"
            );
        }
        assert_eq!(
            STATS.len(),
            fields.len(),
            "a STATS row names no Stats field"
        );
        let mut names: Vec<_> = STATS.iter().map(|row| row.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), STATS.len(), "metric names are unique");
    }

    #[test]
    fn status_codes_are_counted_apart() {
        let counter = ResponseStatusCounter::new();
        for code in [200, 200, 404, 503, 99, 600] {
            counter.counts.cell(code).fetch_add(1, Ordering::Relaxed);
        }
        assert_eq!(counter.get(200), 2);
        assert_eq!(counter.get(404), 1);
        assert_eq!(counter.get(429), 0);
        assert_eq!(
            counter.seen(),
            vec![(Some(200), 2), (Some(404), 1), (Some(503), 1), (None, 2)]
        );
        let mut registry = Registry::default();
        counter.register(&mut registry);
        let text = encode(&registry);
        assert!(
            text.contains("# TYPE mcp_http_responses_total counter\n"),
            "{text}"
        );
        assert!(
            text.contains("mcp_http_responses_total{code=\"200\"} 2\n"),
            "{text}"
        );
        assert!(
            text.contains("mcp_http_responses_total{code=\"other\"} 2\n"),
            "{text}"
        );
        assert!(!text.contains("code=\"429\""), "{text}");
    }
}
