//! Events between processes, in one place: the typed [`Event`]s, their names and payloads on
//! Redis pub/sub, publishing and subscribing. Workers publish progress; the API publishes
//! cancellations (to workers) and board access changes (to its other replicas); each API
//! process holds **one** subscription and fans it out to its streams.
//!
//! [`EventBus::from_config`] builds the Redis backend both binaries use; [`EventBus::memory`] is
//! an in-process backend for tests. Publishing is best-effort and never waits: the database
//! row is the source of truth, and a slow or unreachable Redis must never hold up a job or a
//! request (dropped events are counted).

mod board;
mod history;
mod memory;
pub mod progress;
mod redis_backend;

use std::sync::Arc;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

pub use board::BoardEvent;
pub use history::{History, StreamId};
pub use progress::{is_terminal, phase_of, ProgressEvent};

use crate::{config::RedisConfig, redis_pool::RedisPool};

/// The Redis pattern of every generation's progress channel, for tools that listen to Redis
/// directly (the benchmarks, process tests).
pub fn progress_pattern(prefix: &str) -> String {
    redis_backend::progress_pattern(prefix)
}

/// Something one process tells the others.
#[derive(Clone, Debug, PartialEq)]
pub enum Event {
    /// A generation's progress (workers; the API for a cancellation's terminal event).
    Progress(ProgressEvent),
    /// A user cancelled or deleted a running generation: the worker running it stops.
    Cancel(Uuid),
    /// A board's members, visibility or existence changed: streams of that board re-check
    /// their caller's access. `origin` is the API process that announced it (it already told
    /// its own streams).
    AccessChanged { origin: Uuid, board: Uuid },
    /// Something changed on a board (its feed). `id` is set on delivery: the event's place in
    /// the board's replay stream (publishers leave it `None`).
    Board {
        board: Uuid,
        event: BoardEvent,
        id: Option<StreamId>,
    },
}

/// The kinds of events a subscriber asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Topic {
    Progress,
    Cancel,
    Access,
    Board,
}

impl Event {
    pub fn topic(&self) -> Topic {
        match self {
            Event::Progress(_) => Topic::Progress,
            Event::Cancel(_) => Topic::Cancel,
            Event::AccessChanged { .. } => Topic::Access,
            Event::Board { .. } => Topic::Board,
        }
    }
}

/// What a subscription yields: events, and the state of its connection (a consumer that
/// depends on live events, like the SSE relay, falls back to polling while disconnected).
#[derive(Debug)]
pub enum Delivery {
    Connected,
    Disconnected(String),
    Event(Event),
}

/// Where events go and come from (Redis, or memory in tests).
#[async_trait::async_trait]
trait Backend: Send + Sync {
    async fn board_history(
        &self,
        board: Uuid,
        after: StreamId,
        limit: usize,
    ) -> anyhow::Result<History>;
    fn publish(&self, event: Event);
    fn subscribe(
        &self,
        topics: Vec<Topic>,
        shutdown: CancellationToken,
    ) -> mpsc::Receiver<Delivery>;
    fn dropped(&self) -> u64;
}

/// Publishing and subscribing. Cheap to clone.
#[derive(Clone)]
pub struct EventBus {
    backend: Arc<dyn Backend>,
}

/// Deliveries buffered per subscription before the reader waits for its consumer.
const SUBSCRIPTION_BUFFER: usize = 4096;

impl EventBus {
    /// The Redis backend (pub/sub under `redis.channel_prefix`, board events also kept in a
    /// Redis Stream per board), publishing through `pool`.
    /// Starts the publishing task: call within a Tokio runtime.
    pub fn from_config(config: &RedisConfig, pool: RedisPool, logger: slog::Logger) -> Self {
        Self {
            backend: Arc::new(redis_backend::RedisBackend::start(config, pool, logger)),
        }
    }

    /// An in-process backend: every subscriber of this bus (and its clones) sees what any of
    /// them publishes.
    pub fn memory() -> Self {
        Self::memory_with_retention(1000)
    }

