//! `GET /metrics` of the example server (issue 13): it parses as the
//! Prometheus text format, exports every `Stats` field, and moves with the
//! stats, the closes by reason, the refusals and the HTTP status codes.

mod rmcp_support;

use std::collections::HashMap;

use mcp_session_core::integrations::rmcp::metrics::{CONTENT_TYPE, STATS, StatKind};
use prometheus_parse::{Scrape, Value as Sample};
use rmcp_support::{RawClient, start};
use serde_json::json;

/// One scrape: the text, and its samples by `name{label="value"}`.
struct Metrics {
    text: String,
    samples: HashMap<String, (f64, &'static str)>,
}

impl Metrics {
    fn get(&self, key: &str) -> f64 {
        match self.samples.get(key) {
            Some((value, _)) => *value,
            None => panic!("no sample {key} in\n{}", self.text),
        }
    }

    fn kind(&self, key: &str) -> &'static str {
        self.samples[key].1
    }
}

/// `GET /metrics`, checked line by line and parsed.
async fn scrape(addr: std::net::SocketAddr) -> Metrics {
    let response = reqwest::get(format!("http://{addr}/metrics"))
        .await
        .expect("GET /metrics");
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], CONTENT_TYPE);
    let text = response.text().await.expect("body");
    // The exposition format, strictly: `# HELP`/`# TYPE` lines, then
    // `name{labels} value` samples whose family was typed before them.
    let mut typed = Vec::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').expect("# TYPE name kind");
            assert!(matches!(kind, "counter" | "gauge"), "{line}");
            typed.push(name.to_owned());
            continue;
        }
        if line.starts_with("# HELP ") {
            continue;
        }
        let (series, value) = line.rsplit_once(' ').expect("name value");
        let name = series.split('{').next().unwrap();
        assert!(
            !name.is_empty()
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':'),
            "metric name in {line:?}"
        );
        assert!(typed.iter().any(|t| t == name), "untyped sample {line:?}");
        value
            .parse::<f64>()
            .unwrap_or_else(|_| panic!("value in {line:?}"));
    }
    let scrape = Scrape::parse(text.lines().map(|l| Ok(l.to_owned()))).expect("Prometheus text");
    let mut samples = HashMap::new();
    for sample in scrape.samples {
        let (value, kind) = match sample.value {
            Sample::Counter(v) => (v, "counter"),
            Sample::Gauge(v) => (v, "gauge"),
            other => panic!("{}: unexpected {other:?}", sample.metric),
        };
        let mut labels: Vec<_> = sample.labels.iter().collect();
        labels.sort();
        let key = match labels.as_slice() {
            [] => sample.metric.clone(),
            labels => format!(
                "{}{{{}}}",
                sample.metric,
                labels
                    .iter()
                    .map(|(k, v)| format!("{k}=\"{v}\""))
                    .collect::<Vec<_>>()
                    .join(",")
            ),
        };
        assert!(
            samples.insert(key.clone(), (value, kind)).is_none(),
            "{key} twice"
        );
    }
    Metrics { text, samples }
}

/// The sample name of a `STATS` row.
fn sample_name(row: &mcp_session_core::integrations::rmcp::metrics::StatMetric) -> String {
    match row.kind {
        StatKind::Gauge => row.name.to_owned(),
        StatKind::Counter => format!("{}_total", row.name),
    }
}

