//! The three scenarios: steady, flood, recovery. Every worker owns its
//! connection and its figures; they are merged after the run (no lock on
//! the hot path: the only shared state is one atomic ticket counter).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::client::{COUNTER, Conn, ECHO, Outcome, Target, is_result};

/// Latency percentiles (ms) of a sorted list of µs.
#[derive(Clone, Copy, Debug, Default, Serialize)]
pub struct Latency {
    /// Samples.
    pub count: usize,
    /// Median, ms.
    pub p50_ms: f64,
    /// 99th percentile, ms.
    pub p99_ms: f64,
    /// Largest, ms.
    pub max_ms: f64,
}

impl Latency {
    fn of(mut micros: Vec<u32>) -> Self {
        if micros.is_empty() {
            return Self::default();
        }
        micros.sort_unstable();
        let at = |q: f64| micros[((micros.len() - 1) as f64 * q).round() as usize] as f64 / 1000.0;
        Self {
            count: micros.len(),
            p50_ms: at(0.50),
            p99_ms: at(0.99),
            max_ms: at(1.0),
        }
    }
}

/// Answers by status class.
#[derive(Clone, Copy, Debug, Default, Serialize)]
pub struct Statuses {
    /// 200 (for `initialize`: a session was created).
    pub ok: u64,
    /// 429 Too Many Requests.
    pub s429: u64,
    /// 503 Service Unavailable.
    pub s503: u64,
    /// 404 (a session not found: evicted or expired).
    pub s404: u64,
    /// Any other status.
    pub other: u64,
    /// No answer within the request timeout.
    pub timeouts: u64,
    /// Connection refused, reset or closed.
    pub failed: u64,
}

impl Statuses {
    fn count(&mut self, outcome: &Outcome) {
        match outcome {
            Outcome::Reply { status: 200, .. } => self.ok += 1,
            Outcome::Reply { status: 429, .. } => self.s429 += 1,
            Outcome::Reply { status: 503, .. } => self.s503 += 1,
            Outcome::Reply { status: 404, .. } => self.s404 += 1,
            Outcome::Reply { .. } => self.other += 1,
            Outcome::Timeout => self.timeouts += 1,
            Outcome::Failed => self.failed += 1,
        }
    }

    fn add(&mut self, o: &Statuses) {
        self.ok += o.ok;
        self.s429 += o.s429;
        self.s503 += o.s503;
        self.s404 += o.s404;
        self.other += o.other;
        self.timeouts += o.timeouts;
        self.failed += o.failed;
    }
}

/// Settings of a run.
#[derive(Clone, Debug, Serialize)]
pub struct Plan {
    /// Sessions opened for the steady phase.
    pub steady_sessions: usize,
    /// Connections calling `echo`.
    pub steady_connections: usize,
    /// How long, s.
    pub steady_secs: f64,
    /// `initialize` requests in the flood.
    pub flood_requests: usize,
    /// Connections sending them.
    pub flood_connections: usize,
    /// Victim sessions calling `counter`.
    pub victims: usize,
    /// Pause between a victim's calls, ms.
    pub victim_every_ms: u64,
    /// Longest wait for the recovery, s.
    pub recovery_max_secs: f64,
    /// Per-request timeout, s.
    pub timeout_secs: f64,
}

/// The steady phase.
#[derive(Debug, Default, Serialize)]
pub struct Steady {
    /// Sessions opened (of `steady_sessions`).
    pub sessions_opened: usize,
    /// Successful `echo` calls per second.
    pub requests_per_sec: f64,
    /// `echo` latency.
    pub latency: Latency,
    /// Answers.
    pub statuses: Statuses,
    /// Server RSS at the end, KiB.
    pub rss_kib: u64,
}

