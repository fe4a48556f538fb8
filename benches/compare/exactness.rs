//! Exactness under contention: `creators` concurrent creators (OS threads
//! for sync peers; tokio tasks on a multi-thread runtime for async ones)
//! create sessions into a store of `max_sessions` for a fixed time (or up
//! to a number of creates each, whichever comes first: `mcp-session`'s
//! creates cost O(live), so a count alone would take it minutes), while a
//! monitor thread
//! samples the live count the peer reports (the core's `len()`, the slots
//! taken, an upper bound on what lookups can see; `mcp-session`'s
//! `active_session_count`; rmcp's map length; moka's entries visible to
//! iteration, since its `entry_count` lags; the maps' `len()`). It records
//! the peak, then the count once the load has stopped and the peer settled.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::Settings;
use crate::peers::{Driver, Peer, Visitor, visit_all};

#[derive(Clone, Debug, Serialize)]
pub struct ExactRow {
    pub peer: &'static str,
    pub bounded: bool,
    pub max_sessions: usize,
    pub creators: usize,
    pub creates: usize,
    pub samples: u64,
    pub peak_live: usize,
    pub final_live: usize,
    pub seconds: f64,
}

impl ExactRow {
    /// Never above the bound, and at the bound once quiet.
    pub fn exact(&self) -> bool {
        self.bounded && self.peak_live <= self.max_sessions && self.final_live <= self.max_sessions
    }
}

struct Exact<'a> {
    settings: &'a Settings,
    rows: Vec<ExactRow>,
}

impl Visitor for Exact<'_> {
    fn visit<P: Peer>(&mut self) {
        if !P::WRITES {
            return;
        }
        let max = self.settings.exact_max;
        let creators = self.settings.exact_creators;
        let per = self.settings.exact_creates_per_creator;
        let created = Arc::new(AtomicUsize::new(0));
        let peer = Arc::new(P::new(max));
        let done = AtomicBool::new(false);
        let start = Instant::now();
        let deadline = start + Duration::from_millis(self.settings.exact_ms);
        let (peak, samples) = std::thread::scope(|scope| {
            let monitor = scope.spawn(|| {
                let driver = Driver::for_peer::<P>();
                let (mut peak, mut samples) = (0usize, 0u64);
                while !done.load(Ordering::Acquire) {
                    peak = peak.max(driver.run(peer.visible()));
                    samples += 1;
                }
                (peak, samples)
            });
            if P::ASYNC {
                let rt = tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(self.settings.cores)
                    .enable_all()
                    .build()
                    .expect("tokio runtime");
                rt.block_on(async {
                    let barrier = Arc::new(tokio::sync::Barrier::new(creators));
                    let tasks: Vec<_> = (0..creators)
                        .map(|_| {
                            let peer = peer.clone();
                            let barrier = barrier.clone();
                            let created = created.clone();
                            tokio::spawn(async move {
                                barrier.wait().await;
                                let mut n = 0;
                                while n < per && Instant::now() < deadline {
                                    peer.create().await;
                                    n += 1;
                                }
                                created.fetch_add(n, Ordering::Relaxed);
                            })
                        })
                        .collect();
                    for task in tasks {
                        task.await.expect("creator task");
                    }
                });
            } else {
                let barrier = Barrier::new(creators);
                let created = &*created;
                std::thread::scope(|creators_scope| {
                    for _ in 0..creators {
                        creators_scope.spawn(|| {
                            let driver = Driver::for_peer::<P>();
                            barrier.wait();
                            driver.run(async {
                                let mut n = 0;
                                while n < per && Instant::now() < deadline {
                                    peer.create().await;
                                    n += 1;
                                }
                                created.fetch_add(n, Ordering::Relaxed);
                            });
                        });
                    }
                });
            }
            done.store(true, Ordering::Release);
            monitor.join().expect("monitor")
        });
        let seconds = start.elapsed().as_secs_f64();
        let driver = Driver::for_peer::<P>();
        driver.run(peer.settle());
        let final_live = driver.run(peer.visible());
        self.rows.push(ExactRow {
            peer: P::NAME,
            bounded: P::BOUNDED,
            max_sessions: max,
            creators,
            creates: created.load(Ordering::Relaxed),
            samples,
            peak_live: peak.max(final_live),
            final_live,
            seconds,
        });
        driver.run(async move { drop(peer) });
    }
}

pub fn run_all(settings: &Settings) -> Vec<ExactRow> {
    let mut exact = Exact {
        settings,
        rows: Vec::new(),
    };
    visit_all(&mut exact);
    exact.rows
}
