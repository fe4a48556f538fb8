//! [`ClosedEvents`]: every close in the fleet, read from the registry's
//! Redis stream.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use redis::{Script, Value};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::conn::Conn;
use super::store::RedisRegistry;
use crate::{CloseReason, SessionId};

/// How long one `XREAD` blocks (an event is delivered at most this long
/// plus one round trip after it was written).
const BLOCK: Duration = Duration::from_millis(250);
/// The most events read per `XREAD`.
const BATCH: usize = 1_024;
/// The subscriber's channel capacity (a slow consumer slows the reader; the
/// stream keeps the events meanwhile).
const CHANNEL: usize = 4_096;
/// Pause after a failed read before the next try.
const RETRY: Duration = Duration::from_millis(100);

/// Reads the next events and detects a gap, in one atomic script.
const EVENTS_SCRIPT: &str = include_str!("scripts/events.lua");

/// Where a [`ClosedEvents`] subscription starts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EventsFrom {
    /// With the first event written after the subscription started.
    Now,
    /// With the oldest event the stream still holds.
    Beginning,
    /// With the first event after this stream id (e.g. the
    /// [`stream_id`](ClosedEvent::stream_id) a previous subscriber saw
    /// last).
    After(String),
}

/// Close events this subscriber will never see: the stream no longer holds
/// everything after the last event it read (trimmed past it, see
/// [`events_maxlen`](super::RedisRegistryBuilder::events_maxlen), or lost
/// by Redis: a restart without persistence, a failover to a replica that
/// had not received them). Sessions may have closed without a
/// [`ClosedEvent`]: reconcile what you host with
/// [`RedisRegistry::present`]. Counted in
/// [`ClosedEvents::gaps`] and, fleet-wide, in
/// [`RedisStats::events_gaps`](super::RedisStats::events_gaps).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("close events after stream id {after} were lost before this subscriber read them")]
pub struct EventsGap {
    /// The last stream id read before the gap (`0-0`: none).
    pub after: String,
}

/// One close, anywhere in the fleet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClosedEvent {
    /// The session.
    pub id: SessionId,
    /// Why it closed (`Closed`, `Evicted`, `IdleTimeout`, `MaxLifetime`,
    /// `InitTimeout` or `Redeemed`).
    pub reason: CloseReason,
    /// The event's id in the Redis stream (resume after it with
    /// [`EventsFrom::After`]).
    pub stream_id: String,
}

fn reason(text: &str) -> Option<CloseReason> {
    Some(match text {
        "closed" => CloseReason::Closed,
        "evicted" => CloseReason::Evicted,
        "idle_timeout" => CloseReason::IdleTimeout,
        "max_lifetime" => CloseReason::MaxLifetime,
        "init_timeout" => CloseReason::InitTimeout,
        "redeemed" => CloseReason::Redeemed,
        _ => return None,
    })
}

/// A subscription to the registry's close events: a task reading the
/// stream `{prefix}:events` on its own connection, from the last id it saw,
/// so a dropped connection or a Redis restart loses no event the stream
/// still holds (the stream is trimmed to about
/// [`events_maxlen`](super::RedisRegistryBuilder::events_maxlen) entries).
/// Events come in stream order, at most ~250 ms plus a round trip after
/// the close.
///
/// Each read is one script that also checks whether the stream still holds
/// everything after the last id read: every event carries a consecutive
/// number `n`, so the first event after one numbered k must be numbered
/// k + 1; a stream that vanished or is older than the last id read means
/// Redis lost its data. If not, the
/// subscription yields an [`EventsGap`] error in order, before the events
/// that follow it, so a consumer cannot miss it; see [`gaps`](Self::gaps).
///
/// Dropping it stops the task.
#[derive(Debug)]
pub struct ClosedEvents {
    receiver: mpsc::Receiver<Result<ClosedEvent, EventsGap>>,
    gaps: Arc<AtomicU64>,
    task: JoinHandle<()>,
}

impl ClosedEvents {
    pub(crate) fn spawn(registry: RedisRegistry, from: EventsFrom) -> Self {
        let (sender, receiver) = mpsc::channel(CHANNEL);
        let gaps = Arc::new(AtomicU64::new(0));
        let task = tokio::spawn(read_loop(registry, from, sender, gaps.clone()));
        Self {
            receiver,
            gaps,
            task,
        }
    }

    /// The next event, or an [`EventsGap`] where events were lost; `None`
    /// once the reader stopped (never, unless the runtime shuts down).
    pub async fn recv(&mut self) -> Option<Result<ClosedEvent, EventsGap>> {
        self.receiver.recv().await
    }

    /// The next event or gap if one is ready.
    pub fn try_recv(&mut self) -> Option<Result<ClosedEvent, EventsGap>> {
        self.receiver.try_recv().ok()
    }

    /// How many gaps this subscription has found so far.
    pub fn gaps(&self) -> u64 {
        self.gaps.load(Ordering::Relaxed)
    }
}