/// The flood phase.
#[derive(Debug, Default, Serialize)]
pub struct Flood {
    /// The flood's answers.
    pub statuses: Statuses,
    /// How long the flood took, s.
    pub secs: f64,
    /// Server RSS before it, KiB.
    pub rss_before_kib: u64,
    /// Peak server RSS during it, KiB.
    pub rss_peak_kib: u64,
    /// Victims' `counter` latency.
    pub victim_latency: Latency,
    /// Victims' answers.
    pub victim_statuses: Statuses,
    /// Victims that lost their session (a 404) at least once.
    pub victims_evicted: usize,
    /// Live sessions right after (from the server's `/stats`), if known.
    pub live_after: Option<i64>,
    /// A new client could open a session and call `echo` after the flood.
    pub answering_after: bool,
}

/// The recovery phase.
#[derive(Debug, Default, Serialize)]
pub struct Recovery {
    /// Seconds until live sessions were back to the pre-flood count
    /// (`None`: not within `recovery_max_secs`, or unknown).
    pub live_back_secs: Option<f64>,
    /// Seconds until RSS was within 10 % (+4 MiB) of the pre-flood RSS.
    pub rss_back_secs: Option<f64>,
    /// Live sessions at the end.
    pub live_end: Option<i64>,
    /// RSS at the end, KiB.
    pub rss_end_kib: u64,
}

/// Opens `count` sessions over `connections` connections.
pub async fn open_sessions(
    target: &Target,
    timeout: Duration,
    count: usize,
    connections: usize,
) -> Vec<String> {
    let mut tasks = Vec::new();
    for c in 0..connections {
        let share = count / connections + usize::from(c < count % connections);
        let mut conn = Conn::new(target.clone(), timeout);
        tasks.push(tokio::spawn(async move {
            let mut ids = Vec::with_capacity(share);
            for _ in 0..share {
                if let Some(id) = conn.open_session().await {
                    ids.push(id);
                }
            }
            ids
        }));
    }
    let mut ids = Vec::with_capacity(count);
    for task in tasks {
        ids.extend(task.await.expect("opener"));
    }
    ids
}

/// DELETEs every session, over `connections` connections.
pub async fn close_sessions(
    target: &Target,
    timeout: Duration,
    ids: Vec<String>,
    connections: usize,
) {
    let chunk = ids.len().div_ceil(connections.max(1)).max(1);
    let mut tasks = Vec::new();
    for part in ids.chunks(chunk) {
        let part = part.to_vec();
        let mut conn = Conn::new(target.clone(), timeout);
        tasks.push(tokio::spawn(async move {
            for id in part {
                conn.send(Some(&id), None).await;
            }
        }));
    }
    for task in tasks {
        let _ = task.await;
    }
}

/// Steady: `steady_connections` workers call `echo` round-robin over the
/// open sessions for `steady_secs`.
pub async fn steady(target: &Target, plan: &Plan, ids: &[String]) -> (Steady, Vec<String>) {
    let timeout = Duration::from_secs_f64(plan.timeout_secs);
    let run = Duration::from_secs_f64(plan.steady_secs);
    let mut tasks = Vec::new();
    let workers = plan.steady_connections.min(ids.len()).max(1);
    for w in 0..workers {
        let mine: Vec<String> = ids.iter().skip(w).step_by(workers).cloned().collect();
        let mut conn = Conn::new(target.clone(), timeout);
        tasks.push(tokio::spawn(async move {
            let mut micros = Vec::new();
            let mut statuses = Statuses::default();
            let end = Instant::now() + run;
            let mut i = 0;
            while Instant::now() < end && !mine.is_empty() {
                let began = Instant::now();
                let outcome = conn.send(Some(&mine[i % mine.len()]), Some(ECHO)).await;
                i += 1;
                statuses.count(&outcome);
                if let Outcome::Reply {
                    status: 200, body, ..
                } = &outcome
                    && is_result(body)
                {
                    micros.push(began.elapsed().as_micros().min(u32::MAX as u128) as u32);
                }
            }
            (micros, statuses)
        }));
    }
    let began = Instant::now();
    let mut all = Vec::new();
    let mut statuses = Statuses::default();
    for task in tasks {
        let (micros, s) = task.await.expect("steady worker");
        all.extend(micros);
        statuses.add(&s);
    }
    let secs = began.elapsed().as_secs_f64().max(plan.steady_secs);
    let ok = all.len();
    (
        Steady {
            sessions_opened: ids.len(),
            requests_per_sec: ok as f64 / secs,
            latency: Latency::of(all),
            statuses,
            rss_kib: 0,
        },
        ids.to_vec(),
    )
}