    /// [`memory`](Self::memory), keeping at most `max_len` events per board.
    pub fn memory_with_retention(max_len: usize) -> Self {
        Self {
            backend: Arc::new(memory::MemoryBackend::new(max_len)),
        }
    }

    /// Queues `event` for every subscriber; drops it (counted) when the queue is full or the
    /// backend is unreachable.
    pub fn publish(&self, event: Event) {
        self.backend.publish(event);
    }

    /// The events of `topics` from now on, with connection changes, until `shutdown` (then the
    /// receiver ends). Redis subscriptions reconnect by themselves, with backoff.
    pub fn subscribe(
        &self,
        topics: &[Topic],
        shutdown: CancellationToken,
    ) -> mpsc::Receiver<Delivery> {
        self.backend.subscribe(topics.to_vec(), shutdown)
    }

    /// Board `board`'s kept events after `after`, at most `limit` (see [`History`]).
    pub async fn board_history(
        &self,
        board: Uuid,
        after: StreamId,
        limit: usize,
    ) -> anyhow::Result<History> {
        self.backend.board_history(board, after, limit).await
    }

    /// Events dropped so far (queue full, Redis down or slow).
    pub fn dropped(&self) -> u64 {
        self.backend.dropped()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    async fn next_event(rx: &mut mpsc::Receiver<Delivery>) -> Event {
        loop {
            match tokio::time::timeout(Duration::from_secs(5), rx.recv()).await {
                Ok(Some(Delivery::Event(e))) => return e,
                Ok(Some(_)) => continue,
                other => panic!("no event: {other:?}"),
            }
        }
    }

    #[tokio::test]
    async fn board_events_are_kept_for_replay_within_the_retention() {
        let bus = EventBus::memory_with_retention(3);
        let board = Uuid::new_v4();
        let stop = CancellationToken::new();
        let mut feed = bus.subscribe(&[Topic::Board], stop.clone());
        for _ in 0..5 {
            bus.publish(Event::Board {
                board,
                event: BoardEvent::BoardUpdated,
                id: None,
            });
        }
        let mut ids = vec![];
        for _ in 0..5 {
            match next_event(&mut feed).await {
                Event::Board { id: Some(id), .. } => ids.push(id),
                other => panic!("{other:?}"),
            }
        }
        assert!(ids.windows(2).all(|w| w[0] < w[1]), "{ids:?}");
        // The newest three are kept: after the second, all of them; after the first, a gap.
        let after_second = bus.board_history(board, ids[1], 10).await.unwrap();
        assert!(after_second.complete);
        assert_eq!(
            after_second
                .events
                .iter()
                .map(|(id, _)| *id)
                .collect::<Vec<_>>(),
            ids[2..]
        );
        let limited = bus.board_history(board, ids[1], 2).await.unwrap();
        assert_eq!(limited.events.len(), 2);
        assert!(!bus.board_history(board, ids[0], 10).await.unwrap().complete);
        let other = bus.board_history(Uuid::new_v4(), ids[0], 10).await.unwrap();
        assert!(other.complete && other.events.is_empty());
        stop.cancel();
    }

    #[tokio::test]
    async fn the_memory_bus_delivers_the_topics_asked_for() {
        let bus = EventBus::memory();
        let stop = CancellationToken::new();
        let mut workers = bus.subscribe(&[Topic::Cancel], stop.clone());
        let mut api = bus.subscribe(&[Topic::Progress, Topic::Access], stop.clone());
        assert!(matches!(workers.recv().await, Some(Delivery::Connected)));
        let id = Uuid::new_v4();
        let progress = Event::Progress(ProgressEvent::new(
            id,
            "processing",
            5.0,
            "processing",
            None,
        ));
        bus.publish(progress.clone());
        bus.publish(Event::Cancel(id));
        assert_eq!(next_event(&mut api).await, progress);
        assert_eq!(next_event(&mut workers).await, Event::Cancel(id));
        stop.cancel();
        assert!(tokio::time::timeout(Duration::from_secs(5), async {
            while workers.recv().await.is_some() {}
        })
        .await
        .is_ok());
    }
}
