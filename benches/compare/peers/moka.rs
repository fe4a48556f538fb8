//! `moka::sync::Cache<String, u64>` with `max_capacity`, the LRU policy and
//! `time_to_idle`: the general-purpose concurrent cache. It bounds its size
//! when its pending maintenance runs, not at insert.

use std::time::Duration;

use moka::policy::EvictionPolicy;
use moka::sync::Cache;

use super::{Peer, new_id_text};

pub struct Moka(pub Cache<String, u64>);

impl Peer for Moka {
    type Key = String;
    const NAME: &'static str = "moka";
    const ASYNC: bool = false;
    const BOUNDED: bool = true;

    fn new(max_sessions: usize) -> Self {
        Self(
            Cache::builder()
                .max_capacity(max_sessions as u64)
                .eviction_policy(EvictionPolicy::lru())
                .time_to_idle(Duration::from_secs(3600))
                .build(),
        )
    }

    async fn create(&self) -> Option<String> {
        let id = new_id_text();
        self.0.insert(id.clone(), 1);
        Some(id)
    }

    async fn lookup(&self, key: &String) -> bool {
        self.0.get(key).is_some()
    }

    async fn lookup_text(&self, text: &str) -> bool {
        self.0.get(text).is_some()
    }

    async fn close(&self, key: &String) -> bool {
        self.0.remove(key).is_some()
    }

    async fn live(&self) -> usize {
        self.0.entry_count() as usize
    }

    async fn visible(&self) -> usize {
        self.0.iter().count()
    }

    async fn settle(&self) {
        self.0.run_pending_tasks();
    }

    fn text(key: &String) -> String {
        key.clone()
    }
}
