//! Global exactness across OS processes: two processes (this test binary
//! re-executed as children), each with 4 concurrent creators, share one
//! `max_sessions` of 8 over 10,000 creates in all, while a monitor polls
//! Redis for the live count. It must never see more than 8, and at the end
//! live + close events = created. Once on one node, once on a three-master
//! Redis Cluster.

mod redis_support;

use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use mcp_session_core::integrations::redis::{EventsFrom, RedisRegistry};
use redis_support::RedisServer;
use redis_support::cluster::RedisCluster;

const PREFIX: &str = "exact";
const MAX: usize = 8;
const PROCESSES: u64 = 2;
const CREATORS: u64 = 4;
const TOTAL: u64 = 10_000;
/// A node's URL, or `cluster:` and the seed URLs, comma-separated.
const CHILD_ENV: &str = "MSC_REDIS_EXACTNESS_CHILD_URL";

async fn connect(target: &str) -> RedisRegistry {
    match target.strip_prefix("cluster:") {
        Some(seeds) => builder()
            .connect_cluster(&seeds.split(',').collect::<Vec<_>>())
            .await
            .expect("connect to the cluster"),
        None => builder().connect(target).await.expect("connect"),
    }
}

fn builder() -> mcp_session_core::integrations::redis::RedisRegistryBuilder {
    redis_support::builder()
        .prefix(PREFIX)
        .max_sessions(MAX)
        .events_maxlen(1_000_000)
        .call_timeout(Duration::from_secs(5))
}

/// The child: runs only when re-executed by `two_processes_never_exceed_the_bound`.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn child_creator_process() {
    let Ok(url) = std::env::var(CHILD_ENV) else {
        return; // not a child: nothing to do
    };
    let registry = connect(&url).await;
    let per_creator = TOTAL / PROCESSES / CREATORS;
    let created = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for _ in 0..CREATORS {
        let registry = registry.clone();
        let created = created.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..per_creator {
                let session = registry.create(None).await.expect("create");
                created.fetch_add(1, Ordering::Relaxed);
                // Some churn: close a few, look up the rest.
                if i % 7 == 0 {
                    registry.close(&session.id).await.expect("close");
                } else {
                    let _ = registry.lookup(&session.id, None).await;
                }
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    println!("\nCHILD_CREATED={}", created.load(Ordering::Relaxed));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_never_exceed_the_bound() {
    if std::env::var(CHILD_ENV).is_ok() {
        return;
    }
    let server = RedisServer::start();
    let client = redis::Client::open(server.url()).unwrap();
    let monitor = client.get_multiplexed_async_connection().await.unwrap();
    exactness(server.url(), monitor).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_never_exceed_the_bound_on_a_cluster() {
    if std::env::var(CHILD_ENV).is_ok() {
        return;
    }
    let cluster = RedisCluster::start();
    let client = redis::cluster::ClusterClient::new(cluster.seeds()).unwrap();
    let monitor = client.get_async_connection().await.unwrap();
    exactness(format!("cluster:{}", cluster.seeds().join(",")), monitor).await;
}

async fn exactness(
    target: String,
    mut monitor_conn: impl redis::aio::ConnectionLike + Send + 'static,
) {
    let registry = connect(&target).await;
    assert_eq!(registry.is_cluster(), target.starts_with("cluster:"));
    let start = Instant::now();

    // The monitor: its own connection, polling ZCARD of the FIFO set (the
    // live sessions) as fast as it can.
    let stop = Arc::new(AtomicBool::new(false));
    let monitor = {
        let stop = stop.clone();
        tokio::spawn(async move {
            let conn = &mut monitor_conn;
            let (mut max_seen, mut polls) = (0u64, 0u64);
            while !stop.load(Ordering::Relaxed) {
                let live: u64 = redis::cmd("ZCARD")
                    .arg(format!("{{{PREFIX}}}:fifo"))
                    .query_async(conn)
                    .await
                    .unwrap();
                max_seen = max_seen.max(live);
                polls += 1;
            }
            (max_seen, polls)
        })
    };

    let exe = std::env::current_exe().unwrap();
    let children: Vec<_> = (0..PROCESSES)
        .map(|_| {
            Command::new(&exe)
                .args([
                    "--exact",
                    "child_creator_process",
                    "--nocapture",
                    "--test-threads",
                    "1",
                ])
                .env(CHILD_ENV, &target)
                .stdout(Stdio::piped())
                .stderr(Stdio::inherit())
                .spawn()
                .expect("spawn a child process")
        })
        .collect();
    let mut created = 0u64;
    for child in children {
        let output = tokio::task::spawn_blocking(move || child.wait_with_output())
            .await
            .unwrap()
            .unwrap();
        assert!(output.status.success(), "child failed: {:?}", output.status);
        let stdout = String::from_utf8_lossy(&output.stdout);
        let line = stdout
            .lines()
            .find_map(|l| l.split_once("CHILD_CREATED=").map(|(_, n)| n))
            .unwrap_or_else(|| panic!("the child reports its count: {stdout}"));
        created += line.trim().parse::<u64>().unwrap();
    }
    stop.store(true, Ordering::Relaxed);
    let (max_seen, polls) = monitor.await.unwrap();
    println!(
        "{target}: {created} creates in {:?}; monitor: {polls} polls, max live {max_seen}",
        start.elapsed()
    );
    assert_eq!(created, TOTAL);
    assert!(polls > 100, "the monitor polled ({polls})");
    assert!(
        max_seen <= MAX as u64,
        "the monitor saw {max_seen} live sessions"
    );
    assert_eq!(max_seen, MAX as u64, "the bound was reached");

    // live + close events = created; counters agree with the stream.
    let stats = registry.stats().await.unwrap();
    assert_eq!(stats.created, TOTAL);
    let mut events = registry.closed_events(EventsFrom::Beginning);
    let mut closes = 0u64;
    while let Ok(Some(Ok(_))) =
        tokio::time::timeout(Duration::from_millis(1_500), events.recv()).await
    {
        closes += 1;
    }
    assert_eq!(stats.live, MAX as u64);
    assert_eq!(stats.live + closes, TOTAL, "live + close events = created");
    assert_eq!(stats.closed_total(), closes);
}
