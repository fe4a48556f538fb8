//! The speed workloads: every peer, every workload, every thread count, as
//! criterion benches. Each sample runs `iters` operations on each of
//! `threads` worker threads released together by a barrier; the figure is
//! wall time ÷ all operations (the inverse of aggregate throughput), and
//! each sample is also recorded here for the report (see `report.rs`).

use std::collections::VecDeque;
use std::hint::black_box;
use std::sync::{Arc, Barrier, Mutex};
use std::time::{Duration, Instant};

use criterion::Criterion;
use serde::Serialize;

use crate::Settings;
use crate::peers::{Driver, Peer, Visitor, visit_all};

/// One workload; `op` in the report.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Workload {
    /// Look up a live session by the key the store keeps (a parsed id for
    /// the core and the raw map, the id string for the others).
    HitKey,
    /// Look up a live session from the header text (parse, then look up).
    HitText,
    /// Look up a principal-bound handle from its text, presenting the
    /// principal (a 2026-07-28 tool call checking its `handle` argument).
    HandleLookup,
    /// Look up a well-formed id that is not there.
    Miss,
    /// Look up a malformed id.
    Malformed,
    /// Create at capacity: every create evicts the oldest session.
    CreateAtCapacity,
    /// Create a session and close it again (below capacity).
    Churn,
    /// Create a session and take it (single use, `take`): the same as
    /// `Churn` with `take` in place of `close`.
    Take,
    /// Per 20 operations: 18 lookups from header text, 1 create, 1 close.
    Mixed,
}

impl Workload {
    pub const ALL: [Workload; 9] = [
        Workload::HitKey,
        Workload::HitText,
        Workload::HandleLookup,
        Workload::Miss,
        Workload::Malformed,
        Workload::CreateAtCapacity,
        Workload::Churn,
        Workload::Take,
        Workload::Mixed,
    ];

    pub fn id(self) -> &'static str {
        match self {
            Workload::HitKey => "lookup_hit_key",
            Workload::HitText => "lookup_hit_text",
            Workload::HandleLookup => "handle_lookup",
            Workload::Miss => "lookup_miss",
            Workload::Malformed => "lookup_malformed",
            Workload::CreateAtCapacity => "create_at_capacity",
            Workload::Churn => "create_close_churn",
            Workload::Take => "create_take",
            Workload::Mixed => "mixed_90_5_5",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Workload::HitKey => "lookup hit (stored key)",
            Workload::HitText => "lookup hit (header text)",
            Workload::HandleLookup => "handle lookup (text, bound to a principal)",
            Workload::Miss => "lookup miss",
            Workload::Malformed => "lookup, malformed id",
            Workload::CreateAtCapacity => "create at capacity (evicting)",
            Workload::Churn => "create + close churn",
            Workload::Take => "create + take (single use)",
            Workload::Mixed => "mixed 90% lookup / 5% create / 5% close",
        }
    }

    fn applies<P: Peer>(self) -> bool {
        match self {
            Workload::HitKey | Workload::HitText | Workload::Miss | Workload::Malformed => true,
            Workload::CreateAtCapacity => P::WRITES && P::BOUNDED,
            Workload::Churn | Workload::Mixed => P::WRITES,
            Workload::HandleLookup | Workload::Take => P::ERAS,
        }
    }
}

/// One bench's samples: (operations, wall time).
pub type Samples = Vec<(u64, Duration)>;

/// Every bench's measured samples, keyed by workload, threads and peer.
#[derive(Default)]
pub struct Timings {
    pub runs: Vec<(Workload, usize, &'static str, Samples)>,
}

/// The keys a workload reads: live keys and their texts, unknown ids,
/// malformed ids.
struct Inputs<P: Peer> {
    keys: Vec<P::Key>,
    texts: Vec<String>,
    unknown: Vec<String>,
    malformed: Vec<String>,
    /// Texts of principal-bound handles (made before `HandleLookup` runs).
    handles: Vec<String>,
}

/// A small, fast per-thread generator (xorshift64*), and a multiply-shift
/// to pick an index without a division.
struct Rng(u64);

impl Rng {
    fn new(thread: usize) -> Self {
        Self(0x9E37_79B9_7F4A_7C15 ^ ((thread as u64 + 1) * 0xD1B5_4A32_D192_ED03))
    }

