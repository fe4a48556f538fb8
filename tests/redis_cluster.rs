//! Fleet mode on a real Redis Cluster (three local masters): two example
//! servers started with `--redis-cluster` share a session (initialize on A,
//! continue on B with its state, evicted through B, 404 on A), and the
//! registry's hash slot migrates to another master under load (MOVED / ASK
//! / TRYAGAIN followed by the cluster client) with operations continuing
//! and the bound kept. (The two-process exactness test on a cluster is in
//! `redis_exactness.rs`.)

mod fleet_support;
mod redis_support;
mod rmcp_support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use fleet_support::Instance;
use redis_support::cluster::RedisCluster;
use rmcp_support::{RawClient, eventually};

/// An example server on `cluster`, checked to be in cluster mode.
async fn start(cluster: &RedisCluster, flags: &[&str]) -> Instance {
    let seeds = cluster.seeds().join(",");
    let instance = Instance::start(["--redis-cluster", &seeds], flags).await;
    assert!(instance.manager.registry().is_cluster());
    instance
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_moves_between_instances_on_a_cluster() {
    let cluster = RedisCluster::start();
    let a = start(&cluster, &["--max-sessions", "3"]).await;
    let b = start(&cluster, &["--max-sessions", "3"]).await;

    let mut client = RawClient::new(&a.url());
    assert_eq!(client.initialize().await.status, 200);
    let id = client.session.clone().unwrap();
    assert_eq!(client.counter().await.unwrap(), 1);
    assert_eq!(client.counter().await.unwrap(), 2);
    assert!(a.hosts(&id) && !b.hosts(&id));

    // Continue on B: restored from the cluster, state intact.
    client.url = b.url();
    assert_eq!(client.counter().await.unwrap(), 3);
    assert!(b.hosts(&id));

    // Evict it through B; A hears of it and answers 404.
    for _ in 0..3 {
        let mut other = RawClient::new(&b.url());
        assert_eq!(other.initialize().await.status, 200);
    }
    assert!(
        eventually(Duration::from_secs(1), async || !a.hosts(&id)).await,
        "A stopped the evicted session's worker within 1 s"
    );
    client.url = a.url();
    assert_eq!(client.counter().await.unwrap_err().status, 404);
    let stats = a.manager.registry().stats().await.unwrap();
    assert_eq!((stats.live, stats.evicted), (3, 1));
}

/// A cluster node: its id, its port and the slot ranges it owns.
type Node = (String, u16, Vec<(u16, u16)>);

/// `CLUSTER NODES` of the node on `port`.
fn nodes(port: u16) -> Vec<Node> {
    let mut conn = admin(port);
    let text: String = redis::cmd("CLUSTER").arg("NODES").query(&mut conn).unwrap();
    text.lines()
        .filter(|line| !line.trim().is_empty())
        .map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let node_port = fields[1].split(['@', ':']).nth(1).unwrap().parse().unwrap();
            let slots = fields[8..]
                .iter()
                .filter(|s| !s.starts_with('['))
                .map(|s| match s.split_once('-') {
                    Some((a, b)) => (a.parse().unwrap(), b.parse().unwrap()),
                    None => (s.parse().unwrap(), s.parse().unwrap()),
                })
                .collect();
            (fields[0].to_owned(), node_port, slots)
        })
        .collect()
}

