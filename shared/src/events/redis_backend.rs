//! The Redis pub/sub backend. Channel names and payloads (unchanged from the first releases, so
//! mixed versions interoperate during a rolling update):
//!
//! | event | channel | payload |
//! |---|---|---|
//! | progress | `{prefix}job:{generation id}:progress` | the [`ProgressEvent`] JSON |
//! | cancel | `{prefix}boards:cancel` | the generation id |
//! | access changed | `{prefix}boards:access` | `{origin} {board id}` |
//! | board event | `{prefix}board:{board id}:events` | `{stream id} {BoardEvent JSON}` |
//!
//! Board events are also appended to a Redis Stream per board, `{prefix}board:{id}:stream`
//! (at most `redis.board_events_max_len` entries, none older than
//! `redis.board_events_max_age_seconds`; an idle stream expires), by one script that appends
//! and then publishes with the entry's id: live events and replayed ones carry the same ids.
//! A replay after id X is complete while X is still in the stream (trimming drops the oldest
//! entries first); otherwise the client is told to start over.
//!
//! A generation's progress is a board event (`generation_progress`): the same script also
//! publishes its plain [`ProgressEvent`] JSON on the generation's progress channel, so one
//! round trip serves the board feed, the per-generation stream and the documented
//! `job:{id}:progress` channel.
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

use super::{
    Backend, BoardEvent, Delivery, Event, History, ProgressEvent, StreamId, Topic,
    SUBSCRIPTION_BUFFER,
};
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

    fn board_stream(&self, id: Uuid) -> String {
        format!("{}board:{id}:stream", self.prefix)
    }

    /// What sending `event` takes; `None` when it cannot be encoded.
    fn encode(&self, event: &Event) -> Option<Outgoing> {
        Some(match event {
            Event::Progress(p) => Outgoing::Publish {
                channel: self.progress(p.job_id),
                payload: serde_json::to_string(p).ok()?,
            },
            Event::Cancel(id) => Outgoing::Publish {
                channel: self.cancel(),
                payload: id.to_string(),
            },
            Event::AccessChanged { origin, board } => Outgoing::Publish {
                channel: self.access(),
                payload: format!("{origin} {board}"),
            },
            Event::Board { board, event, .. } => Outgoing::Board {
                stream: self.board_stream(*board),
                channel: self.board(*board),
                json: serde_json::to_string(event).ok()?,
                progress: match event {
                    BoardEvent::GenerationProgress(p) => {
                        Some((self.progress(p.job_id), serde_json::to_string(p).ok()?))
                    }
                    _ => None,
                },
            },
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
            let (id, json) = payload.split_once(' ')?;
            let event: BoardEvent = serde_json::from_str(json).ok()?;
            return Some(Event::Board {
                board,
                event,
                id: Some(id.parse().ok()?),
            });
        }
        let id = rest.strip_prefix("job:")?.strip_suffix(":progress")?;
        let id = Uuid::parse_str(id).ok()?;
        let event: ProgressEvent = serde_json::from_str(payload).ok()?;
        (event.job_id == id).then_some(Event::Progress(event))
    }
}

/// One message for Redis.
enum Outgoing {
    Publish {
        channel: String,
        payload: String,
    },
    /// Appended to the board's stream, then published with its entry id; a progress event is
    /// also published (channel, payload) on its generation's channel.
    Board {
        stream: String,
        channel: String,
        json: String,
        progress: Option<(String, String)>,
    },
}

/// Appends ARGV[3] to stream KEYS[1] (at most ARGV[1] entries, none older than ARGV[2] ms; the
/// key expires after ARGV[2] ms without events), then publishes `{id} {ARGV[3]}` on ARGV[4],
/// and ARGV[6] on ARGV[5] when given (a progress event on its generation's channel).
const APPEND_AND_PUBLISH: &str = r"
local id = redis.call('XADD', KEYS[1], 'MAXLEN', ARGV[1], '*', 'e', ARGV[3])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('XTRIM', KEYS[1], 'MINID', tostring(now - tonumber(ARGV[2])))
redis.call('PEXPIRE', KEYS[1], ARGV[2])
redis.call('PUBLISH', ARGV[4], id .. ' ' .. ARGV[3])
if ARGV[5] then
  redis.call('PUBLISH', ARGV[5], ARGV[6])
end
return id
";

/// Retention of the board streams.
#[derive(Clone, Copy)]
struct Retention {
    max_len: u64,
    max_age_ms: u64,
}

pub struct RedisBackend {
    channels: Channels,
    url: String,
    pool: RedisPool,
    timeout: Duration,
    retention: Retention,
    tx: mpsc::Sender<Outgoing>,
    dropped: Arc<AtomicU64>,
    logger: slog::Logger,
}

