//! The floor for a lookup: a raw `scc::HashMap<SessionId, u64>` hashed with
//! `ahash` like the core's index, read with `read_sync` (a shared bucket
//! lock) by the same parsed ids. No bound, no expiry, no FIFO: lookups
//! only. From text it parses with the core's parser, as any store keyed by
//! the parsed id must.

use mcp_session_core::SessionId;
use scc::HashMap;

use super::Peer;

pub struct SccRaw(pub HashMap<SessionId, u64, ahash::RandomState>);

impl Peer for SccRaw {
    type Key = SessionId;
    const NAME: &'static str = "scc-raw";
    const ASYNC: bool = false;
    const BOUNDED: bool = false;
    const WRITES: bool = false;

    fn new(_max_sessions: usize) -> Self {
        Self(HashMap::with_hasher(ahash::RandomState::new()))
    }

    async fn create(&self) -> Option<SessionId> {
        let id = SessionId::random().expect("entropy");
        self.0.insert_sync(id, 1).ok().map(|()| id)
    }

    async fn lookup(&self, key: &SessionId) -> bool {
        self.0.read_sync(key, |_, v| *v).is_some()
    }

    async fn lookup_text(&self, text: &str) -> bool {
        match SessionId::parse(text) {
            Ok(id) => self.0.read_sync(&id, |_, v| *v).is_some(),
            Err(_) => false,
        }
    }

    async fn close(&self, key: &SessionId) -> bool {
        self.0.remove_sync(key).is_some()
    }

    async fn live(&self) -> usize {
        self.0.len()
    }

    fn text(key: &SessionId) -> String {
        key.to_string()
    }
}
