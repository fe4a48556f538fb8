//! Loom model checks of `OnFull::EvictIdle` in the admission protocol
//! (`src/core/admission.rs`): promotion (a lookup's `mark_served`) and the
//! evictor's probation scan, lazy unlinking of promoted entries, and CLOCK
//! second chances, racing lookups, closes and other evictors.
//!
//! Run with `scripts/loom.sh idle`. Stand-ins: an index under a mutex; the
//! main order and the probation FIFO as atomic "linked" flags per entry in
//! creation order (scanned without a snapshot, like `TreeIndex`). In every
//! interleaving it checks the exact bound at an instant chosen by the
//! scheduler and after every operation; slot conservation and exactly-once
//! close once joined; and **the guarantee**: when a create evicts a
//! promoted session, no session was open and unpromoted throughout that
//! create (checked with a collect before and after the call: promotion is
//! sticky and a closed session never reopens, so a session open and
//! unpromoted in both collects was so throughout).
#![cfg(mcp_session_core_loom)]

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use loom::sync::atomic::{AtomicBool, Ordering::SeqCst};
use loom::sync::{Arc, Mutex};
use loom::thread;
use mcp_session_core::admission::{
    self, Admissible, Capacity, Fifo, Index, OnFull, Probation, Refused, SessionState,
};

struct TestEntry {
    seq: u64,
    state: SessionState,
}

#[derive(Clone)]
struct Entry(Arc<TestEntry>);

impl Entry {
    fn seq(&self) -> u64 {
        self.0.seq
    }
    fn n(&self) -> usize {
        self.0.seq as usize - 1
    }
    fn is_open(&self) -> bool {
        self.0.state.is_open()
    }
    fn is_promoted(&self) -> bool {
        self.0.state.load().is_promoted()
    }
    fn same(&self, other: &Entry) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Admissible for Entry {
    fn state(&self) -> &SessionState {
        &self.0.state
    }
}

impl fmt::Debug for Entry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Entry({})", self.n())
    }
}

struct TestIndex(Mutex<Vec<Entry>>);

impl Index<Entry> for TestIndex {
    fn insert(&self, entry: &Entry) -> bool {
        self.0.lock().unwrap().push(entry.clone());
        true
    }
    fn remove(&self, entry: &Entry) {
        let mut map = self.0.lock().unwrap();
        if let Some(at) = map.iter().position(|e| e.same(entry)) {
            map.swap_remove(at);
        }
    }
}

/// Per entry, in creation order: linked in the main order, linked in
/// probation.
struct TestFifo(BTreeMap<u64, (Entry, AtomicBool, AtomicBool)>);

impl TestFifo {
    fn linked(&self) -> BTreeSet<u64> {
        self.0
            .iter()
            .filter(|(_, (_, main, _))| main.load(SeqCst))
            .map(|(&seq, _)| seq)
            .collect()
    }
}

impl Fifo<Entry> for TestFifo {
    fn push(&self, entry: &Entry) {
        let (_, main, probation) = &self.0[&entry.seq()];
        assert!(!main.swap(true, SeqCst), "pushed twice");
        probation.store(true, SeqCst);
    }
    fn remove(&self, entry: &Entry) {
        let (_, main, probation) = &self.0[&entry.seq()];
        main.store(false, SeqCst);
        probation.store(false, SeqCst);
    }
    fn claim_oldest(&self, mut claim: impl FnMut(&Entry) -> bool) -> Option<Entry> {
        self.0
            .values()
            .find(|(e, main, _)| main.load(SeqCst) && claim(e))
            .map(|(e, ..)| e.clone())
    }
    fn claim_oldest_of_principal(
        &self,
        of: &Entry,
        _claim: impl FnMut(&Entry) -> bool,
    ) -> Option<Entry> {
        panic!("{of:?} has no quota");
    }
    fn scan_probation(&self, mut visit: impl FnMut(&Entry) -> Probation) -> Option<Entry> {
        for (e, _, probation) in self.0.values() {
            if !probation.load(SeqCst) {
                continue;
            }
            match visit(e) {
                Probation::Claimed => return Some(e.clone()),
                Probation::Skip => {}
                Probation::Promoted => probation.store(false, SeqCst),
            }
        }
        None
    }
}

struct Registry {
    capacity: Capacity,
    index: TestIndex,
    fifo: TestFifo,
}