impl RedisBackend {
    pub fn start(config: &RedisConfig, pool: RedisPool, logger: slog::Logger) -> Self {
        let (tx, rx) = mpsc::channel(QUEUE);
        let dropped = Arc::new(AtomicU64::new(0));
        let timeout = Duration::from_millis(config.command_timeout_ms.max(1));
        let retention = Retention {
            max_len: config.board_events_max_len.max(1),
            max_age_ms: config
                .board_events_max_age_seconds
                .max(1)
                .saturating_mul(1000),
        };
        tokio::spawn(send_loop(
            pool.clone(),
            timeout,
            retention,
            rx,
            dropped.clone(),
            logger.clone(),
        ));
        Self {
            channels: Channels {
                prefix: config.channel_prefix.clone(),
            },
            url: config.url.expose().to_string(),
            pool,
            timeout,
            retention,
            tx,
            dropped,
            logger,
        }
    }
}

#[async_trait::async_trait]
impl Backend for RedisBackend {
    async fn board_history(
        &self,
        board: Uuid,
        after: StreamId,
        limit: usize,
    ) -> anyhow::Result<History> {
        let key = self.channels.board_stream(board);
        let read = async {
            let mut conn = self
                .pool
                .get()
                .await
                .map_err(|e| anyhow::anyhow!("redis: {e}"))?;
            // Streams are trimmed from the oldest end: while the client's last event is still
            // kept, nothing after it was dropped.
            let kept: Vec<(String, Vec<String>)> = redis::cmd("XRANGE")
                .arg(&key)
                .arg(after.to_string())
                .arg(after.to_string())
                .query_async(&mut *conn)
                .await?;
            let complete = if kept.is_empty() {
                let len: u64 = redis::cmd("XLEN").arg(&key).query_async(&mut *conn).await?;
                // An empty or expired stream dropped only events older than the retention age:
                // none came after `after` if `after` itself is younger than that.
                let now = u64::try_from(chrono::Utc::now().timestamp_millis()).unwrap_or(0);
                len == 0 && after.ms.saturating_add(self.retention.max_age_ms) >= now
            } else {
                true
            };
            let entries: Vec<(String, Vec<String>)> = redis::cmd("XRANGE")
                .arg(&key)
                .arg(format!("({after}"))
                .arg("+")
                .arg("COUNT")
                .arg(limit)
                .query_async(&mut *conn)
                .await?;
            let events = entries
                .into_iter()
                .filter_map(|(id, fields)| {
                    let json = fields
                        .chunks(2)
                        .find(|kv| kv[0] == "e")
                        .and_then(|kv| kv.get(1))?;
                    Some((id.parse().ok()?, serde_json::from_str(json).ok()?))
                })
                .collect();
            anyhow::Ok(History { events, complete })
        };
        tokio::time::timeout(self.timeout.max(Duration::from_secs(2)), read)
            .await
            .map_err(|_| anyhow::anyhow!("redis did not answer in time"))?
    }

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
    retention: Retention,
    mut rx: mpsc::Receiver<Outgoing>,
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
            for message in &batch {
                match message {
                    Outgoing::Publish { channel, payload } => {
                        pipe.publish(channel, payload).ignore();
                    }
                    Outgoing::Board {
                        stream,
                        channel,
                        json,
                        progress,
                    } => {
                        let eval = pipe
                            .cmd("EVAL")
                            .arg(APPEND_AND_PUBLISH)
                            .arg(1)
                            .arg(stream)
                            .arg(retention.max_len)
                            .arg(retention.max_age_ms)
                            .arg(json)
                            .arg(channel);
                        if let Some((channel, payload)) = progress {
                            eval.arg(channel).arg(payload);
                        }
                        eval.ignore();
                    }
                }
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
        ] {
            let Some(Outgoing::Publish { channel, payload }) = channels.encode(&event) else {
                panic!("published directly: {event:?}");
            };
            assert!(channel.starts_with("t1:"), "{channel}");
            assert_eq!(channels.decode(&channel, &payload), Some(event));
        }
        // Board events are published by the append script as `{stream id} {json}`.
        let deleted = BoardEvent::GenerationDeleted {
            generation_id: Uuid::new_v4(),
        };
        let board = Event::Board {
            board: id,
            event: deleted.clone(),
            id: None,
        };
        let Some(Outgoing::Board {
            stream,
            channel,
            json,
            progress: None,
        }) = channels.encode(&board)
        else {
            panic!("board events go through the stream");
        };
        assert_eq!(stream, format!("t1:board:{id}:stream"));
        assert_eq!(
            channels.decode(&channel, &format!("1733050000000-3 {json}")),
            Some(Event::Board {
                board: id,
                event: deleted,
                id: Some("1733050000000-3".parse().unwrap()),
            })
        );
        assert_eq!(channels.progress(id), format!("t1:job:{id}:progress"));
        // A generation's progress is also published, unchanged, on its own channel.
        let event = ProgressEvent::new(id, "completed", 100.0, "finalizing", None);
        let Some(Outgoing::Board {
            progress: Some((channel, payload)),
            ..
        }) = channels.encode(&Event::Board {
            board: Uuid::new_v4(),
            event: BoardEvent::GenerationProgress(event.clone()),
            id: None,
        })
        else {
            panic!("progress is mirrored on the generation's channel");
        };
        assert_eq!(
            channels.decode(&channel, &payload),
            Some(Event::Progress(event))
        );
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
