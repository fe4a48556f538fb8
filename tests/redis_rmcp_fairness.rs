//! Fairness in fleet mode, end to end: two example servers (fleet mode,
//! `--bearer-tokens`) on one private `redis-server`, `--max-sessions 10
//! --max-sessions-per-principal 3`. Alice and Bob hold two sessions each;
//! Mallory initializes 40 sessions, 8 at a time, alternating between the
//! instances. Afterwards Alice's and Bob's four sessions answer on either
//! instance with their state, Mallory holds at most 3, and a monitor
//! polling the fleet's live count never saw more than 10. The same flood
//! without the per-principal cap evicts the victims (so the test can fail).
//! `--rate-limit-per-principal` is one window per principal for the whole
//! fleet: past it either instance answers 429 with `Retry-After`, and the
//! other principals are unaffected.
#![cfg(all(feature = "rmcp", feature = "redis"))]

#[allow(dead_code)] // `Instance::hosts` is for the other fleet tests
mod fleet_support;
mod redis_support;
mod rmcp_support;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use fleet_support::Instance;
use redis_support::RedisServer;
use rmcp_support::RawClient;

const ALICE: &str = "alice-token-0123456789abcdef";
const BOB: &str = "bob-token-0123456789abcdef";
const MALLORY: &str = "mallory-token-0123456789abcdef";

