//! Fleet mode's `GET /metrics` (issue 13): the fleet's counters from Redis
//! in the Prometheus text format, moving with the sessions; 503 with
//! `Retry-After` while Redis is down.

// Shared helpers: this test uses part of them.
#[allow(dead_code)]
mod fleet_support;
mod redis_support;
mod rmcp_support;

use std::collections::HashMap;

use fleet_support::Instance;
use prometheus_parse::{Scrape, Value};
use redis_support::RedisServer;
use rmcp_support::RawClient;

/// `GET /metrics` parsed: `name{labels}` → value.
async fn scrape(instance: &Instance) -> HashMap<String, f64> {
    let response = reqwest::get(format!("http://{}/metrics", instance.addr))
        .await
        .expect("GET /metrics");
    assert_eq!(response.status(), 200);
    let text = response.text().await.unwrap();
    let scrape = Scrape::parse(text.lines().map(|l| Ok(l.to_owned()))).expect("Prometheus text");
    scrape
        .samples
        .into_iter()
        .map(|sample| {
            let value = match sample.value {
                Value::Counter(v) | Value::Gauge(v) => v,
                other => panic!("{}: {other:?}", sample.metric),
            };
            let key = match sample.labels.iter().next() {
                Some((k, v)) => format!("{}{{{k}=\"{v}\"}}", sample.metric),
                None => sample.metric,
            };
            (key, value)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fleet_metrics_move_with_the_sessions() {
    let mut redis = RedisServer::start();
    let a = Instance::start(["--redis", &redis.url()], &["--max-sessions", "5"]).await;

    let before = scrape(&a).await;
    assert_eq!(before["mcp_sessions_live"], 0.0);
    assert_eq!(before["mcp_sessions_capacity"], 5.0);

    let mut one = RawClient::new(&a.url());
    let mut two = RawClient::new(&a.url());
    assert_eq!(one.initialize().await.status, 200);
    assert_eq!(two.initialize().await.status, 200);
    assert!((200..300).contains(&one.delete().await.status));

    let after = scrape(&a).await;
    assert_eq!(after["mcp_sessions_live"], 1.0);
    assert_eq!(after["mcp_sessions_created_total"], 2.0);
    assert_eq!(after["mcp_sessions_closed_total"], 1.0);
    assert_eq!(after["mcp_sessions_closes_total{reason=\"closed\"}"], 1.0);
    assert_eq!(after["mcp_sessions_closes_total{reason=\"evicted\"}"], 0.0);
    assert_eq!(after["mcp_http_responses_total{code=\"200\"}"], 2.0);
    assert_eq!(after["mcp_http_responses_total{code=\"202\"}"], 2.0);

    redis.kill();
    let down = reqwest::get(format!("http://{}/metrics", a.addr))
        .await
        .unwrap();
    assert_eq!(down.status(), 503);
    assert_eq!(down.headers()["retry-after"], "1");
}
