//! Loom model checks of the admission protocol with per-principal quotas
//! (`src/core/admission.rs`, "Per-principal quotas: a second counter").
//!
//! Run with `scripts/loom.sh principals` (this file only exists under
//! `--cfg mcp_session_core_loom`). Each scenario has two principals, A and
//! B, with their own caps (1 and 2), a global `max`, sessions created
//! before the workers start, and two or three workers that create and close
//! on the real protocol code over model-checkable stand-ins (an index under
//! a mutex; a FIFO of atomic "linked" flags in creation order, scanned
//! without a snapshot like the registry's `TreeIndex`, for all entries and
//! per principal). In every interleaving (up to `LOOM_MAX_PREEMPTIONS`) it
//! checks:
//!
//! - **both bounds** at an instant chosen by the scheduler (the main thread)
//!   and after every operation: visible sessions ≤ `max`, open ≤ reserved
//!   global slots ≤ `max`; per principal, its visible sessions ≤ its cap and
//!   open ≤ its reserved principal slots ≤ its cap (a double collect, as in
//!   `admission.rs`'s `check_instant`);
//! - **slot conservation for both counters** once joined: global reserved ==
//!   open sessions, each principal's reserved == its open sessions, the
//!   index and FIFO hold exactly the open sessions;
//! - **exactly-once close**: every created session is open or was closed
//!   (evicted or closed) exactly once; refused creates leave nothing;
//! - a victim of a create at its principal's cap is that principal's own.
#![cfg(mcp_session_core_loom)]

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use loom::sync::atomic::{AtomicBool, Ordering::SeqCst};
use loom::sync::{Arc, Mutex};
use loom::thread;
use mcp_session_core::admission::{
    self, Admissible, Capacity, Fifo, Index, OnFull, Probation, Quota, Refused, SessionState,
};

/// Principal A's cap.
const CAP_A: usize = 1;
/// Principal B's cap.
const CAP_B: usize = 2;

struct TestEntry {
    seq: u64,
    principal: usize,
    quota: std::sync::Arc<Quotas>,
    state: SessionState,
}

/// The two principals' quotas (index 0 = A, 1 = B).
struct Quotas([Quota; 2]);

#[derive(Clone)]
struct Entry(Arc<TestEntry>);

impl Entry {
    fn seq(&self) -> u64 {
        self.0.seq
    }
    fn principal(&self) -> usize {
        self.0.principal
    }
    fn is_open(&self) -> bool {
        self.0.state.is_open()
    }
    fn same(&self, other: &Entry) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Admissible for Entry {
    fn state(&self) -> &SessionState {
        &self.0.state
    }
    fn quota(&self) -> Option<&Quota> {
        Some(&self.0.quota.0[self.0.principal])
    }
}

impl fmt::Debug for Entry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let p = ["A", "B"][self.principal()];
        write!(f, "Entry({p}, seq {})", self.seq())
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

/// One atomic "linked" flag per entry, in creation order.
struct TestFifo(BTreeMap<u64, (Entry, AtomicBool)>);

impl TestFifo {
    fn contains(&self, entry: &Entry) -> bool {
        self.0[&entry.seq()].1.load(SeqCst)
    }
    fn seqs(&self) -> BTreeSet<u64> {
        self.0
            .iter()
            .filter(|(_, (_, linked))| linked.load(SeqCst))
            .map(|(&seq, _)| seq)
            .collect()
    }
}

impl Fifo<Entry> for TestFifo {
    fn push(&self, entry: &Entry) {
        assert!(!self.0[&entry.seq()].1.swap(true, SeqCst), "pushed twice");
    }
    fn remove(&self, entry: &Entry) {
        self.0[&entry.seq()].1.store(false, SeqCst);
    }
    /// No scenario here runs `EvictIdle` (see `evict_idle.rs`), so the
    /// protocol never scans a probation FIFO.
    fn scan_probation(&self, _visit: impl FnMut(&Entry) -> Probation) -> Option<Entry> {
        panic!("scan_probation outside EvictIdle");
    }

