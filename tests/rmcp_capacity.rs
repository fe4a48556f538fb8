//! Capacity and admission on the example server: `--max-sessions` is never
//! exceeded while clients race to initialize, evicted clients get 404 and
//! re-initialize, `--on-full reject` answers 503 and `--rate-limit` 429,
//! both with Retry-After.

mod rmcp_support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use rmcp_support::{RawClient, rmcp_call, rmcp_client, start};
use serde_json::json;
use tokio::sync::Barrier;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ten_clients_racing_never_see_more_than_three_live_sessions() {
    const CLIENTS: usize = 10;
    let server = start(&["--max-sessions", "3"]).await;
    let url = server.url();
    let racing = Arc::new(AtomicBool::new(true));

    // Two watchers while the clients race: GET /stats over HTTP, as an
    // operator would, and the registry's own count, polled far faster.
    let http_max = Arc::new(AtomicU64::new(0));
    let http_polls = Arc::new(AtomicU64::new(0));
    let http_watch = tokio::spawn({
        let (racing, max, polls) = (racing.clone(), http_max.clone(), http_polls.clone());
        let stats_url = format!("http://{}/stats", server.addr);
        async move {
            let http = reqwest::Client::new();
            while racing.load(Ordering::Relaxed) {
                let stats: serde_json::Value = http
                    .get(&stats_url)
                    .send()
                    .await
                    .unwrap()
                    .json()
                    .await
                    .unwrap();
                assert_eq!(stats["max_sessions"], 3);
                max.fetch_max(stats["live"].as_u64().unwrap(), Ordering::Relaxed);
                polls.fetch_add(1, Ordering::Relaxed);
            }
        }
    });
    let registry = server.manager.registry().clone();
    let tight_max = Arc::new(AtomicU64::new(0));
    let tight_watch = std::thread::spawn({
        let (racing, max) = (racing.clone(), tight_max.clone());
        move || {
            while racing.load(Ordering::Relaxed) {
                max.fetch_max(registry.len() as u64, Ordering::Relaxed);
            }
        }
    });

    let start_line = Arc::new(Barrier::new(CLIENTS));
    let mut clients = Vec::new();
    for _ in 0..CLIENTS {
        let (url, start_line) = (url.clone(), start_line.clone());
        clients.push(tokio::spawn(async move {
            let mut client = RawClient::new(&url);
            start_line.wait().await;
            let reply = client.initialize().await;
            (client, reply)
        }));
    }
    let mut initialized = Vec::new();
    for task in clients {
        let (client, reply) = task.await.unwrap();
        match reply.status {
            200 => initialized.push(client),
            // Evicted by a newer client before its own handshake finished.
            503 => assert!(reply.retry_after().is_some(), "{reply:?}"),
            other => panic!("initialize answered {other}: {reply:?}"),
        }
    }
    racing.store(false, Ordering::Relaxed);
    http_watch.await.unwrap();
    tight_watch.join().unwrap();

    assert!(http_polls.load(Ordering::Relaxed) > 0);
    assert!(
        http_max.load(Ordering::Relaxed) <= 3,
        "GET /stats saw more than 3 live"
    );
    assert!(
        tight_max.load(Ordering::Relaxed) <= 3,
        "the registry held more than 3"
    );

    // Exactly the 3 newest survive; everyone else's session is gone: 404.
    let stats = server.stats().await;
    assert_eq!(stats["live"], 3);
    assert_eq!(
        stats["created"], CLIENTS as u64,
        "every initialize created a session"
    );
    assert_eq!(stats["evicted"], CLIENTS as u64 - 3);
    let mut alive = 0;
    let mut evicted = Vec::new();
    for mut client in initialized {
        match client.counter().await {
            Ok(1) => alive += 1,
            Ok(n) => panic!("a fresh session counted {n}"),
            Err(reply) => {
                assert_eq!(reply.status, 404, "{reply:?}");
                evicted.push(client);
            }
        }
    }
    assert_eq!(alive, 3);
    assert!(!evicted.is_empty());
    eprintln!(
        "{} of {CLIENTS} initialized (the rest were evicted mid-handshake: 503), {} evicted \
         after; /stats polled {} times during the race",
        alive + evicted.len(),
        evicted.len(),
        http_polls.load(Ordering::Relaxed)
    );

    // An evicted client re-initializes and carries on in a new session
    // (evicting the oldest live one: still 3).
    let mut client = evicted.pop().unwrap();
    let old_id = client.session.clone();
    assert_eq!(client.initialize().await.status, 200);
    assert_ne!(client.session, old_id);
    assert_eq!(client.counter().await.unwrap(), 1);
    assert_eq!(server.stats().await["live"], 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_evicted_session_closes_its_worker_and_rmcp_clients_recover() {
    let server = start(&["--max-sessions", "2"]).await;
    let url = server.url();

    let mut first = RawClient::new(&url);
    assert_eq!(first.initialize().await.status, 200);
    let first_session = server
        .manager
        .registry()
        .get_str(first.session.as_deref().unwrap(), None)
        .unwrap();
    // rmcp clients: one that gives up on 404, one that re-initializes.
    let strict = rmcp_client(&url, false).await;
    let resilient = rmcp_client(&url, true).await;
    assert_eq!(
        rmcp_call(&resilient, "counter", json!({})).await.unwrap(),
        "1"
    );

    // `resilient` evicted `first`: its worker was stopped, its id is 404.
    assert!(first_session.is_worker_closed());
    assert_eq!(first.counter().await.unwrap_err().status, 404);
    // Two newer sessions push out `strict`, then `resilient`.
    let mut pushers = [RawClient::new(&url), RawClient::new(&url)];
    for pusher in &mut pushers {
        assert_eq!(pusher.initialize().await.status, 200);
    }
    assert!(
        rmcp_call(&strict, "counter", json!({})).await.is_err(),
        "an evicted rmcp client without re-initialization fails"
    );
    // The resilient client gets 404, re-initializes by itself, and its new
    // session counts from 1 again.
    assert_eq!(
        rmcp_call(&resilient, "counter", json!({})).await.unwrap(),
        "1"
    );
    assert_eq!(
        rmcp_call(&resilient, "counter", json!({})).await.unwrap(),
        "2"
    );
    assert!(server.stats().await["live"].as_u64().unwrap() <= 2);
}

#[tokio::test]
async fn reject_policy_answers_503_with_retry_after() {
    let server = start(&["--max-sessions", "2", "--on-full", "reject"]).await;
    let url = server.url();
    let mut a = RawClient::new(&url);
    let mut b = RawClient::new(&url);
    assert_eq!(a.initialize().await.status, 200);
    assert_eq!(b.initialize().await.status, 200);

    let mut c = RawClient::new(&url);
    let reply = c.initialize().await;
    assert_eq!(reply.status, 503, "{reply:?}");
    // The init deadline (30 s by default): a slot held by an abandoned
    // handshake is free by then.
    assert_eq!(reply.retry_after(), Some(30));
    assert!(reply.headers.get("mcp-session-id").is_none());
    assert_eq!(reply.messages()[0]["error"]["code"], -32000);
    let stats = server.stats().await;
    assert_eq!(
        (&stats["live"], &stats["rejected_full"]),
        (&json!(2), &json!(1))
    );

    // The sessions in place are untouched; once one leaves, C gets in.
    assert_eq!(a.counter().await.unwrap(), 1);
    assert!((200..300).contains(&b.delete().await.status));
    assert_eq!(c.initialize().await.status, 200);
    assert_eq!(c.counter().await.unwrap(), 1);
}

#[tokio::test]
async fn rate_limit_answers_429_with_retry_after() {
    let server = start(&["--rate-limit", "2/30"]).await;
    let url = server.url();
    let mut kept = RawClient::new(&url);
    assert_eq!(kept.initialize().await.status, 200);
    assert_eq!(RawClient::new(&url).initialize().await.status, 200);
    let mut refused = RawClient::new(&url);
    let reply = refused.initialize().await;
    assert_eq!(reply.status, 429, "{reply:?}");
    let retry_after = reply.retry_after().expect("Retry-After");
    // At most the window, plus a second for the coarse clock's resolution.
    assert!((1..=31).contains(&retry_after), "Retry-After {retry_after}");
    assert!(reply.headers.get("mcp-session-id").is_none());
    let stats = server.stats().await;
    assert_eq!(
        (&stats["created"], &stats["rate_limited"]),
        (&json!(2), &json!(1))
    );
    // The limit is on creation only: requests in open sessions go through.
    let mut client = kept;
    for expected in 1..=5 {
        assert_eq!(client.counter().await.unwrap(), expected);
    }
}