#[tokio::test]
async fn metrics_parse_and_move_with_the_stats() {
    let server = start(&["--max-sessions", "3", "--rate-limit", "off"]).await;
    let before = scrape(server.stats_addr).await;
    for row in STATS {
        let name = sample_name(row);
        let expected = match row.kind {
            StatKind::Gauge => "gauge",
            StatKind::Counter => "counter",
        };
        assert_eq!(before.kind(&name), expected, "{name}");
    }
    assert_eq!(before.get("mcp_sessions_live"), 0.0);
    assert_eq!(before.get("mcp_sessions_capacity"), 3.0);
    assert_eq!(before.get("mcp_sessions_created_total"), 0.0);
    assert_eq!(
        before.get("mcp_sessions_closes_total{reason=\"evicted\"}"),
        0.0
    );

    // 5 sessions into 3 slots: 2 evicted (FIFO); one closed by DELETE; a
    // malformed id (400) and an evicted one (404).
    let mut clients = Vec::new();
    for _ in 0..5 {
        let mut client = RawClient::new(&server.url());
        assert_eq!(client.initialize().await.status, 200);
        clients.push(client);
    }
    assert_eq!(clients[4].counter().await.unwrap(), 1);
    assert_eq!(clients[0].counter().await.unwrap_err().status, 404);
    let mut malformed = RawClient::new(&server.url());
    malformed.session = Some("not-a-session-id".into());
    assert_eq!(malformed.counter().await.unwrap_err().status, 400);
    assert!((200..300).contains(&clients[4].delete().await.status));

    let after = scrape(server.stats_addr).await;
    let stats = server.manager.registry().stats();
    for row in STATS {
        assert_eq!(
            after.get(&sample_name(row)),
            (row.read)(&stats) as f64,
            "{} against Stats::{}",
            row.name,
            row.field
        );
    }
    assert_eq!(after.get("mcp_sessions_live"), 2.0);
    assert_eq!(after.get("mcp_sessions_created_total"), 5.0);
    assert_eq!(after.get("mcp_sessions_evicted_total"), 2.0);
    assert_eq!(after.get("mcp_sessions_closed_total"), 1.0);
    assert_eq!(
        after.get("mcp_sessions_closes_total{reason=\"evicted\"}"),
        2.0
    );
    assert_eq!(
        after.get("mcp_sessions_closes_total{reason=\"closed\"}"),
        1.0
    );
    assert_eq!(
        after.get("mcp_sessions_closes_total{reason=\"idle_timeout\"}"),
        0.0
    );
    assert_eq!(
        after.get("mcp_sessions_refused_total{cause=\"rate_limited\"}"),
        0.0
    );

    // The same figures as `/stats`.
    let json = server.stats().await;
    for (field, metric) in [
        ("live", "mcp_sessions_live"),
        ("created", "mcp_sessions_created_total"),
        ("evicted", "mcp_sessions_evicted_total"),
        ("closed", "mcp_sessions_closed_total"),
    ] {
        assert_eq!(
            json[field].as_f64(),
            Some(after.get(metric)),
            "{field}: {json}"
        );
    }

    // HTTP responses of /mcp by status: 5 initialize + 1 counter (200),
    // 5 notifications/initialized (202), the evicted session (404), the
    // malformed id (400), the DELETE (2xx).
    assert_eq!(after.get("mcp_http_responses_total{code=\"200\"}"), 6.0);
    assert_eq!(after.get("mcp_http_responses_total{code=\"202\"}"), 5.0);
    assert_eq!(after.get("mcp_http_responses_total{code=\"404\"}"), 1.0);
    assert_eq!(after.get("mcp_http_responses_total{code=\"400\"}"), 1.0);
    let deletes = after.get("mcp_http_responses_total{code=\"204\"}");
    assert_eq!(deletes, 1.0, "{}", after.text);
}

#[tokio::test]
async fn refusals_show_per_cause_and_as_429() {
    let server = start(&["--rate-limit", "1/60"]).await;
    assert_eq!(RawClient::new(&server.url()).initialize().await.status, 200);
    for _ in 0..3 {
        let reply = RawClient::new(&server.url())
            .post(&json!({
                "jsonrpc": "2.0", "id": 0, "method": "initialize",
                "params": {"protocolVersion": "2025-06-18", "capabilities": {},
                           "clientInfo": {"name": "t", "version": "0"}}
            }))
            .await;
        assert_eq!(reply.status, 429);
    }
    let metrics = scrape(server.stats_addr).await;
    assert_eq!(metrics.get("mcp_sessions_rate_limited_total"), 3.0);
    assert_eq!(
        metrics.get("mcp_sessions_refused_total{cause=\"rate_limited\"}"),
        3.0
    );
    assert_eq!(metrics.get("mcp_http_responses_total{code=\"429\"}"), 3.0);
}

#[tokio::test]
async fn metrics_live_on_the_admin_port_with_the_stats() {
    let server = start(&["--admin-port", "0"]).await;
    assert_ne!(server.addr, server.stats_addr);
    let public = reqwest::get(format!("http://{}/metrics", server.addr))
        .await
        .unwrap();
    assert_eq!(public.status(), 404, "/metrics is not on the public port");
    let metrics = scrape(server.stats_addr).await;
    assert_eq!(metrics.get("mcp_sessions_capacity"), 1000.0);
}

/// `/stats` names every `Stats` field (as `/metrics` does through `STATS`):
/// a field added to `Stats` without a key in `stats_json` fails here.
#[test]
fn stats_json_has_every_stats_field() {
    let stats = mcp_session_core::Stats::default();
    let json = rmcp_support::app::stats_json(&stats);
    let object = json.as_object().expect("a JSON object");
    for row in STATS {
        assert!(
            object.contains_key(row.field),
            "Stats::{} is missing from /stats",
            row.field
        );
    }
}

/// `/stats`'s `closed_by_reason` has every close reason (it once missed
/// `redeemed`, counted but never shown).
#[test]
fn stats_json_has_every_close_reason() {
    let closes = mcp_session_core::integrations::rmcp::ClosesByReason::default();
    let refusals = mcp_session_core::integrations::rmcp::Refusals::default();
    let stats = mcp_session_core::Stats::default();
    let json = rmcp_support::app::full_stats_json(&stats, &closes, &refusals);
    let by_reason = json["closed_by_reason"].as_object().expect("a JSON object");
    for (reason, _) in closes.iter() {
        assert!(
            by_reason.contains_key(&reason.to_string()),
            "{reason} is missing from closed_by_reason"
        );
    }
    assert!(by_reason.contains_key("redeemed"));
}