    #[inline]
    fn below(&mut self, n: usize) -> usize {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        ((u128::from(x.wrapping_mul(0x2545_F491_4F6C_DD1D)) * n as u128) >> 64) as usize
    }
}

/// One thread's batch of `iters` operations of workload `w`.
async fn batch<P: Peer>(
    peer: &P,
    w: Workload,
    inputs: &Inputs<P>,
    thread: usize,
    iters: u64,
    own: &mut VecDeque<P::Key>,
) {
    let mut rng = Rng::new(thread);
    match w {
        Workload::HitKey => {
            for _ in 0..iters {
                let key = &inputs.keys[rng.below(inputs.keys.len())];
                black_box(peer.lookup(black_box(key)).await);
            }
        }
        Workload::HitText => {
            for _ in 0..iters {
                let text = &inputs.texts[rng.below(inputs.texts.len())];
                black_box(peer.lookup_text(black_box(text)).await);
            }
        }
        Workload::HandleLookup => {
            for _ in 0..iters {
                let text = &inputs.handles[rng.below(inputs.handles.len())];
                black_box(peer.lookup_handle_text(black_box(text)).await);
            }
        }
        Workload::Miss => {
            for _ in 0..iters {
                let text = &inputs.unknown[rng.below(inputs.unknown.len())];
                black_box(peer.lookup_text(black_box(text)).await);
            }
        }
        Workload::Malformed => {
            for _ in 0..iters {
                let text = &inputs.malformed[rng.below(inputs.malformed.len())];
                black_box(peer.lookup_text(black_box(text)).await);
            }
        }
        Workload::CreateAtCapacity => {
            for _ in 0..iters {
                black_box(peer.create().await);
            }
        }
        Workload::Churn => {
            for _ in 0..iters {
                if let Some(key) = peer.create().await {
                    black_box(peer.close(&key).await);
                }
            }
        }
        Workload::Take => {
            for _ in 0..iters {
                if let Some(key) = peer.create().await {
                    black_box(peer.take(&key).await);
                }
            }
        }
        Workload::Mixed => {
            for i in 0..iters {
                match i % 20 {
                    9 => {
                        if let Some(key) = peer.create().await {
                            own.push_back(key);
                        }
                    }
                    19 => {
                        if let Some(key) = own.pop_front() {
                            black_box(peer.close(&key).await);
                        }
                    }
                    _ => {
                        let text = &inputs.texts[rng.below(inputs.texts.len())];
                        black_box(peer.lookup_text(black_box(text)).await);
                    }
                }
            }
        }
    }
}

/// Runs one sample: `iters` operations on each of `threads` threads.
/// Returns the wall time from the common start to the last finish.
fn sample<P: Peer>(
    peer: &P,
    w: Workload,
    inputs: &Inputs<P>,
    threads: usize,
    iters: u64,
) -> Duration {
    let barrier = Barrier::new(threads + 1);
    std::thread::scope(|scope| {
        for t in 0..threads {
            let barrier = &barrier;
            scope.spawn(move || {
                let driver = Driver::for_peer::<P>();
                let mut own = VecDeque::new();
                barrier.wait();
                driver.run(batch(peer, w, inputs, t, iters, &mut own));
                barrier.wait();
                // Sessions the mixed load left open: closed untimed.
                driver.run(async {
                    for key in own {
                        peer.close(&key).await;
                    }
                });
            });
        }
        barrier.wait();
        let start = Instant::now();
        barrier.wait();
        start.elapsed()
    })
}

/// Creates `n` sessions, returning their keys.
fn fill<P: Peer>(peer: &P, n: usize) -> Vec<P::Key> {
    let driver = Driver::for_peer::<P>();
    let keys = driver.run(async {
        let mut keys = Vec::with_capacity(n);
        for _ in 0..n {
            keys.push(peer.create().await.expect("create while filling"));
        }
        keys
    });
    driver.run(peer.settle());
    keys
}

/// Creates `n` principal-bound handles, returning their texts.
fn fill_handles<P: Peer>(peer: &P, n: usize) -> Vec<String> {
    let driver = Driver::for_peer::<P>();
    driver.run(async {
        let mut texts = Vec::with_capacity(n);
        for _ in 0..n {
            let key = peer.create_handle().await.expect("create a handle");
            texts.push(P::text(&key));
        }
        texts
    })
}

fn malformed_ids() -> Vec<String> {
    let good = crate::peers::new_id_text();
    vec![
        good[..35].to_string(),                     // one short
        format!("{good}0"),                         // one long
        good.to_uppercase(),                        // not canonical
        good.replace('-', "_"),                     // wrong separators
        "../../etc/passwd".to_string(),             // not an id at all
        format!("{}g{}", &good[..10], &good[11..]), // a non-hex digit
    ]
}

struct Runner<'a> {
    c: &'a mut Criterion,
    settings: &'a Settings,
    timings: &'a mut Timings,
}