/// One victim call: (ms since the epoch, latency ms, status; 0 = timeout
/// or failure).
pub type VictimPoint = (u64, f64, u16);

/// Victims: each opens a session and calls `counter` every
/// `victim_every_ms` until `stop`; on a 404 it re-initializes.
pub fn spawn_victims(
    target: &Target,
    plan: &Plan,
    epoch: Instant,
    stop: Arc<AtomicBool>,
) -> Vec<tokio::task::JoinHandle<(Vec<VictimPoint>, Statuses, bool)>> {
    let timeout = Duration::from_secs_f64(plan.timeout_secs);
    let every = Duration::from_millis(plan.victim_every_ms);
    (0..plan.victims)
        .map(|_| {
            let mut conn = Conn::new(target.clone(), timeout);
            let stop = stop.clone();
            tokio::spawn(async move {
                let mut points = Vec::new();
                let mut statuses = Statuses::default();
                let mut evicted = false;
                let mut session = conn.open_session().await;
                let mut ticker = tokio::time::interval(every);
                ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                while !stop.load(Ordering::Relaxed) {
                    ticker.tick().await;
                    let Some(id) = &session else {
                        session = conn.open_session().await;
                        continue;
                    };
                    let began = Instant::now();
                    let outcome = conn.send(Some(id), Some(COUNTER)).await;
                    let ms = began.elapsed().as_secs_f64() * 1000.0;
                    statuses.count(&outcome);
                    let status = match &outcome {
                        Outcome::Reply { status, .. } => *status,
                        _ => 0,
                    };
                    points.push((epoch.elapsed().as_millis() as u64, ms, status));
                    if status == 404 {
                        evicted = true;
                        session = conn.open_session().await;
                    }
                }
                (points, statuses, evicted)
            })
        })
        .collect()
}

/// The flood: `flood_requests` `initialize`s (no handshake completion, no
/// DELETE: an attacker's cheapest request) over `flood_connections`.
pub async fn flood(target: &Target, plan: &Plan) -> (Statuses, f64) {
    let timeout = Duration::from_secs_f64(plan.timeout_secs);
    let tickets = Arc::new(AtomicI64::new(plan.flood_requests as i64));
    let began = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..plan.flood_connections {
        let tickets = tickets.clone();
        let mut conn = Conn::new(target.clone(), timeout);
        tasks.push(tokio::spawn(async move {
            let mut statuses = Statuses::default();
            while tickets.fetch_sub(1, Ordering::Relaxed) > 0 {
                let outcome = conn.send(None, Some(crate::client::INITIALIZE)).await;
                statuses.count(&outcome);
            }
            statuses
        }));
    }
    let mut statuses = Statuses::default();
    for task in tasks {
        statuses.add(&task.await.expect("flooder"));
    }
    (statuses, began.elapsed().as_secs_f64())
}

/// Whether a fresh client can open a session and call `echo`.
pub async fn answering(target: &Target, timeout: Duration) -> bool {
    let mut conn = Conn::new(target.clone(), timeout);
    for _ in 0..3 {
        if let Some(id) = conn.open_session().await
            && let Outcome::Reply {
                status: 200, body, ..
            } = conn.send(Some(&id), Some(ECHO)).await
            && is_result(&body)
        {
            conn.send(Some(&id), None).await;
            return true;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    false
}

/// `latency` of a victim run.
pub fn victim_latency(points: &[VictimPoint]) -> Latency {
    Latency::of(
        points
            .iter()
            .filter(|p| p.2 == 200)
            .map(|p| (p.1 * 1000.0) as u32)
            .collect(),
    )
}
