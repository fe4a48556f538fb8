//! Idle-first eviction on the example server, anonymous clients over HTTP
//! (issue 12, "What must be shown"): with `--max-sessions 10 --on-full
//! evict-idle`, six sessions each calling a tool every 50 ms survive while
//! 40 new sessions are initialized (4 at a time) and then left idle, and
//! live ≤ 10 throughout. With `--on-full evict` the same run evicts them,
//! which shows the test can fail.

mod rmcp_support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use rmcp_support::{RawClient, start};

struct Outcome {
    /// Tool calls of the six active sessions that got 404, or whose stream
    /// was cut short by an eviction during the call.
    active_404: u64,
    /// Tool calls of the six active sessions that succeeded.
    active_ok: u64,
    /// The most sessions the monitor saw open.
    max_live: usize,
    /// Flood sessions that initialized.
    flooded: usize,
}

async fn run(on_full: &str) -> Outcome {
    let server = start(&[
        "--max-sessions",
        "10",
        "--on-full",
        on_full,
        "--rate-limit",
        "off",
    ])
    .await;
    let url = server.url();
    let flooding = Arc::new(AtomicBool::new(true));
    let (ok, not_found) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));

    // The monitor: the registry's own count, as often as it can.
    let max_live = Arc::new(AtomicUsize::new(0));
    let monitor = tokio::spawn({
        let (manager, flooding, max_live) =
            (server.manager.clone(), flooding.clone(), max_live.clone());
        async move {
            while flooding.load(Ordering::SeqCst) {
                max_live.fetch_max(manager.registry().len(), Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        }
    });

    // Six active sessions: initialized, then a tool call every 50 ms until
    // the flood is over (and a last one after it).
    let mut active = Vec::new();
    for _ in 0..6 {
        let mut client = RawClient::new(&url);
        assert_eq!(client.initialize().await.status, 200);
        assert!(client.counter().await.is_ok(), "first call");
        active.push(client);
    }
    let users: Vec<_> = active
        .into_iter()
        .map(|mut client| {
            let (flooding, ok, not_found) = (flooding.clone(), ok.clone(), not_found.clone());
            tokio::spawn(async move {
                loop {
                    let still_flooding = flooding.load(Ordering::SeqCst);
                    match client.counter().await {
                        Ok(_) => ok.fetch_add(1, Ordering::SeqCst),
                        Err(reply) => {
                            // 404, or evicted while this call was in flight.
                            assert!(reply.status == 404 || reply.cut_short(), "{reply:?}");
                            not_found.fetch_add(1, Ordering::SeqCst)
                        }
                    };
                    if !still_flooding {
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            })
        })
        .collect();

    // The flood: 40 sessions, 4 at a time (the room the six active sessions
    // leave: with more at once, evict-idle closes a flood session still in
    // its own initialize, answered 503), initialized and left idle.
    let mut flooded = 0;
    for _ in 0..10 {
        let batch: Vec<_> = (0..4)
            .map(|_| {
                let url = url.clone();
                tokio::spawn(async move { RawClient::new(&url).initialize().await.status })
            })
            .collect();
        for join in batch {
            let status = join.await.unwrap();
            assert_eq!(status, 200);
            flooded += 1;
        }
        // Let the users' next calls land between batches.
        tokio::time::sleep(Duration::from_millis(60)).await;
    }
    flooding.store(false, Ordering::SeqCst);
    for user in users {
        user.await.unwrap();
    }
    monitor.await.unwrap();
    let live = server.manager.registry().len();
    assert!(live <= 10, "{live} live");
    eprintln!(
        "--on-full {on_full}: active calls ok {}, 404 {}; max live {}; evicted {}",
        ok.load(Ordering::SeqCst),
        not_found.load(Ordering::SeqCst),
        max_live.load(Ordering::SeqCst),
        server.manager.registry().stats().evicted
    );
    Outcome {
        active_404: not_found.load(Ordering::SeqCst),
        active_ok: ok.load(Ordering::SeqCst),
        max_live: max_live.load(Ordering::SeqCst).max(live),
        flooded,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn evict_idle_keeps_the_six_active_sessions() {
    let outcome = run("evict-idle").await;
    assert_eq!(outcome.flooded, 40);
    assert!(outcome.max_live <= 10, "max live {}", outcome.max_live);
    assert_eq!(
        outcome.active_404, 0,
        "an active session was evicted ({} calls ok)",
        outcome.active_ok
    );
    assert!(outcome.active_ok >= 6 * 5, "{} calls", outcome.active_ok);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn evict_oldest_evicts_them_in_the_same_run() {
    let outcome = run("evict").await;
    assert_eq!(outcome.flooded, 40);
    assert!(outcome.max_live <= 10, "max live {}", outcome.max_live);
    // Every active session is older than the flood: FIFO evicts all six.
    assert!(
        outcome.active_404 >= 6,
        "FIFO should evict the active sessions: {} 404s",
        outcome.active_404
    );
}
