//! Chaos: two OS processes (this test binary re-executed), each with
//! creators and lookups, run for 60 s (`MSC_CHAOS_SECS` to change it)
//! while their Redis is frozen (SIGSTOP / SIGCONT), killed and restarted
//! (empty) on a seeded random schedule (`MSC_CHAOS_SEED` to replay one;
//! the seed and the schedule are printed). Shown:
//! - a monitor polling Redis never sees more live sessions than the bound;
//! - every call returns within its timeout (503 while Redis is away, never
//!   a panic or a hang);
//! - after recovery and one init deadline, the live sessions are exactly
//!   the sessions the clients hold: no leaked slot.

mod redis_support;

use std::collections::BTreeSet;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use mcp_session_core::SessionId;
use redis_support::RedisServer;

const PREFIX: &str = "chaos";
const MAX: usize = 48;
const CALL_TIMEOUT: Duration = Duration::from_millis(400);
const INIT_TIMEOUT: Duration = Duration::from_secs(2);
/// Scheduling slack on a loaded 2-core machine, on top of the timeout.
const SLACK: Duration = Duration::from_millis(600);
const CHILD_URL: &str = "MSC_REDIS_CHAOS_CHILD_URL";
const CHILD_UNTIL: &str = "MSC_REDIS_CHAOS_CHILD_UNTIL_MS";

fn builder() -> mcp_session_core::integrations::redis::RedisRegistryBuilder {
    redis_support::builder()
        .prefix(PREFIX)
        .max_sessions(MAX)
        .init_timeout(INIT_TIMEOUT)
        .call_timeout(CALL_TIMEOUT)
}

fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

/// splitmix64: a seeded, printed, replayable schedule.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn ms(&mut self, low: u64, high: u64) -> Duration {
        Duration::from_millis(low + self.next() % (high - low + 1))
    }
}

/// One timed call: its result, and the slowest call so far updated.
async fn timed<T>(slowest: &AtomicU64, call: impl std::future::Future<Output = T>) -> T {
    let start = Instant::now();
    let out = call.await;
    slowest.fetch_max(start.elapsed().as_millis() as u64, Ordering::Relaxed);
    out
}