impl Drop for ClosedEvents {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn bulk(value: &Value) -> Option<String> {
    match value {
        Value::BulkString(bytes) => String::from_utf8(bytes.clone()).ok(),
        Value::SimpleString(text) => Some(text.clone()),
        _ => None,
    }
}

/// An entry `[id, [field, value, ...]]` as (stream id, its event number
/// `n` if it has one, the event if valid).
fn entry(value: &Value) -> Option<(String, Option<u64>, Option<ClosedEvent>)> {
    let Value::Array(parts) = value else {
        return None;
    };
    let stream_id = bulk(parts.first()?)?;
    let mut id = None;
    let mut why = None;
    let mut number = None;
    if let Some(Value::Array(fields)) = parts.get(1) {
        for pair in fields.chunks_exact(2) {
            match bulk(&pair[0]).as_deref() {
                Some("id") => id = bulk(&pair[1]).and_then(|t| SessionId::parse(&t).ok()),
                Some("reason") => why = bulk(&pair[1]).and_then(|t| reason(&t)),
                Some("n") => number = bulk(&pair[1]).and_then(|t| t.parse().ok()),
                _ => {}
            }
        }
    }
    let event = match (id, why) {
        (Some(id), Some(reason)) => Some(ClosedEvent {
            id,
            reason,
            stream_id: stream_id.clone(),
        }),
        _ => None,
    };
    Some((stream_id, number, event))
}

async fn connect(registry: &RedisRegistry) -> Option<Conn> {
    let timeout = registry.call_timeout();
    let connecting = registry.target().connect(timeout, timeout + BLOCK);
    tokio::time::timeout(timeout, connecting).await.ok()?.ok()
}

/// `call`'s value, or `None` if it failed or took longer than `deadline`.
async fn query<T>(
    deadline: Duration,
    call: impl std::future::Future<Output = redis::RedisResult<T>>,
) -> Option<T> {
    tokio::time::timeout(deadline, call).await.ok()?.ok()
}

async fn read_loop(
    registry: RedisRegistry,
    from: EventsFrom,
    sender: mpsc::Sender<Result<ClosedEvent, EventsGap>>,
    gaps: Arc<AtomicU64>,
) {
    let key = registry.keys().events().to_owned();
    let stats = registry.keys().stats().to_owned();
    let script = Script::new(EVENTS_SCRIPT);
    let mut conn: Option<Conn> = None;
    // The event number of `last`, when known (see scripts/events.lua).
    let mut number: Option<u64> = None;
    // Whether a read succeeded before (the stream then exists).
    let mut seen = false;
    let mut last = match from {
        EventsFrom::Beginning => Some("0-0".to_owned()),
        EventsFrom::After(id) => Some(id),
        EventsFrom::Now => None,
    };
    let deadline = registry.call_timeout() + BLOCK;
    loop {
        if sender.is_closed() {
            return;
        }
        let Some(mut c) = conn.clone() else {
            conn = connect(&registry).await;
            if conn.is_none() {
                tokio::time::sleep(RETRY).await;
            }
            continue;
        };
        // `Now` resolves to the stream's current last id once, so that a
        // reconnect resumes from there rather than from "$".
        let Some(after) = last.clone() else {
            let mut cmd = redis::cmd("XREVRANGE");
            cmd.arg(&key).arg("+").arg("-").arg("COUNT").arg(1);
            match query::<Value>(deadline, cmd.query_async(&mut c)).await {
                Some(reply) => {
                    let newest = match &reply {
                        Value::Array(entries) => entries.first().and_then(entry),
                        _ => None,
                    };
                    number = newest.as_ref().and_then(|(_, n, _)| *n);
                    last = Some(newest.map_or_else(|| "0-0".to_owned(), |(id, _, _)| id));
                }
                None => {
                    conn = None;
                    tokio::time::sleep(RETRY).await;
                }
            }
            continue;
        };
        let mut invocation = script.prepare_invoke();
        invocation
            .key(&key)
            .key(&stats)
            .arg(&after)
            .arg(BATCH)
            .arg(number.map(|n| n.to_string()).unwrap_or_default())
            .arg(if seen { "1" } else { "0" });
        let reply = query::<Value>(deadline, invocation.invoke_async(&mut c)).await;
        let Some(Value::Array(items)) = reply else {
            tracing::debug!(target: super::LOG_TARGET, "close-event read failed");
            conn = None;
            tokio::time::sleep(RETRY).await;
            continue;
        };
        seen = true;
        let gap = items.first().and_then(|v| match v {
            Value::Int(n) => Some(*n),
            _ => None,
        }) == Some(1);
        let from = items.get(1).and_then(bulk).unwrap_or(after.clone());
        if from != after {
            number = None; // a new stream
        }
        if gap {
            gaps.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(
                target: super::LOG_TARGET,
                last_seen = %after,
                "close events were lost before this subscriber read them"
            );
            if sender.send(Err(EventsGap { after })).await.is_err() {
                return;
            }
        }
        last = Some(from);
        let entries = items.get(2..).unwrap_or_default();
        for value in entries {
            let Some((stream_id, n, event)) = entry(value) else {
                continue;
            };
            last = Some(stream_id);
            number = n;
            if let Some(event) = event
                && sender.send(Ok(event)).await.is_err()
            {
                return;
            }
        }
        if entries.is_empty() {
            // Nothing new: wait for the next event (the read itself is
            // done by the script, which also checks for a gap).
            let mut cmd = redis::cmd("XREAD");
            cmd.arg("COUNT")
                .arg(1)
                .arg("BLOCK")
                .arg(BLOCK.as_millis() as u64)
                .arg("STREAMS")
                .arg(&key)
                .arg(last.as_deref().unwrap_or("0-0"));
            if query::<Value>(deadline, cmd.query_async(&mut c))
                .await
                .is_none()
            {
                conn = None;
                tokio::time::sleep(RETRY).await;
            }
        }
    }
}
