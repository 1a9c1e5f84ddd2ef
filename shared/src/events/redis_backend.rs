//! The Redis pub/sub backend. Channel names and payloads (unchanged from the first releases, so
//! mixed versions interoperate during a rolling update):
//!
//! | event | channel | payload |
//! |---|---|---|
//! | progress | `{prefix}job:{generation id}:progress` | the [`ProgressEvent`] JSON |
//! | cancel | `{prefix}boards:cancel` | the generation id |
//! | access changed | `{prefix}boards:access` | `{origin} {board id}` |
//! | board event | `{prefix}board:{board id}:events` | the [`BoardEvent`] JSON |
//!
//! Publishing queues messages (dropping them when the queue is full) and sends them from one
//! task in pipelined batches, each bounded by the command timeout; after a failure it drops
//! messages for a second without trying. Each subscription is a task of its own that
//! reconnects with backoff.

use std::{
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};

use futures::StreamExt as _;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::{Backend, BoardEvent, Delivery, Event, ProgressEvent, Topic, SUBSCRIPTION_BUFFER};
use crate::{config::RedisConfig, redis_pool::RedisPool};

/// Messages waiting to be published; beyond this, new ones are dropped (and counted).
const QUEUE: usize = 4096;
/// Messages sent in one pipeline.
const BATCH: usize = 128;
/// After a failed send, messages are dropped without trying for this long.
const PAUSE_AFTER_FAILURE: Duration = Duration::from_secs(1);
/// Longest wait for a connection and its subscriptions before trying again.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

pub fn progress_pattern(prefix: &str) -> String {
    Channels {
        prefix: prefix.to_string(),
    }
    .progress_pattern()
}

/// Channel names under one prefix.
#[derive(Clone)]
struct Channels {
    prefix: String,
}

impl Channels {
    fn progress(&self, id: Uuid) -> String {
        format!("{}job:{id}:progress", self.prefix)
    }

    fn progress_pattern(&self) -> String {
        format!("{}job:*:progress", self.prefix)
    }

    fn cancel(&self) -> String {
        format!("{}boards:cancel", self.prefix)
    }

    fn access(&self) -> String {
        format!("{}boards:access", self.prefix)
    }

    fn board(&self, id: Uuid) -> String {
        format!("{}board:{id}:events", self.prefix)
    }

    fn board_pattern(&self) -> String {
        format!("{}board:*:events", self.prefix)
    }

    /// The channel and payload of `event`; `None` when it cannot be encoded.
    fn encode(&self, event: &Event) -> Option<(String, String)> {
        Some(match event {
            Event::Progress(p) => (self.progress(p.job_id), serde_json::to_string(p).ok()?),
            Event::Cancel(id) => (self.cancel(), id.to_string()),
            Event::AccessChanged { origin, board } => (self.access(), format!("{origin} {board}")),
            Event::Board { board, event } => {
                (self.board(*board), serde_json::to_string(event).ok()?)
            }
        })
    }

    /// The event a message carries; `None` for anything malformed (it is ignored).
    fn decode(&self, channel: &str, payload: &str) -> Option<Event> {
        if channel == self.cancel() {
            return Uuid::parse_str(payload.trim()).ok().map(Event::Cancel);
        }
        if channel == self.access() {
            let mut ids = payload.split(' ').map(Uuid::parse_str);
            return match (ids.next(), ids.next()) {
                (Some(Ok(origin)), Some(Ok(board))) => Some(Event::AccessChanged { origin, board }),
                _ => None,
            };
        }
        let rest = channel.strip_prefix(self.prefix.as_str())?;
        if let Some(board) = rest
            .strip_prefix("board:")
            .and_then(|r| r.strip_suffix(":events"))
        {
            let board = Uuid::parse_str(board).ok()?;
            let event: BoardEvent = serde_json::from_str(payload).ok()?;
            return Some(Event::Board { board, event });
        }
        let id = rest.strip_prefix("job:")?.strip_suffix(":progress")?;
        let id = Uuid::parse_str(id).ok()?;
        let event: ProgressEvent = serde_json::from_str(payload).ok()?;
        (event.job_id == id).then_some(Event::Progress(event))
    }
}

pub struct RedisBackend {
    channels: Channels,
    url: String,
    tx: mpsc::Sender<(String, String)>,
    dropped: Arc<AtomicU64>,
    logger: slog::Logger,
}

impl RedisBackend {
    pub fn start(config: &RedisConfig, pool: RedisPool, logger: slog::Logger) -> Self {
        let (tx, rx) = mpsc::channel(QUEUE);
        let dropped = Arc::new(AtomicU64::new(0));
        tokio::spawn(send_loop(
            pool,
            Duration::from_millis(config.command_timeout_ms.max(1)),
            rx,
            dropped.clone(),
            logger.clone(),
        ));
        Self {
            channels: Channels {
                prefix: config.channel_prefix.clone(),
            },
            url: config.url.expose().to_string(),
            tx,
            dropped,
            logger,
        }
    }
}

