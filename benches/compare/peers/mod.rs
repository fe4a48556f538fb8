//! The stores under test, behind one small trait.
//!
//! Every peer is driven through the same `async` methods. Async peers (the
//! rmcp session managers, on tokio) run inside one `block_on` of a
//! current-thread runtime per worker thread, around a whole batch of
//! operations rather than around each one: that is what criterion's
//! `async_tokio` support does for one thread, it keeps the runtime's own
//! entry cost (tens of ns) out of the per-operation figure, and the tasks
//! the peer spawns (rmcp's session workers) run on the same thread inside
//! the timed window, so their cost is counted as it would be on a server —
//! without extra runtime threads competing for this machine's two cores.
//! Sync peers are driven by polling the same batch future once with a no-op
//! waker: their futures never wait, so nothing is added to their figures.

use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use tokio::runtime::{Builder, Runtime};

pub mod core;
pub mod core_fairness;
pub mod dashmap_fifo;
pub mod mcp_session;
pub mod moka;
pub mod mutex_fifo;
pub mod rmcp_local;
pub mod scc_raw;

/// A session store as the workloads see it.
pub trait Peer: Send + Sync + Sized + 'static {
    /// What `create` hands out and `lookup`/`close` take: the form of the id
    /// the store itself keys by (a parsed id, a `String`, rmcp's `Arc<str>`).
    type Key: Clone + Send + Sync + 'static;
    /// Column name in the report.
    const NAME: &'static str;
    /// Runs on tokio (driven through a runtime, see the module docs).
    const ASYNC: bool;
    /// Holds at most `max_sessions`, evicting the oldest at capacity.
    const BOUNDED: bool;
    /// Runs the create/close workloads (the raw map floor and the core
    /// without timeouts run the lookups only).
    const WRITES: bool = true;
    /// The most sessions the memory figure is taken at (`mcp-session`'s
    /// create costs O(live): filling 100,000 would take over 10 minutes here).
    const MEMORY_SESSIONS_CAP: usize = usize::MAX;

    /// A store of at most `max_sessions` (ignored by unbounded peers).
    fn new(max_sessions: usize) -> Self;
    /// Creates a session (evicting at capacity if bounded).
    fn create(&self) -> impl Future<Output = Option<Self::Key>> + Send;
    /// Looks the session up by its key; `true` if found.
    fn lookup(&self, key: &Self::Key) -> impl Future<Output = bool> + Send;
    /// Looks the session up from the `Mcp-Session-Id` header's text, as a
    /// request handler does; `true` if found.
    fn lookup_text(&self, text: &str) -> impl Future<Output = bool> + Send;
    /// Closes a session; `true` if it was there.
    fn close(&self, key: &Self::Key) -> impl Future<Output = bool> + Send;
    /// The peer's own live-count API.
    fn live(&self) -> impl Future<Output = usize> + Send;
    /// The sessions visible to lookups now (defaults to `live`; moka's
    /// `entry_count` lags, so it counts by iterating).
    fn visible(&self) -> impl Future<Output = usize> + Send {
        self.live()
    }
    /// Lets a peer finish deferred work (moka's pending maintenance).
    fn settle(&self) -> impl Future<Output = ()> + Send {
        std::future::ready(())
    }
    /// The header text of a key.
    fn text(key: &Self::Key) -> String;

    /// Has single-use [`take`](Self::take) and principal-bound handles
    /// ([`create_handle`](Self::create_handle)): the 2026-07-28 rows.
    const ERAS: bool = false;
    /// Takes the session for single use (removes and returns it once);
    /// `true` if this call got it.
    fn take(&self, key: &Self::Key) -> impl Future<Output = bool> + Send {
        let _ = key;
        std::future::ready(false)
    }
    /// Creates a handle bound to the benchmark's principal.
    fn create_handle(&self) -> impl Future<Output = Option<Self::Key>> + Send {
        std::future::ready(None)
    }
    /// Looks a handle up from its text presenting the benchmark's
    /// principal, as a tool call checks its `handle` argument.
    fn lookup_handle_text(&self, text: &str) -> impl Future<Output = bool> + Send {
        let _ = text;
        std::future::ready(false)
    }
}

/// Runs a peer's futures: a current-thread tokio runtime for async peers,
/// a single poll for sync ones.
pub struct Driver {
    rt: Option<Runtime>,
}

impl Driver {
    pub fn new(is_async: bool) -> Self {
        Self {
            rt: is_async.then(|| {
                Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("tokio runtime")
            }),
        }
    }

    pub fn for_peer<P: Peer>() -> Self {
        Self::new(P::ASYNC)
    }

    /// Runs `f` to completion.
    pub fn run<F: Future>(&self, f: F) -> F::Output {
        match &self.rt {
            Some(rt) => rt.block_on(f),
            None => poll_once(f),
        }
    }

    /// Lets tasks the peer spawned finish (rmcp's workers whose transports
    /// were dropped), so memory figures do not count them.
    pub fn idle(&self, rounds: usize) {
        if let Some(rt) = &self.rt {
            for _ in 0..rounds {
                rt.block_on(async {
                    tokio::time::sleep(std::time::Duration::from_millis(2)).await
                });
            }
        }
    }
}

fn poll_once<F: Future>(f: F) -> F::Output {
    let mut f = pin!(f);
    match f.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(v) => v,
        Poll::Pending => panic!("a sync peer's future must not wait"),
    }
}

/// Calls back with every peer type, in report column order.
pub trait Visitor {
    fn visit<P: Peer>(&mut self);
}

/// Every peer, or those named in `MSC_BENCH_PEERS` (comma-separated, e.g.
/// `core,moka`: for profiling one peer).
pub fn visit_all(v: &mut impl Visitor) {
    struct Selected<'a, V>(&'a mut V, Option<Vec<String>>);
    impl<V: Visitor> Selected<'_, V> {
        fn visit<P: Peer>(&mut self) {
            if self
                .1
                .as_ref()
                .is_none_or(|names| names.iter().any(|n| n == P::NAME))
            {
                self.0.visit::<P>();
            }
        }
    }
    let only = std::env::var("MSC_BENCH_PEERS")
        .ok()
        .map(|list| list.split(',').map(|n| n.trim().to_string()).collect());
    let mut s = Selected(v, only);
    s.visit::<core::Core<true>>();
    s.visit::<core::Core<false>>();
    s.visit::<core_fairness::CoreQuota<false>>();
    s.visit::<core_fairness::CoreQuota<true>>();
    s.visit::<core_fairness::CoreEvictIdle>();
    s.visit::<mcp_session::McpSession>();
    s.visit::<rmcp_local::RmcpLocal>();
    s.visit::<moka::Moka>();
    s.visit::<dashmap_fifo::DashmapFifo>();
    s.visit::<mutex_fifo::MutexFifo>();
    s.visit::<scc_raw::SccRaw>();
}

/// Report column order.
pub fn names() -> Vec<&'static str> {
    struct Names(Vec<&'static str>);
    impl Visitor for Names {
        fn visit<P: Peer>(&mut self) {
            self.0.push(P::NAME);
        }
    }
    let mut n = Names(Vec::new());
    visit_all(&mut n);
    n.0
}

/// A fresh random id's text, minted as the core mints ids (OS CSPRNG,
/// UUID v4), for the hand-written peers.
pub fn new_id_text() -> String {
    mcp_session_core::SessionId::random()
        .expect("entropy")
        .to_string()
}
