//! Expiry on the example server, in real time with short timeouts: idle
//! timeout, max lifetime and the init deadline; an expired session's id is
//! 404 and its worker is stopped.

mod rmcp_support;

use std::time::Duration;

use rmcp_support::{RawClient, eventually, rmcp_call, rmcp_client, start};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_client_gets_404_and_an_active_one_stays() {
    let server = start(&["--idle-timeout", "700ms"]).await;
    let url = server.url();
    let mut idle = RawClient::new(&url);
    let mut active = RawClient::new(&url);
    assert_eq!(idle.initialize().await.status, 200);
    assert_eq!(active.initialize().await.status, 200);
    assert_eq!(idle.counter().await.unwrap(), 1);
    let idle_session = server
        .manager
        .registry()
        .get_str(idle.session.as_deref().unwrap(), None)
        .unwrap();
    let rmcp_idle = rmcp_client(&url, false).await;
    assert_eq!(
        rmcp_call(&rmcp_idle, "counter", json!({})).await.unwrap(),
        "1"
    );

    // `active` sends a request every 200 ms, past the idle timeout.
    for n in 1..=7 {
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert_eq!(
            active.counter().await.unwrap(),
            n,
            "an active session stays"
        );
    }

    assert_eq!(idle.counter().await.unwrap_err().status, 404);
    assert!(
        rmcp_call(&rmcp_idle, "counter", json!({})).await.is_err(),
        "the idle rmcp client's session is gone"
    );
    // The reaper closes it too: its worker stops and /stats counts it.
    assert!(
        eventually(Duration::from_secs(3), async || idle_session
            .is_worker_closed())
        .await,
        "the idle session's worker is stopped"
    );
    let stats = server.stats().await;
    assert_eq!(stats["expired"], 2, "{stats}");
    assert_eq!(stats["live"], 1, "{stats}");

    // The idle client starts over.
    assert_eq!(idle.initialize().await.status, 200);
    assert_eq!(idle.counter().await.unwrap(), 1);
}

#[tokio::test]
async fn max_lifetime_ends_even_an_active_session() {
    let server = start(&["--max-lifetime", "600ms", "--idle-timeout", "off"]).await;
    let mut client = RawClient::new(&server.url());
    assert_eq!(client.initialize().await.status, 200);
    let begun = tokio::time::Instant::now();
    let mut calls = 0;
    let status = loop {
        match client.counter().await {
            Ok(_) => calls += 1,
            Err(reply) => break reply.status,
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(status, 404);
    assert!(
        begun.elapsed() >= Duration::from_millis(500),
        "not before its time"
    );
    assert!(calls >= 2, "it served requests until then ({calls})");
    assert!(
        eventually(
            Duration::from_secs(2),
            async || server.stats().await["expired"] == 1
        )
        .await
    );
}

#[tokio::test]
async fn a_half_open_handshake_loses_its_slot_at_the_init_deadline() {
    let server = start(&[
        "--init-timeout",
        "400ms",
        "--max-sessions",
        "2",
        "--on-full",
        "reject",
    ])
    .await;
    let url = server.url();
    let mut half_open = RawClient::new(&url);
    assert_eq!(half_open.initialize_half_open().await.status, 200);
    let mut complete = RawClient::new(&url);
    assert_eq!(complete.initialize().await.status, 200);
    assert_eq!(server.stats().await["live"], 2);
    // Full: a third is refused while the half-open session squats a slot.
    assert_eq!(RawClient::new(&url).initialize().await.status, 503);

    tokio::time::sleep(Duration::from_millis(600)).await;
    // The completed handshake was confirmed and stays; the half-open one
    // was reclaimed, so a newcomer fits again.
    assert_eq!(complete.counter().await.unwrap(), 1);
    assert_eq!(half_open.counter().await.unwrap_err().status, 404);
    assert!(
        eventually(
            Duration::from_secs(2),
            async || server.stats().await["live"] == 1
        )
        .await
    );
    assert_eq!(RawClient::new(&url).initialize().await.status, 200);
    assert_eq!(server.stats().await["expired"], 1);
}