impl Backend for RedisBackend {
    fn publish(&self, event: Event) {
        let queued = self
            .channels
            .encode(&event)
            .is_some_and(|message| self.tx.try_send(message).is_ok());
        if !queued {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn subscribe(
        &self,
        topics: Vec<Topic>,
        shutdown: CancellationToken,
    ) -> mpsc::Receiver<Delivery> {
        let (out, rx) = mpsc::channel(SUBSCRIPTION_BUFFER);
        tokio::spawn(subscription(
            self.url.clone(),
            self.channels.clone(),
            topics,
            out,
            shutdown,
            self.logger.clone(),
        ));
        rx
    }

    fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

/// One subscription: connects, subscribes to the channels of `topics`, forwards decoded events,
/// and reconnects with backoff (200 ms doubling to 5 s) until `shutdown` or until nobody reads.
async fn subscription(
    url: String,
    channels: Channels,
    topics: Vec<Topic>,
    out: mpsc::Sender<Delivery>,
    shutdown: CancellationToken,
    logger: slog::Logger,
) {
    let mut backoff = Duration::from_millis(200);
    while !shutdown.is_cancelled() {
        let session = async {
            let client = redis::Client::open(url.as_str())?;
            // A black-holed Redis must not hold the subscription (or shutdown) forever.
            let connect = async {
                let mut pubsub = client.get_async_pubsub().await?;
                for topic in &topics {
                    match topic {
                        Topic::Progress => pubsub.psubscribe(channels.progress_pattern()).await?,
                        Topic::Cancel => pubsub.subscribe(channels.cancel()).await?,
                        Topic::Access => pubsub.subscribe(channels.access()).await?,
                        Topic::Board => pubsub.psubscribe(channels.board_pattern()).await?,
                    }
                }
                anyhow::Ok(pubsub)
            };
            let mut pubsub = tokio::time::timeout(CONNECT_TIMEOUT, connect)
                .await
                .map_err(|_| anyhow::anyhow!("connecting to Redis timed out"))??;
            if out.send(Delivery::Connected).await.is_err() {
                return anyhow::Ok(());
            }
            backoff = Duration::from_millis(200);
            let mut messages = pubsub.on_message();
            loop {
                let Some(m) = messages.next().await else {
                    anyhow::bail!("subscription closed")
                };
                let payload: String = m.get_payload().unwrap_or_default();
                if let Some(event) = channels.decode(m.get_channel_name(), &payload) {
                    if out.send(Delivery::Event(event)).await.is_err() {
                        return anyhow::Ok(());
                    }
                }
            }
        };
        let session = tokio::select! {
            _ = shutdown.cancelled() => return,
            r = session => r,
        };
        match session {
            Ok(()) => return,
            Err(e) => {
                slog::debug!(logger, "event subscription lost Redis"; "error" => format!("{e:#}"));
                if out
                    .send(Delivery::Disconnected(format!("{e:#}")))
                    .await
                    .is_err()
                {
                    return;
                }
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(Duration::from_secs(5));
            }
        }
    }
}

async fn send_loop(
    pool: RedisPool,
    timeout: Duration,
    mut rx: mpsc::Receiver<(String, String)>,
    dropped: Arc<AtomicU64>,
    logger: slog::Logger,
) {
    let mut paused_until: Option<Instant> = None;
    let mut batch = Vec::with_capacity(BATCH);
    while rx.recv_many(&mut batch, BATCH).await > 0 {
        if paused_until.is_some_and(|t| Instant::now() < t) {
            dropped.fetch_add(batch.len() as u64, Ordering::Relaxed);
            batch.clear();
            continue;
        }
        let send = async {
            let mut conn = pool
                .get()
                .await
                .map_err(|e| anyhow::anyhow!("redis: {e}"))?;
            let mut pipe = redis::pipe();
            for (channel, payload) in &batch {
                pipe.publish(channel, payload).ignore();
            }
            pipe.query_async::<()>(&mut *conn).await?;
            anyhow::Ok(())
        };
        let result = match tokio::time::timeout(timeout, send).await {
            Ok(r) => r,
            Err(_) => Err(anyhow::anyhow!("redis did not answer within {timeout:?}")),
        };
        match result {
            Ok(()) => {
                if paused_until.take().is_some() {
                    slog::info!(logger, "event publishing to Redis works again");
                }
            }
            Err(e) => {
                dropped.fetch_add(batch.len() as u64, Ordering::Relaxed);
                if paused_until.is_none() {
                    slog::warn!(logger, "event publishing failed; events are dropped until Redis answers (rows stay correct)";
                        "error" => format!("{e:#}"));
                }
                paused_until = Some(Instant::now() + PAUSE_AFTER_FAILURE);
            }
        }
        batch.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_event_round_trips_through_its_channel_and_payload() {
        let channels = Channels {
            prefix: "t1:".into(),
        };
        let id = Uuid::new_v4();
        for event in [
            Event::Progress(ProgressEvent::new(
                id,
                "processing",
                40.0,
                "processing",
                Some("x".into()),
            )),
            Event::Cancel(id),
            Event::AccessChanged {
                origin: Uuid::new_v4(),
                board: id,
            },
            Event::Board {
                board: id,
                event: BoardEvent::GenerationDeleted {
                    generation_id: Uuid::new_v4(),
                },
            },
        ] {
            let (channel, payload) = channels.encode(&event).unwrap();
            assert!(channel.starts_with("t1:"), "{channel}");
            assert_eq!(channels.decode(&channel, &payload), Some(event));
        }
        assert_eq!(channels.progress(id), format!("t1:job:{id}:progress"));
        // Malformed messages are ignored.
        assert_eq!(channels.decode("t1:boards:cancel", "nope"), None);
        assert_eq!(channels.decode("t1:job:nope:progress", "{}"), None);
        let other = ProgressEvent::new(Uuid::new_v4(), "processing", 1.0, "processing", None);
        assert_eq!(
            channels.decode(
                &channels.progress(id),
                &serde_json::to_string(&other).unwrap()
            ),
            None,
            "an event on another generation's channel"
        );
    }
}