    fn claim_oldest(&self, mut claim: impl FnMut(&Entry) -> bool) -> Option<Entry> {
        self.0
            .values()
            .find(|(e, linked)| linked.load(SeqCst) && claim(e))
            .map(|(e, _)| e.clone())
    }
    fn claim_oldest_of_principal(
        &self,
        of: &Entry,
        mut claim: impl FnMut(&Entry) -> bool,
    ) -> Option<Entry> {
        self.0
            .values()
            .find(|(e, linked)| e.principal() == of.principal() && linked.load(SeqCst) && claim(e))
            .map(|(e, _)| e.clone())
    }
}

struct Registry {
    capacity: Capacity,
    quotas: std::sync::Arc<Quotas>,
    index: TestIndex,
    fifo: TestFifo,
    on_full: OnFull,
}

impl Registry {
    fn create(&self, entry: &Entry) -> Result<Option<Entry>, Refused> {
        admission::create(
            &self.capacity,
            &self.index,
            &self.fifo,
            self.on_full,
            entry,
            || 1,
        )
    }
    fn close(&self, entry: &Entry) -> bool {
        admission::close(&self.capacity, &self.index, &self.fifo, entry)
    }
}

#[derive(Clone, Copy, Debug)]
enum Op {
    Create(usize),
    Close(usize),
}

struct Scenario {
    max: usize,
    on_full: OnFull,
    /// Entry `n`'s principal (0 = A, 1 = B); its sequence is `n + 1`.
    principals: &'static [usize],
    preexisting: usize,
    threads: &'static [&'static [Op]],
    expect: fn(&Run),
}

#[derive(Clone, Debug)]
enum Outcome {
    Created {
        entry: usize,
        result: Result<Option<Entry>, Refused>,
    },
    Closed {
        entry: usize,
        closed: bool,
    },
}

struct Run {
    entries: Vec<Entry>,
    outcomes: Vec<Vec<Outcome>>,
}

