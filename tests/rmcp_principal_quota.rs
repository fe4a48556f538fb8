//! Per-principal quotas on the example server, for the anonymous class
//! (the lead's `--bearer-tokens` adds authenticated principals): at the
//! class's cap `--on-full reject` answers 429 with Retry-After (not 503: the
//! limit is the caller's own), the per-principal rate limit answers 429
//! with its exact wait, and `/stats` counts both.

mod rmcp_support;

use rmcp_support::{RawClient, start};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn anonymous_cap_under_reject_is_429() {
    let server = start(&[
        "--max-sessions",
        "10",
        "--max-sessions-per-principal",
        "5",
        "--max-anonymous-sessions",
        "2",
        "--on-full",
        "reject",
        "--rate-limit",
        "off",
    ])
    .await;
    for _ in 0..2 {
        assert_eq!(RawClient::new(&server.url()).initialize().await.status, 200);
    }
    let refused = RawClient::new(&server.url()).initialize().await;
    assert_eq!(refused.status, 429, "{refused:?}");
    assert_eq!(refused.retry_after(), Some(1));
    assert!(refused.body.contains("principal"), "{}", refused.body);
    let stats = server.stats().await;
    assert_eq!(stats["rejected_principal_full"], 1, "{stats}");
    assert_eq!(stats["rejected_full"], 0, "{stats}");
    assert_eq!(stats["live"], 2, "{stats}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn anonymous_cap_under_evict_churns_only_the_class() {
    let server = start(&[
        "--max-sessions",
        "10",
        "--max-anonymous-sessions",
        "3",
        "--rate-limit",
        "off",
    ])
    .await;
    for _ in 0..12 {
        assert_eq!(RawClient::new(&server.url()).initialize().await.status, 200);
        assert!(server.manager.registry().principal_sessions(None) <= 3);
    }
    let stats = server.stats().await;
    assert_eq!(stats["live"], 3, "{stats}");
    assert_eq!(stats["evicted"], 9, "{stats}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_principal_rate_limit_is_429_with_its_wait() {
    let server = start(&["--rate-limit-per-principal", "2/60", "--rate-limit", "off"]).await;
    for _ in 0..2 {
        assert_eq!(RawClient::new(&server.url()).initialize().await.status, 200);
    }
    let refused = RawClient::new(&server.url()).initialize().await;
    assert_eq!(refused.status, 429, "{refused:?}");
    let wait = refused.retry_after().expect("Retry-After");
    assert!((59..=61).contains(&wait), "Retry-After {wait}");
    let stats = server.stats().await;
    assert_eq!(stats["rate_limited_principal"], 1, "{stats}");
    assert_eq!(stats["rate_limited"], 0, "{stats}");
}
