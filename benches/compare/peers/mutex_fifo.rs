//! What people write by hand, the simple way: one
//! `Mutex<(HashMap, VecDeque)>`. Everything happens under the lock, so the
//! bound is exact; every operation serialises on it. A close leaves its id
//! in the FIFO (skipped when popped), compacted when stale ids outnumber
//! live ones.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use super::{Peer, new_id_text};

pub struct MutexFifo {
    inner: Mutex<(HashMap<String, u64>, VecDeque<String>)>,
    max: usize,
}

impl Peer for MutexFifo {
    type Key = String;
    const NAME: &'static str = "mutex-map";
    const ASYNC: bool = false;
    const BOUNDED: bool = true;

    fn new(max_sessions: usize) -> Self {
        Self {
            inner: Mutex::new((HashMap::new(), VecDeque::new())),
            max: max_sessions,
        }
    }

    async fn create(&self) -> Option<String> {
        let id = new_id_text();
        let mut guard = self.inner.lock().unwrap();
        let (map, fifo) = &mut *guard;
        while map.len() >= self.max {
            match fifo.pop_front() {
                Some(oldest) => {
                    map.remove(&oldest);
                }
                None => break,
            }
        }
        map.insert(id.clone(), 1);
        fifo.push_back(id.clone());
        if fifo.len() > 2 * self.max.max(64) {
            fifo.retain(|k| map.contains_key(k));
        }
        Some(id)
    }

    async fn lookup(&self, key: &String) -> bool {
        self.inner.lock().unwrap().0.get(key).copied().is_some()
    }

    async fn lookup_text(&self, text: &str) -> bool {
        self.inner.lock().unwrap().0.get(text).copied().is_some()
    }

    async fn close(&self, key: &String) -> bool {
        self.inner.lock().unwrap().0.remove(key).is_some()
    }

    async fn live(&self) -> usize {
        self.inner.lock().unwrap().0.len()
    }

    fn text(key: &String) -> String {
        key.clone()
    }
}