#[derive(Clone, Copy, Debug)]
enum Op {
    Create(usize),
    Close(usize),
    /// A lookup serving a request: `mark_served`.
    Serve(usize),
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Pre {
    /// Created, confirmed and served before the workers start.
    Served,
    /// Created and confirmed, never served.
    Idle,
}

struct Scenario {
    max: usize,
    preexisting: &'static [Pre],
    /// Entries numbered after the preexisting ones are created by workers.
    created: usize,
    threads: &'static [&'static [Op]],
    expect: fn(&[Entry], &BTreeSet<usize>),
}

fn model(scenario: Scenario) {
    let scenario = std::sync::Arc::new(scenario);
    let mut builder = loom::model::Builder::new();
    builder.preemption_bound = Some(
        std::env::var("LOOM_MAX_PREEMPTIONS")
            .map(|v| v.parse().expect("invalid LOOM_MAX_PREEMPTIONS"))
            .unwrap_or(3),
    );
    builder.check(move || run_once(&scenario));
}

fn run_once(scenario: &Scenario) {
    let count = scenario.preexisting.len() + scenario.created;
    let entries: Vec<Entry> = (0..count)
        .map(|n| {
            Entry(Arc::new(TestEntry {
                seq: n as u64 + 1,
                state: SessionState::new(),
            }))
        })
        .collect();
    let registry = Arc::new(Registry {
        capacity: Capacity::new(scenario.max),
        index: TestIndex(Mutex::new(Vec::new())),
        fifo: TestFifo(
            entries
                .iter()
                .map(|e| {
                    let (main, probation) = (AtomicBool::new(false), AtomicBool::new(false));
                    (e.seq(), (e.clone(), main, probation))
                })
                .collect(),
        ),
    });
    for (n, pre) in scenario.preexisting.iter().enumerate() {
        let entry = &entries[n];
        assert!(matches!(create(&registry, entry), Ok(None)), "setup {n}");
        assert!(entry.state().confirm());
        if *pre == Pre::Served {
            entry.state().mark_served();
            assert!(entry.is_promoted());
        }
    }
    let handles: Vec<_> = scenario
        .threads
        .iter()
        .map(|&ops| {
            let registry = registry.clone();
            let entries = entries.clone();
            thread::spawn(move || worker(&registry, &entries, ops))
        })
        .collect();
    check_instant(&registry, &entries);
    let mut closes: BTreeMap<usize, usize> = BTreeMap::new();
    let mut created: BTreeSet<usize> = (0..scenario.preexisting.len()).collect();
    for h in handles {
        for out in h.join().unwrap() {
            match out {
                Out::Created { n, victim } => {
                    created.insert(n);
                    if let Some(victim) = victim {
                        *closes.entry(victim).or_default() += 1;
                    }
                }
                Out::Closed(n) => *closes.entry(n).or_default() += 1,
            }
        }
    }
    check_instant(&registry, &entries);
    let open: BTreeSet<usize> = (0..count).filter(|&n| entries[n].is_open()).collect();
    assert_eq!(
        registry.capacity.reserved(),
        open.len(),
        "slots != open {open:?}"
    );
    let open_seqs: BTreeSet<u64> = open.iter().map(|&n| n as u64 + 1).collect();
    assert_eq!(registry.fifo.linked(), open_seqs, "FIFO != open");
    let indexed: BTreeSet<u64> = registry
        .index
        .0
        .lock()
        .unwrap()
        .iter()
        .map(Entry::seq)
        .collect();
    assert_eq!(indexed, open_seqs, "index != open");
    for n in 0..count {
        let times = closes.get(&n).copied().unwrap_or(0);
        let expected = usize::from(created.contains(&n) && !entries[n].is_open());
        assert_eq!(times, expected, "entry {n} closed {times} times");
    }
    (scenario.expect)(&entries, &open);
}

/// What a worker's operation did (only creates and successful closes).
enum Out {
    Created { n: usize, victim: Option<usize> },
    Closed(usize),
}

fn create(registry: &Registry, entry: &Entry) -> Result<Option<Entry>, Refused> {
    admission::create(
        &registry.capacity,
        &registry.index,
        &registry.fifo,
        OnFull::EvictIdle,
        entry,
        || 1,
    )
}