impl Run {
    fn all(&self) -> impl Iterator<Item = &Outcome> {
        self.outcomes.iter().flatten()
    }
    fn open(&self) -> BTreeSet<usize> {
        (0..self.entries.len())
            .filter(|&n| self.entries[n].is_open())
            .collect()
    }
    fn refused(&self, why: Refused) -> usize {
        self.all()
            .filter(|o| matches!(o, Outcome::Created { result: Err(r), .. } if *r == why))
            .count()
    }
    fn victims(&self) -> BTreeSet<usize> {
        self.all()
            .filter_map(|o| match o {
                Outcome::Created {
                    result: Ok(Some(v)),
                    ..
                } => Some(v.seq() as usize - 1),
                _ => None,
            })
            .collect()
    }
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
    let quotas = std::sync::Arc::new(Quotas([Quota::new(CAP_A), Quota::new(CAP_B)]));
    let entries: Vec<Entry> = scenario
        .principals
        .iter()
        .enumerate()
        .map(|(n, &principal)| {
            Entry(Arc::new(TestEntry {
                seq: n as u64 + 1,
                principal,
                quota: quotas.clone(),
                state: SessionState::new(),
            }))
        })
        .collect();
    let registry = Arc::new(Registry {
        capacity: Capacity::new(scenario.max),
        quotas,
        index: TestIndex(Mutex::new(Vec::new())),
        fifo: TestFifo(
            entries
                .iter()
                .map(|e| (e.seq(), (e.clone(), AtomicBool::new(false))))
                .collect(),
        ),
        on_full: scenario.on_full,
    });
    for entry in &entries[..scenario.preexisting] {
        let created = registry.create(entry);
        assert!(matches!(created, Ok(None)), "setup {entry:?}: {created:?}");
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
    let outcomes = handles.into_iter().map(|h| h.join().unwrap()).collect();
    let run = Run { entries, outcomes };
    check_quiescent(&registry, &run, scenario.preexisting);
    (scenario.expect)(&run);
}

fn worker(registry: &Registry, entries: &[Entry], ops: &[Op]) -> Vec<Outcome> {
    let mut outcomes = Vec::new();
    for &op in ops {
        let outcome = match op {
            Op::Create(n) => {
                let entry = &entries[n];
                let result = registry.create(entry);
                match &result {
                    Ok(Some(victim)) => {
                        assert!(!victim.same(entry) && !victim.is_open());
                        assert!(!registry.fifo.contains(victim), "{victim:?} still linked");
                    }
                    Ok(None) => {}
                    Err(_) => {
                        assert!(!entry.is_open());
                        assert!(!registry.fifo.contains(entry), "refused {entry:?} linked");
                    }
                }
                Outcome::Created { entry: n, result }
            }
            Op::Close(n) => {
                let closed = registry.close(&entries[n]);
                if closed {
                    assert!(!entries[n].is_open());
                }
                Outcome::Closed { entry: n, closed }
            }
        };
        outcomes.push(outcome);
        check_instant(registry, entries);
    }
    outcomes
}

/// Both bounds at one instant `t` (a double collect around reading the
/// counters; the index lock freezes membership; states only move forward).
fn check_instant(registry: &Registry, entries: &[Entry]) {
    let index = registry.index.0.lock().unwrap();
    let in_index: Vec<bool> = entries
        .iter()
        .map(|e| index.iter().any(|i| i.same(e)))
        .collect();
    let first: Vec<bool> = entries.iter().map(Entry::is_open).collect();
    let reserved = registry.capacity.reserved();
    let principal_reserved = [
        registry.quotas.0[0].reserved(),
        registry.quotas.0[1].reserved(),
    ];
    let second: Vec<bool> = entries.iter().map(Entry::is_open).collect();
    drop(index);

    let open_at_t = |p: Option<usize>| {
        (0..entries.len())
            .filter(|&n| first[n] && second[n])
            .filter(|&n| p.is_none_or(|p| entries[n].principal() == p))
            .collect::<Vec<_>>()
    };
    let max = registry.capacity.max();
    let all = open_at_t(None);
    assert!(reserved <= max, "{reserved} slots reserved, max {max}");
    assert!(all.iter().filter(|&&n| in_index[n]).count() <= max);
    assert!(all.len() <= reserved, "{all:?} open on {reserved} slots");
    for (p, cap) in [(0, CAP_A), (1, CAP_B)] {
        let open = open_at_t(Some(p));
        let held = principal_reserved[p];
        assert!(held <= cap, "principal {p}: {held} slots, cap {cap}");
        assert!(
            open.iter().filter(|&&n| in_index[n]).count() <= cap,
            "principal {p}: {open:?} visible at once, cap {cap}"
        );
        assert!(
            open.len() <= held,
            "principal {p}: {open:?} open on {held} slots"
        );
    }
}

fn check_quiescent(registry: &Registry, run: &Run, preexisting: usize) {
    check_instant(registry, &run.entries);
    let open = run.open();
    let seqs: BTreeSet<u64> = open.iter().map(|&n| run.entries[n].seq()).collect();
    assert_eq!(
        registry.capacity.reserved(),
        open.len(),
        "global slots != open {open:?}"
    );
    for p in 0..2 {
        let of_p = open
            .iter()
            .filter(|&&n| run.entries[n].principal() == p)
            .count();
        assert_eq!(
            registry.quotas.0[p].reserved(),
            of_p,
            "principal {p} slots != its open sessions ({open:?})"
        );
    }
    let indexed: BTreeSet<u64> = registry
        .index
        .0
        .lock()
        .unwrap()
        .iter()
        .map(Entry::seq)
        .collect();
    assert_eq!(indexed, seqs, "index != open sessions");
    assert_eq!(registry.fifo.seqs(), seqs, "FIFO != open sessions");
    if registry.on_full == OnFull::EvictOldest {
        assert_eq!(run.refused(Refused::AtCapacity), 0);
        assert_eq!(run.refused(Refused::PrincipalFull), 0);
    }
    let mut closes: BTreeMap<u64, usize> = BTreeMap::new();
    for outcome in run.all() {
        let seq = match outcome {
            Outcome::Created {
                result: Ok(Some(victim)),
                ..
            } => victim.seq(),
            Outcome::Closed {
                entry,
                closed: true,
            } => run.entries[*entry].seq(),
            _ => continue,
        };
        *closes.entry(seq).or_default() += 1;
    }
    for (n, entry) in run.entries.iter().enumerate() {
        let created = n < preexisting
            || run
                .all()
                .any(|o| matches!(o, Outcome::Created { entry, result: Ok(_) } if *entry == n));
        let times = closes.get(&entry.seq()).copied().unwrap_or(0);
        let expected = usize::from(created && !entry.is_open());
        assert_eq!(times, expected, "{entry:?} reported closed {times} times");
        assert!(
            created || !entry.is_open(),
            "{entry:?} open but never created"
        );
    }
}

const A: usize = 0;
const B: usize = 1;

fn set<const N: usize>(items: [usize; N]) -> BTreeSet<usize> {
    items.into_iter().collect()
}

/// create/create, one principal at cap 1 (global room for both): one
/// create evicts the other's session — its own principal's — never more
/// than one of A's sessions open.
#[test]
fn principal_create_create_evict_cap1() {
    model(Scenario {
        max: 3,
        on_full: OnFull::EvictOldest,
        principals: &[A, A],
        preexisting: 0,
        threads: &[&[Op::Create(0)], &[Op::Create(1)]],
        expect: |run| {
            assert_eq!(run.open().len(), 1);
            assert_eq!(run.victims().len(), 1);
        },
    });
}

/// create/create of two principals into one global slot: the one that
/// evicts inherits only the global slot and gives the victim's principal
/// slot back to the other principal.
#[test]
fn principal_create_create_global_evict_max1() {
    model(Scenario {
        max: 1,
        on_full: OnFull::EvictOldest,
        principals: &[A, B],
        preexisting: 0,
        threads: &[&[Op::Create(0)], &[Op::Create(1)]],
        expect: |run| assert_eq!(run.open().len(), 1),
    });
}

/// create/create under `Reject` at A's cap of 1: exactly one is refused,
/// with the per-principal refusal.
#[test]
fn principal_create_create_reject_cap1() {
    model(Scenario {
        max: 3,
        on_full: OnFull::Reject,
        principals: &[A, A],
        preexisting: 0,
        threads: &[&[Op::Create(0)], &[Op::Create(1)]],
        expect: |run| {
            assert_eq!(run.refused(Refused::PrincipalFull), 1);
            assert_eq!(run.open().len(), 1);
        },
    });
}

/// create/create of two principals under `Reject` into one global slot:
/// the refused one gives its principal slot back (conservation checks it).
#[test]
fn principal_create_create_reject_global_max1() {
    model(Scenario {
        max: 1,
        on_full: OnFull::Reject,
        principals: &[A, B],
        preexisting: 0,
        threads: &[&[Op::Create(0)], &[Op::Create(1)]],
        expect: |run| {
            assert_eq!(run.refused(Refused::AtCapacity), 1);
            assert_eq!(run.open().len(), 1);
        },
    });
}

/// create/close: A (cap 1) holds entry 0; one worker creates A's entry 1
/// (evicting its own oldest, or taking the slot the close frees), the other
/// closes entry 0. Entry 0 leaves exactly once; entry 1 is open.
#[test]
fn principal_evict_own_oldest_close_cap1() {
    model(Scenario {
        max: 2,
        on_full: OnFull::EvictOldest,
        principals: &[A, A],
        preexisting: 1,
        threads: &[&[Op::Create(1)], &[Op::Close(0)]],
        expect: |run| assert_eq!(run.open(), set([1])),
    });
}

/// evict-own-oldest/close at cap 2: B holds entries 0 and 1 and the global
/// slots are full (max 2); creating B's entry 2 evicts B's oldest (0) unless
/// the concurrent close of 0 frees both slots first. If the create finds 0
/// closed but its slots not yet released, it evicts 1, B's oldest *open*
/// session (the "close and eviction at the same instant" case of
/// `admission.rs`: ordered before the close's release).
#[test]
fn principal_evict_own_oldest_close_cap2() {
    model(Scenario {
        max: 2,
        on_full: OnFull::EvictOldest,
        principals: &[B, B, B],
        preexisting: 2,
        threads: &[&[Op::Create(2)], &[Op::Close(0)]],
        expect: |run| {
            let open = run.open();
            assert!(open == set([1, 2]) || open == set([2]), "{open:?}");
            assert!(!run.victims().contains(&2));
        },
    });
}

/// create/evict: global max 2 holds A's 0 and B's 1. A creates 2 (at its
/// cap: evicts its own 0) while B creates 3 (B has room, the registry is
/// full: evicts the globally oldest open one). B's 1 may go, A's never
/// exceed 1, the B create never takes A's principal slot.
#[test]
fn principal_create_evict_two_principals() {
    model(Scenario {
        max: 2,
        on_full: OnFull::EvictOldest,
        principals: &[A, B, A, B],
        preexisting: 2,
        threads: &[&[Op::Create(2)], &[Op::Create(3)]],
        expect: |run| {
            assert_eq!(run.open(), set([2, 3]));
            assert_eq!(run.victims(), set([0, 1]));
        },
    });
}

/// Three workers: B creates (room in B, registry full), A creates (at its
/// cap), and a close of A's preexisting session, all at once.
#[test]
fn principal_create_create_close_three_threads() {
    model(Scenario {
        max: 2,
        on_full: OnFull::EvictOldest,
        principals: &[A, B, A, B],
        preexisting: 2,
        threads: &[&[Op::Create(2)], &[Op::Create(3)], &[Op::Close(0)]],
        expect: |run| {
            assert!(run.open().contains(&3));
            assert!(!run.open().contains(&0));
        },
    });
}
