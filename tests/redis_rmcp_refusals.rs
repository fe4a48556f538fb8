//! Fleet mode's refusal log (issue 14, item 7, as the in-memory layer does
//! it; see `rmcp_ops.rs`): a flood of refused `initialize` requests is
//! answered 429 by the layer, counted in full, logged once at WARN, and
//! never reaches rmcp (which would log each at ERROR). Alone in its test
//! binary: the log capture is per thread, and other tests' runtimes on
//! other threads would race it.

mod fleet_support;
mod redis_support;
mod rmcp_support;

use fleet_support::Instance;
use redis_support::RedisServer;
use rmcp_support::{Logs, RawClient};

async fn start(redis: &RedisServer, flags: &[&str]) -> Instance {
    Instance::start(["--redis", &redis.url()], flags).await
}

// A current-thread runtime: the log capture is per thread.
#[tokio::test]
async fn a_refusal_flood_is_counted_in_full_and_logged_once() {
    let redis = RedisServer::start();
    let (logs, _guard) = Logs::capture("info,rmcp=warn");
    let server = start(&redis, &["--rate-limit", "1/60"]).await;
    let mut first = RawClient::new(&server.url());
    assert_eq!(first.initialize().await.status, 200);
    assert!(server.hosts(first.session.as_deref().unwrap()));
    for _ in 0..30 {
        let reply = RawClient::new(&server.url()).initialize().await;
        assert_eq!(reply.status, 429, "{reply:?}");
        assert!(reply.retry_after().is_some(), "{reply:?}");
    }
    assert_eq!(server.manager.refusals().rate_limited, 30);

    let text = logs.text();
    let ours: Vec<&str> = text
        .lines()
        .filter(|line| line.contains("session creation refused"))
        .collect();
    assert_eq!(ours.len(), 1, "{text}");
    assert!(ours[0].contains("WARN"), "{text}");
    // rmcp never sees the refused creates, so it logs nothing at ERROR.
    let errors: Vec<&str> = text.lines().filter(|l| l.contains("ERROR")).collect();
    assert!(errors.is_empty(), "ERROR lines for refusals: {errors:#?}");
    assert!(
        !text.contains("session refused"),
        "no per-refusal log line: {text}"
    );
}