impl Visitor for Runner<'_> {
    fn visit<P: Peer>(&mut self) {
        let settings = self.settings;
        let peer = P::new(settings.max_sessions);
        // Below capacity for lookups, churn and the mixed load, so that
        // creates there do not evict the sessions being looked up.
        let keys = fill(&peer, settings.live_sessions);
        let mut inputs = Inputs::<P> {
            texts: keys.iter().map(P::text).collect(),
            keys,
            unknown: (0..1024).map(|_| crate::peers::new_id_text()).collect(),
            malformed: malformed_ids(),
            handles: Vec::new(),
        };
        for w in Workload::ALL {
            if !w.applies::<P>() {
                continue;
            }
            if w == Workload::HandleLookup {
                // The sessions become handles: the same number of live
                // entries as for the session lookups, so the two rows
                // differ only by the principal check. (The later loads do
                // not rely on these sessions: create at capacity evicts
                // them anyway.)
                let driver = Driver::for_peer::<P>();
                driver.run(async {
                    for key in &inputs.keys {
                        peer.close(key).await;
                    }
                });
                inputs.handles = fill_handles(&peer, settings.live_sessions);
            }
            if w == Workload::CreateAtCapacity {
                // Top up to capacity: every create from here on evicts.
                let driver = Driver::for_peer::<P>();
                let live = driver.run(peer.live());
                fill(&peer, settings.max_sessions.saturating_sub(live));
            }
            for &threads in &settings.threads {
                let recorded: Arc<Mutex<Samples>> = Arc::default();
                let mut group = self.c.benchmark_group(w.id());
                group.bench_function(format!("{}/{threads}t", P::NAME), |b| {
                    b.iter_custom(|iters| {
                        let wall = sample(&peer, w, &inputs, threads, iters);
                        recorded
                            .lock()
                            .unwrap()
                            .push((iters * threads as u64, wall));
                        // Criterion divides by `iters`: report per operation
                        // across all threads.
                        wall / threads as u32
                    })
                });
                group.finish();
                let mut all = std::mem::take(&mut *recorded.lock().unwrap());
                // Criterion calls the routine once per sample after its
                // warm-up calls: the last `sample_size` calls are the
                // measurement.
                let keep = all.len().min(settings.sample_size);
                let measured = all.split_off(all.len() - keep);
                if !measured.is_empty() {
                    self.timings.runs.push((w, threads, P::NAME, measured));
                }
            }
        }
        // Drop the peer (and any sessions) before the next one is built.
        let driver = Driver::for_peer::<P>();
        driver.run(async move { drop(peer) });
    }
}

/// Runs every workload on every peer.
pub fn run_all(c: &mut Criterion, settings: &Settings) -> Timings {
    let mut timings = Timings::default();
    let mut runner = Runner {
        c,
        settings,
        timings: &mut timings,
    };
    visit_all(&mut runner);
    timings
}
