//! What people write by hand, the concurrent way: a `DashMap` of sessions
//! plus a `Mutex<VecDeque>` of ids in creation order. The bound is
//! check-then-act (`len() >= max` then evict, then insert), like
//! `mcp-session`'s. A close leaves its id in the FIFO (skipped when popped);
//! the FIFO is compacted when stale ids outnumber live ones, so memory stays
//! bounded.

use std::collections::VecDeque;
use std::sync::Mutex;

use dashmap::DashMap;

use super::{Peer, new_id_text};

pub struct DashmapFifo {
    map: DashMap<String, u64>,
    fifo: Mutex<VecDeque<String>>,
    max: usize,
}

impl Peer for DashmapFifo {
    type Key = String;
    const NAME: &'static str = "dashmap+fifo";
    const ASYNC: bool = false;
    const BOUNDED: bool = true;

    fn new(max_sessions: usize) -> Self {
        Self {
            map: DashMap::new(),
            fifo: Mutex::new(VecDeque::new()),
            max: max_sessions,
        }
    }

    async fn create(&self) -> Option<String> {
        let id = new_id_text();
        if self.map.len() >= self.max {
            let mut fifo = self.fifo.lock().unwrap();
            while let Some(oldest) = fifo.pop_front() {
                if self.map.remove(&oldest).is_some() {
                    break;
                }
            }
        }
        self.map.insert(id.clone(), 1);
        let mut fifo = self.fifo.lock().unwrap();
        fifo.push_back(id.clone());
        if fifo.len() > 2 * self.max.max(64) {
            fifo.retain(|k| self.map.contains_key(k));
        }
        Some(id)
    }

    async fn lookup(&self, key: &String) -> bool {
        self.map.get(key).map(|v| *v).is_some()
    }

    async fn lookup_text(&self, text: &str) -> bool {
        self.map.get(text).map(|v| *v).is_some()
    }

    async fn close(&self, key: &String) -> bool {
        self.map.remove(key).is_some()
    }

    async fn live(&self) -> usize {
        self.map.len()
    }

    fn text(key: &String) -> String {
        key.clone()
    }
}