/// The child: creators confirm what they create and hold it; lookups drop
/// what Redis no longer has; a creator holding too many closes its oldest.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chaos_child() {
    let (Ok(url), Ok(until)) = (std::env::var(CHILD_URL), std::env::var(CHILD_UNTIL)) else {
        return; // not a child
    };
    let until: u64 = until.parse().unwrap();
    // Redis may be down right now: connecting is retried.
    let registry = loop {
        match builder().connect(&url).await {
            Ok(registry) => break registry,
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    };
    let held: Arc<Mutex<Vec<SessionId>>> = Arc::default();
    // Sessions whose confirm got no answer: closed once Redis is back.
    let unsure: Arc<Mutex<Vec<SessionId>>> = Arc::default();
    let slowest = Arc::new(AtomicU64::new(0));
    let calls = Arc::new(AtomicU64::new(0));
    let unavailable = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for worker in 0..4u64 {
        let (registry, held, unsure) = (registry.clone(), held.clone(), unsure.clone());
        let (slowest, calls, unavailable) = (slowest.clone(), calls.clone(), unavailable.clone());
        tasks.push(tokio::spawn(async move {
            let mut i = 0u64;
            while unix_ms() < until {
                i += 1;
                calls.fetch_add(1, Ordering::Relaxed);
                let creator = worker < 2;
                let result = if creator {
                    match timed(&slowest, registry.create(None)).await {
                        Ok(created) => {
                            calls.fetch_add(1, Ordering::Relaxed);
                            match timed(&slowest, registry.confirm(&created.id)).await {
                                Ok(()) => {
                                    let oldest = {
                                        let mut guard = held.lock().unwrap();
                                        guard.push(created.id);
                                        (guard.len() > 40).then(|| guard.remove(0))
                                    };
                                    if let Some(oldest) = oldest {
                                        calls.fetch_add(1, Ordering::Relaxed);
                                        if timed(&slowest, registry.close(&oldest)).await.is_err() {
                                            // Not known to be closed: still held.
                                            held.lock().unwrap().push(oldest);
                                        }
                                    }
                                    Ok(())
                                }
                                // Unknown outcome (it may be confirmed): close
                                // it at the end; not found: evicted already.
                                Err(error) => {
                                    if error.is_unavailable() {
                                        unsure.lock().unwrap().push(created.id);
                                    }
                                    Err(error)
                                }
                            }
                        }
                        Err(error) => Err(error),
                    }
                } else {
                    let id = {
                        let held = held.lock().unwrap();
                        (!held.is_empty()).then(|| held[(i as usize) % held.len()])
                    };
                    match id {
                        None => {
                            tokio::time::sleep(Duration::from_millis(5)).await;
                            Ok(())
                        }
                        Some(id) => match timed(&slowest, registry.lookup(&id, None)).await {
                            Err(error) if error.is_not_found() => {
                                held.lock().unwrap().retain(|h| *h != id);
                                Ok(())
                            }
                            other => other,
                        },
                    }
                };
                if let Err(error) = result {
                    if error.is_unavailable() {
                        unavailable.fetch_add(1, Ordering::Relaxed);
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    } else {
                        assert!(error.is_not_found(), "unexpected error: {error}");
                    }
                }
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    // The chaos is over (the parent restarted and thawed Redis by now);
    // the other process stops creating too. What do we really hold?
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    let unsure = unsure.lock().unwrap().clone();
    for id in unsure {
        while let Err(error) = registry.close(&id).await {
            assert!(error.is_unavailable(), "{error}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    let mut kept = Vec::new();
    let held = held.lock().unwrap().clone();
    for id in held {
        let found = loop {
            match registry.lookup(&id, None).await {
                Ok(()) => break true,
                Err(error) if error.is_not_found() => break false,
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        };
        if found {
            kept.push(id.to_string());
        }
    }
    println!(
        "\nCHILD_REPORT calls={} unavailable={} slowest_ms={} held={}",
        calls.load(Ordering::Relaxed),
        unavailable.load(Ordering::Relaxed),
        slowest.load(Ordering::Relaxed),
        kept.join(",")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn creators_in_two_processes_survive_a_chaotic_redis() {
    if std::env::var(CHILD_URL).is_ok() {
        return;
    }
    let secs: u64 = std::env::var("MSC_CHAOS_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(60);
    let seed: u64 = std::env::var("MSC_CHAOS_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(unix_ms);
    println!("chaos: {secs} s, seed {seed} (MSC_CHAOS_SEED={seed} replays the schedule)");
    let mut rng = Rng(seed);
    let mut server = RedisServer::start();
    let url = server.url();
    let registry = builder().connect(&url).await.unwrap();

    // The monitor: the live count as often as Redis answers.
    let stop = Arc::new(AtomicBool::new(false));
    let monitor = {
        let (stop, url) = (stop.clone(), url.clone());
        tokio::spawn(async move {
            let client = redis::Client::open(url).unwrap();
            let (mut max_seen, mut polls) = (0u64, 0u64);
            let mut conn = None;
            while !stop.load(Ordering::Relaxed) {
                if conn.is_none() {
                    conn = tokio::time::timeout(
                        Duration::from_millis(200),
                        client.get_multiplexed_async_connection(),
                    )
                    .await
                    .ok()
                    .and_then(Result::ok);
                    if conn.is_none() {
                        tokio::time::sleep(Duration::from_millis(20)).await;
                        continue;
                    }
                }
                let c = conn.as_mut().unwrap();
                let live = tokio::time::timeout(
                    Duration::from_millis(200),
                    redis::cmd("ZCARD")
                        .arg(format!("{{{PREFIX}}}:fifo"))
                        .query_async::<u64>(c),
                )
                .await;
                match live {
                    Ok(Ok(live)) => {
                        max_seen = max_seen.max(live);
                        polls += 1;
                    }
                    _ => conn = None,
                }
            }
            (max_seen, polls)
        })
    };

    let until = unix_ms() + secs * 1_000;
    let exe = std::env::current_exe().unwrap();
    let children: Vec<_> = (0..2)
        .map(|_| {
            Command::new(&exe)
                .args([
                    "--exact",
                    "chaos_child",
                    "--nocapture",
                    "--test-threads",
                    "1",
                ])
                .env(CHILD_URL, &url)
                .env(CHILD_UNTIL, until.to_string())
                .stdout(Stdio::piped())
                .stderr(Stdio::inherit())
                .spawn()
                .expect("spawn a child process")
        })
        .collect();

    // The schedule: calm, then a fault, until the end; Redis is up and
    // thawed when it ends.
    let start = Instant::now();
    let mut faults = Vec::new();
    while unix_ms() + 3_000 < until {
        tokio::time::sleep(rng.ms(1_000, 3_000)).await;
        let at = start.elapsed().as_millis();
        match rng.next() % 3 {
            0 => {
                let pause = rng.ms(300, 2_000);
                faults.push(format!("{at} ms: SIGSTOP for {pause:?}"));
                server.freeze(true);
                tokio::time::sleep(pause).await;
                server.freeze(false);
            }
            1 => {
                let down = rng.ms(200, 1_500);
                faults.push(format!("{at} ms: SIGKILL, restart after {down:?}"));
                server.kill();
                tokio::time::sleep(down).await;
                server.restart();
            }
            _ => {
                let pause = rng.ms(100, 600);
                faults.push(format!(
                    "{at} ms: SIGSTOP for {pause:?}, then SIGKILL and restart"
                ));
                server.freeze(true);
                tokio::time::sleep(pause).await;
                server.kill();
                server.restart();
            }
        }
        println!("  {}", faults.last().unwrap());
    }

    let mut held = BTreeSet::new();
    let (mut calls, mut unavailable, mut slowest) = (0u64, 0u64, 0u64);
    for child in children {
        let output = tokio::task::spawn_blocking(move || child.wait_with_output())
            .await
            .unwrap()
            .unwrap();
        assert!(output.status.success(), "child failed: {:?}", output.status);
        let stdout = String::from_utf8_lossy(&output.stdout);
        let report = stdout
            .lines()
            .find_map(|l| l.split_once("CHILD_REPORT ").map(|(_, r)| r.to_owned()))
            .unwrap_or_else(|| panic!("the child reports: {stdout}"));
        for field in report.split_whitespace() {
            let (name, value) = field.split_once('=').unwrap();
            match name {
                "calls" => calls += value.parse::<u64>().unwrap(),
                "unavailable" => unavailable += value.parse::<u64>().unwrap(),
                "slowest_ms" => slowest = slowest.max(value.parse().unwrap()),
                "held" => held.extend(
                    value
                        .split(',')
                        .filter(|v| !v.is_empty())
                        .map(str::to_owned),
                ),
                _ => {}
            }
        }
    }
    stop.store(true, Ordering::Relaxed);
    let (max_seen, polls) = monitor.await.unwrap();

    // One init deadline after the last create: pending sessions of lost
    // replies are reclaimed.
    tokio::time::sleep(INIT_TIMEOUT + Duration::from_millis(200)).await;
    registry.purge_expired().await.unwrap();
    let mut conn = redis::Client::open(url)
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let live: BTreeSet<String> = redis::cmd("ZRANGE")
        .arg(format!("{{{PREFIX}}}:fifo"))
        .arg(0)
        .arg(-1)
        .query_async::<Vec<String>>(&mut conn)
        .await
        .unwrap()
        .into_iter()
        .collect();
    let stats = registry.stats().await.unwrap();
    println!(
        "chaos: {} faults; {calls} calls, {unavailable} unavailable (503), slowest {slowest} ms; \
         monitor {polls} polls, max live {max_seen} (bound {MAX}); held {} = live {}; \
         created {} (init_timeout {}, evicted {}, closed {})",
        faults.len(),
        held.len(),
        live.len(),
        stats.created,
        stats.init_timeout,
        stats.evicted,
        stats.closed
    );
    assert!(
        faults.len() >= 5,
        "the schedule ran ({} faults)",
        faults.len()
    );
    assert!(polls > 100, "the monitor polled ({polls})");
    assert!(
        max_seen <= MAX as u64,
        "the monitor saw {max_seen} live sessions"
    );
    assert!(unavailable > 0, "Redis was away at some point");
    assert!(
        Duration::from_millis(slowest) <= CALL_TIMEOUT + SLACK,
        "a call took {slowest} ms (timeout {CALL_TIMEOUT:?})"
    );
    assert_eq!(live, held, "live sessions = the sessions the clients hold");
}