fn worker(registry: &Registry, entries: &[Entry], ops: &[Op]) -> Vec<Out> {
    let mut out = Vec::new();
    for &op in ops {
        match op {
            Op::Create(n) => {
                let idle_before: Vec<bool> = entries
                    .iter()
                    .map(|e| e.is_open() && !e.is_promoted())
                    .collect();
                let result = create(registry, &entries[n]);
                let victim = result.expect("EvictIdle never refuses");
                if let Some(victim) = &victim {
                    assert!(!victim.is_open() && !victim.same(&entries[n]));
                    if victim.is_promoted() {
                        for (idle, e) in idle_before.iter().zip(entries) {
                            assert!(
                                !(*idle && e.is_open() && !e.is_promoted()),
                                "evicted promoted {victim:?} while {e:?} was open and \
                                 unpromoted throughout"
                            );
                        }
                    }
                }
                out.push(Out::Created {
                    n,
                    victim: victim.map(|v| v.n()),
                });
            }
            Op::Close(n) => {
                if admission::close(
                    &registry.capacity,
                    &registry.index,
                    &registry.fifo,
                    &entries[n],
                ) {
                    out.push(Out::Closed(n));
                }
            }
            Op::Serve(n) => entries[n].state().mark_served(),
        }
        check_instant(registry, entries);
    }
    out
}

fn check_instant(registry: &Registry, entries: &[Entry]) {
    let index = registry.index.0.lock().unwrap();
    let in_index: Vec<bool> = entries
        .iter()
        .map(|e| index.iter().any(|i| i.same(e)))
        .collect();
    let first: Vec<bool> = entries.iter().map(Entry::is_open).collect();
    let reserved = registry.capacity.reserved();
    let second: Vec<bool> = entries.iter().map(Entry::is_open).collect();
    drop(index);
    let max = registry.capacity.max();
    let open: Vec<usize> = (0..entries.len())
        .filter(|&n| first[n] && second[n])
        .collect();
    assert!(reserved <= max, "{reserved} slots, max {max}");
    assert!(open.iter().filter(|&&n| in_index[n]).count() <= max);
    assert!(open.len() <= reserved, "{open:?} open on {reserved} slots");
}

fn set<const N: usize>(items: [usize; N]) -> BTreeSet<usize> {
    items.into_iter().collect()
}

/// A create at capacity evicts the idle session, never the served one,
/// while a lookup promotes the idle one concurrently: if the promotion
/// lands first, every open session is promoted and CLOCK may take either.
#[test]
fn idle_evict_races_promotion() {
    model(Scenario {
        max: 2,
        preexisting: &[Pre::Served, Pre::Idle],
        created: 1,
        threads: &[&[Op::Create(2)], &[Op::Serve(1)]],
        expect: |entries, open| {
            assert!(open.contains(&2));
            if !open.contains(&1) {
                return; // the idle one was evicted: fine either way
            }
            assert!(entries[1].is_promoted(), "served 0 evicted while 1 idle");
        },
    });
}

/// A create at capacity races a close of the idle session: whichever wins
/// it, it is closed exactly once; the served one goes only if the close
/// took the idle one first.
#[test]
fn idle_evict_races_close() {
    model(Scenario {
        max: 2,
        preexisting: &[Pre::Served, Pre::Idle],
        created: 1,
        threads: &[&[Op::Create(2)], &[Op::Close(1)]],
        expect: |_, open| {
            assert!(open.contains(&2) && !open.contains(&1));
        },
    });
}

/// Two evictors at once: the idle session goes first; the second evictor
/// takes the first one's new session if it is open by then (it is
/// unpromoted), and the served one only if no unpromoted session was open.
#[test]
fn idle_evict_evict() {
    model(Scenario {
        max: 2,
        preexisting: &[Pre::Served, Pre::Idle],
        created: 2,
        threads: &[&[Op::Create(2)], &[Op::Create(3)]],
        expect: |_, open| {
            assert!(!open.contains(&1));
            assert_eq!(open.len(), 2);
        },
    });
}

/// CLOCK racing a lookup: every session is served; the evictor clears
/// reference bits while a lookup sets one again. The create still gets a
/// slot (the served session goes), exactly once.
#[test]
fn idle_second_chance_races_lookup() {
    model(Scenario {
        max: 1,
        preexisting: &[Pre::Served],
        created: 1,
        threads: &[&[Op::Create(1)], &[Op::Serve(0)]],
        expect: |_, open| assert_eq!(*open, set([1])),
    });
}

/// Lazy promotion out of probation racing an evictor and a lookup: the
/// served session 0 is still in probation when the evictor meets it (it is
/// unlinked from probation there), while the idle session 1 is promoted.
#[test]
fn idle_probation_unlink_races_promotion_three_threads() {
    model(Scenario {
        max: 2,
        preexisting: &[Pre::Served, Pre::Idle],
        created: 1,
        threads: &[&[Op::Create(2)], &[Op::Serve(1)], &[Op::Serve(0)]],
        expect: |_, open| assert!(open.contains(&2)),
    });
}
