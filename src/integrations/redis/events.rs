//! [`ClosedEvents`]: every close in the fleet, read from the registry's
//! Redis stream.

use std::time::Duration;

use redis::Value;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::streams::{StreamReadOptions, StreamReadReply};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

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

/// One close, anywhere in the fleet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClosedEvent {
    /// The session.
    pub id: SessionId,
    /// Why it closed (`Closed`, `Evicted`, `IdleTimeout`, `MaxLifetime` or
    /// `InitTimeout`).
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
        _ => return None,
    })
}

/// A subscription to the registry's close events: a task reading the
/// stream `{prefix}:events` with `XREAD BLOCK` on its own connection, from
/// the last id it saw, so a dropped connection or a Redis restart loses no
/// event the stream still holds (the stream is trimmed to about
/// [`events_maxlen`](super::RedisRegistryBuilder::events_maxlen) entries).
/// Events come in stream order, at most ~250 ms plus a round trip after
/// the close.
///
/// After a failed read it checks whether the stream still holds everything
/// after the last id it saw, and logs a warning (target
/// `mcp_session_core::redis`) if not: events were trimmed away, or Redis
/// restarted without persistence.
///
/// Dropping it stops the task.
#[derive(Debug)]
pub struct ClosedEvents {
    receiver: mpsc::Receiver<ClosedEvent>,
    task: JoinHandle<()>,
}

impl ClosedEvents {
    pub(crate) fn spawn(registry: RedisRegistry, from: EventsFrom) -> Self {
        let (sender, receiver) = mpsc::channel(CHANNEL);
        let task = tokio::spawn(read_loop(registry, from, sender));
        Self { receiver, task }
    }

    /// The next event; `None` once the reader stopped (never, unless the
    /// runtime shuts down).
    pub async fn recv(&mut self) -> Option<ClosedEvent> {
        self.receiver.recv().await
    }

    /// The next event if one is ready.
    pub fn try_recv(&mut self) -> Option<ClosedEvent> {
        self.receiver.try_recv().ok()
    }
}

impl Drop for ClosedEvents {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The id of the first entry of an `XRANGE`/`XREVRANGE` reply.
fn first_id(reply: &Value) -> Option<String> {
    let Value::Array(entries) = reply else {
        return None;
    };
    match entries.first()? {
        Value::Array(parts) => match parts.first()? {
            Value::BulkString(id) => String::from_utf8(id.clone()).ok(),
            _ => None,
        },
        _ => None,
    }
}

/// A stream id `ms-seq` as a comparable pair.
fn stream_id_key(id: &str) -> (u64, u64) {
    let (ms, seq) = id.split_once('-').unwrap_or((id, "0"));
    (ms.parse().unwrap_or(0), seq.parse().unwrap_or(0))
}

async fn connect(registry: &RedisRegistry) -> Option<ConnectionManager> {
    let timeout = registry.call_timeout();
    let config = ConnectionManagerConfig::new()
        .set_connection_timeout(Some(timeout))
        .set_response_timeout(Some(timeout + BLOCK))
        .set_number_of_retries(2)
        .set_min_delay(Duration::from_millis(10))
        .set_max_delay(Duration::from_millis(200));
    let connecting = ConnectionManager::new_with_config(registry.client().clone(), config);
    tokio::time::timeout(timeout, connecting).await.ok()?.ok()
}

async fn read_loop(registry: RedisRegistry, from: EventsFrom, sender: mpsc::Sender<ClosedEvent>) {
    let key = registry.keys().events().to_owned();
    let mut conn = None;
    let mut last = match from {
        EventsFrom::Beginning => Some("0-0".to_owned()),
        EventsFrom::After(id) => Some(id),
        EventsFrom::Now => None,
    };
    let deadline = registry.call_timeout() + BLOCK;
    let mut check_gap = false;
    loop {
        if sender.is_closed() {
            return;
        }
        let Some(c) = conn.as_mut() else {
            conn = connect(&registry).await;
            if conn.is_none() {
                tokio::time::sleep(RETRY).await;
            }
            continue;
        };
        if check_gap && let Some(after) = &last {
            // After a failure: did the stream lose entries we had not read
            // (trimmed past us, or Redis restarted without persistence)?
            let first: Result<Value, _> = tokio::time::timeout(
                deadline,
                redis::cmd("XRANGE")
                    .arg(&key)
                    .arg("-")
                    .arg("+")
                    .arg("COUNT")
                    .arg(1)
                    .query_async(c),
            )
            .await
            .unwrap_or_else(|_| Err((redis::ErrorKind::Io, "timeout").into()));
            if let Ok(reply) = first {
                check_gap = false;
                if let Some(first) = first_id(&reply)
                    && stream_id_key(&first) > stream_id_key(after)
                    && after != "0-0"
                {
                    tracing::warn!(
                        target: super::LOG_TARGET,
                        last_seen = %after,
                        oldest_available = %first,
                        "close events may have been lost: the stream no longer holds \
                         everything after the last event this subscriber saw"
                    );
                }
            }
        }
        // `Now` resolves to the stream's current last id once, so that a
        // reconnect resumes from there rather than from "$".
        let Some(after) = last.clone() else {
            let newest: Result<Value, _> = tokio::time::timeout(
                deadline,
                redis::cmd("XREVRANGE")
                    .arg(&key)
                    .arg("+")
                    .arg("-")
                    .arg("COUNT")
                    .arg(1)
                    .query_async(c),
            )
            .await
            .unwrap_or_else(|_| Err((redis::ErrorKind::Io, "timeout").into()));
            match newest {
                Ok(reply) => {
                    last = Some(first_id(&reply).unwrap_or_else(|| "0-0".to_owned()));
                }
                _ => tokio::time::sleep(RETRY).await,
            }
            continue;
        };
        let options = StreamReadOptions::default()
            .count(BATCH)
            .block(BLOCK.as_millis() as usize);
        let read = tokio::time::timeout(deadline, async {
            redis::AsyncCommands::xread_options::<_, _, Option<StreamReadReply>>(
                c,
                &[&key],
                &[&after],
                &options,
            )
            .await
        })
        .await;
        let reply = match read {
            Ok(Ok(reply)) => reply,
            Ok(Err(error)) => {
                tracing::debug!(target: super::LOG_TARGET, %error, "close-event read failed");
                check_gap = true;
                tokio::time::sleep(RETRY).await;
                continue;
            }
            Err(_) => {
                check_gap = true;
                tokio::time::sleep(RETRY).await;
                continue;
            }
        };
        let Some(reply) = reply else { continue };
        for stream in reply.keys {
            for entry in stream.ids {
                last = Some(entry.id.clone());
                let id = entry
                    .get::<String>("id")
                    .and_then(|t| SessionId::parse(&t).ok());
                let why = entry.get::<String>("reason").and_then(|t| reason(&t));
                if let (Some(id), Some(reason)) = (id, why) {
                    let event = ClosedEvent {
                        id,
                        reason,
                        stream_id: entry.id,
                    };
                    if sender.send(event).await.is_err() {
                        return;
                    }
                }
            }
        }
    }
}