/// A tokens file in a fresh temporary directory.
fn tokens_file() -> PathBuf {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let dir = std::env::temp_dir().join(format!(
        "msc-fleet-fairness-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("tokens");
    std::fs::write(
        &path,
        format!("{ALICE} alice\n{BOB} bob\n{MALLORY} mallory\n"),
    )
    .unwrap();
    path
}

fn client(url: &str, token: &str) -> RawClient {
    let mut client = RawClient::new(url);
    client
        .headers
        .push(("authorization", format!("Bearer {token}")));
    client
}

/// The outcome of one flood: victims alive, Mallory's sessions alive, the
/// peak live count the monitor saw, and the fleet's live count at the end.
struct Outcome {
    victims_alive: usize,
    mallory_alive: usize,
    peak_live: u64,
    final_live: u64,
}

async fn flood(flags: &[&str]) -> Outcome {
    let redis = RedisServer::start();
    let tokens = tokens_file();
    let mut all_flags = vec![
        "--bearer-tokens",
        tokens.to_str().unwrap(),
        "--rate-limit",
        "off",
    ];
    all_flags.extend_from_slice(flags);
    let a = Instance::start(["--redis", &redis.url()], &all_flags).await;
    let b = Instance::start(["--redis", &redis.url()], &all_flags).await;
    let urls = [a.url(), b.url()];

    // Two sessions each for Alice (on A) and Bob (on B), each used once.
    let mut victims = Vec::new();
    for (token, url) in [(ALICE, &urls[0]), (BOB, &urls[1])] {
        for _ in 0..2 {
            let mut c = client(url, token);
            assert_eq!(c.initialize().await.status, 200);
            assert_eq!(c.counter().await.unwrap(), 1);
            victims.push(c);
        }
    }

    // A monitor polls the fleet's live count (Redis) throughout the flood.
    let stop = Arc::new(AtomicBool::new(false));
    let monitor = {
        let (stop, manager) = (stop.clone(), a.manager.clone());
        tokio::spawn(async move {
            let mut peak = 0;
            while !stop.load(Ordering::Relaxed) {
                peak = peak.max(manager.registry().stats().await.unwrap().live);
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
            peak
        })
    };

    // Mallory: 40 initializes, 8 at a time, alternating instances.
    let mut mallory = Vec::new();
    for wave in 0..5 {
        let mut set = tokio::task::JoinSet::new();
        for n in 0..8 {
            let url = urls[(wave * 8 + n) % 2].clone();
            set.spawn(async move {
                let mut c = client(&url, MALLORY);
                let status = c.initialize().await.status;
                (status, c)
            });
        }
        while let Some(done) = set.join_next().await {
            let (status, c) = done.unwrap();
            assert!(matches!(status, 200 | 429 | 503), "flood status {status}");
            if status == 200 {
                mallory.push(c);
            }
        }
    }
    stop.store(true, Ordering::Relaxed);
    let peak_live = monitor.await.unwrap();

    // The victims continue on the other instance, state intact.
    let mut victims_alive = 0;
    for (i, mut c) in victims.into_iter().enumerate() {
        c.url = urls[1 - i / 2].clone();
        match c.counter().await {
            Ok(n) => {
                assert_eq!(n, 2, "victim {i}'s counter survived the move");
                victims_alive += 1;
            }
            Err(reply) => assert_eq!(reply.status, 404, "{reply:?}"),
        }
    }
    let mut mallory_alive = 0;
    for mut c in mallory {
        match c.counter().await {
            Ok(_) => mallory_alive += 1,
            Err(reply) => assert_eq!(reply.status, 404, "{reply:?}"),
        }
    }
    let final_live = a.manager.registry().stats().await.unwrap().live;
    Outcome {
        victims_alive,
        mallory_alive,
        peak_live,
        final_live,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_from_one_principal_churns_only_its_own_sessions_across_the_fleet() {
    let out = flood(&["--max-sessions", "10", "--max-sessions-per-principal", "3"]).await;
    assert_eq!(
        out.victims_alive, 4,
        "Alice's and Bob's sessions all answer"
    );
    assert!(
        (1..=3).contains(&out.mallory_alive),
        "Mallory holds 1..=3 sessions, not {}",
        out.mallory_alive
    );
    assert!(out.peak_live <= 10, "peak live {} > 10", out.peak_live);
    assert_eq!(out.final_live, 4 + out.mallory_alive as u64);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_per_principal_cap_the_flood_evicts_the_victims() {
    let out = flood(&["--max-sessions", "10"]).await;
    assert_eq!(out.victims_alive, 0, "strict FIFO evicts the oldest first");
    assert!(out.peak_live <= 10, "peak live {} > 10", out.peak_live);
    assert_eq!(out.mallory_alive, 10);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_per_principal_rate_limit_holds_across_the_fleet() {
    let redis = RedisServer::start();
    let tokens = tokens_file();
    let flags = [
        "--bearer-tokens",
        tokens.to_str().unwrap(),
        "--rate-limit",
        "off",
        "--rate-limit-per-principal",
        "3/60",
    ];
    let a = Instance::start(["--redis", &redis.url()], &flags).await;
    let b = Instance::start(["--redis", &redis.url()], &flags).await;
    let urls = [a.url(), b.url()];
    for i in 0..3 {
        let status = client(&urls[i % 2], MALLORY).initialize().await.status;
        assert_eq!(status, 200, "Mallory's grant {i}");
    }
    for url in &urls {
        let refused = client(url, MALLORY).initialize().await;
        assert_eq!(refused.status, 429, "{refused:?}");
        let wait = refused.retry_after().expect("Retry-After");
        assert!((59..=61).contains(&wait), "Retry-After {wait}");
    }
    for url in &urls {
        assert_eq!(client(url, ALICE).initialize().await.status, 200);
    }
    let stats = b.manager.registry().stats().await.unwrap();
    assert_eq!(
        (stats.live, stats.rate_limited_principal, stats.rate_limited),
        (5, 2, 0),
        "{stats:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fleet_mode_refuses_what_it_does_not_have() {
    let redis = RedisServer::start();
    let url = redis.url();
    for flags in [&["--on-full", "evict-idle"][..]] {
        let secret = redis_support::secret_file();
        let argv = [
            "mcp_server",
            "--port",
            "0",
            "--redis",
            &url,
            "--redis-secret-file",
            secret.to_str().unwrap(),
        ]
        .into_iter()
        .chain(flags.iter().copied());
        let args = <rmcp_support::app::Args as clap::Parser>::try_parse_from(argv).unwrap();
        let err = match rmcp_support::app::bind_redis(&args).await {
            Ok(_) => panic!("{flags:?} accepted in fleet mode"),
            Err(err) => err.to_string(),
        };
        assert!(err.contains("not available in fleet mode"), "{err}");
    }
}