fn admin(port: u16) -> redis::Connection {
    redis::Client::open(format!("redis://127.0.0.1:{port}/"))
        .unwrap()
        .get_connection()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_registry_slot_migrates_under_load() {
    const MAX: usize = 8;
    let cluster = RedisCluster::start();
    let registry = redis_support::builder()
        .prefix("migrate")
        .max_sessions(MAX)
        .call_timeout(Duration::from_secs(2))
        .connect_cluster(&cluster.seeds())
        .await
        .unwrap();
    let mut conn = admin(cluster.ports[0]);
    let slot: u16 = redis::cmd("CLUSTER")
        .arg("KEYSLOT")
        .arg("{migrate}")
        .query(&mut conn)
        .unwrap();
    let all = nodes(cluster.ports[0]);
    let (src_id, src_port, _) = all
        .iter()
        .find(|(_, _, ranges)| ranges.iter().any(|(a, b)| (*a..=*b).contains(&slot)))
        .cloned()
        .expect("an owner of the slot");
    let (dst_id, dst_port, _) = all
        .iter()
        .find(|(id, _, _)| *id != src_id)
        .cloned()
        .unwrap();

    // Load: 4 tasks creating, looking up and closing sessions.
    let stop = Arc::new(AtomicBool::new(false));
    let (ok, failed) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let slowest = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for t in 0..4u64 {
        let (registry, stop) = (registry.clone(), stop.clone());
        let (ok, failed, slowest) = (ok.clone(), failed.clone(), slowest.clone());
        tasks.push(tokio::spawn(async move {
            let mut i = 0u64;
            while !stop.load(Ordering::Relaxed) {
                i += 1;
                let start = Instant::now();
                let result = async {
                    let session = registry.create(None).await?;
                    registry.lookup(&session.id, None).await.or_else(|e| {
                        // Evicted by another task meanwhile: fine.
                        if e.is_not_found() { Ok(()) } else { Err(e) }
                    })?;
                    if (i + t).is_multiple_of(3) {
                        registry.close(&session.id).await?;
                    }
                    Ok::<_, mcp_session_core::integrations::redis::StoreError>(())
                }
                .await;
                slowest.fetch_max(start.elapsed().as_millis() as u64, Ordering::Relaxed);
                match result {
                    Ok(()) => ok.fetch_add(1, Ordering::Relaxed),
                    Err(error) => {
                        assert!(error.is_unavailable(), "{error}");
                        if failed.fetch_add(1, Ordering::Relaxed) == 0 {
                            println!("first failure: {error}");
                        }
                        0
                    }
                };
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before_migration = ok.load(Ordering::Relaxed);

    // Migrate the slot, the way `redis-cli --cluster reshard` does it, with
    // a pause in the MIGRATING/IMPORTING state (ASK, TRYAGAIN) and one
    // after the keys moved but before the slot's owner changes.
    let mut src = admin(src_port);
    let mut dst = admin(dst_port);
    let setslot = |conn: &mut redis::Connection, args: &[&str]| {
        let mut cmd = redis::cmd("CLUSTER");
        cmd.arg("SETSLOT").arg(slot);
        for a in args {
            cmd.arg(*a);
        }
        let () = cmd.query(conn).unwrap();
    };
    setslot(&mut dst, &["IMPORTING", &src_id]);
    setslot(&mut src, &["MIGRATING", &dst_id]);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut moved = 0;
    loop {
        let keys: Vec<String> = redis::cmd("CLUSTER")
            .arg("GETKEYSINSLOT")
            .arg(slot)
            .arg(100)
            .query(&mut src)
            .unwrap();
        if keys.is_empty() {
            break;
        }
        moved += keys.len();
        let () = redis::cmd("MIGRATE")
            .arg("127.0.0.1")
            .arg(dst_port)
            .arg("")
            .arg(0)
            .arg(5000)
            .arg("KEYS")
            .arg(&keys)
            .query(&mut src)
            .unwrap();
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    for (_, port, _) in &all {
        setslot(&mut admin(*port), &["NODE", &dst_id]);
    }
    let at_migration = ok.load(Ordering::Relaxed);
    tokio::time::sleep(Duration::from_millis(700)).await;
    stop.store(true, Ordering::Relaxed);
    for task in tasks {
        task.await.unwrap();
    }
    let (ok, failed) = (ok.load(Ordering::Relaxed), failed.load(Ordering::Relaxed));
    let slowest = Duration::from_millis(slowest.load(Ordering::Relaxed));
    println!(
        "slot {slot} moved {src_port} -> {dst_port} ({moved} keys): {ok} iterations ok \
         ({before_migration} before, {} during, {} after), {failed} failed, slowest {slowest:?}",
        at_migration - before_migration,
        ok - at_migration
    );
    assert!(moved >= 5, "the registry's keys moved ({moved})");
    assert!(ok > at_migration, "operations continue after the migration");
    assert_eq!(
        failed, 0,
        "every redirection followed within the call timeout"
    );
    assert!(
        slowest < Duration::from_secs(6),
        "each iteration (3 calls) within its timeouts: {slowest:?}"
    );

    // The slot now lives on the destination, and the registry is whole.
    let mut direct = admin(dst_port);
    let exists: i64 = redis::cmd("EXISTS")
        .arg("{migrate}:fifo")
        .query(&mut direct)
        .unwrap();
    assert_eq!(exists, 1, "the FIFO is on the new owner");
    let stats = registry.stats().await.unwrap();
    assert!(stats.live <= MAX as u64);
    assert_eq!(stats.live + stats.closed_total(), stats.created);
    let session = registry.create(None).await.unwrap();
    registry.lookup(&session.id, None).await.unwrap();
}
