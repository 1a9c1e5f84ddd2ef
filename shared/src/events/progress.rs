//! Progress events: published by workers on Redis pub/sub (`{prefix}job:{id}:progress`),
//! relayed by the API as Server-Sent Events. One scale: `progress` is a percentage, 0 to 100.
//!
//! Publishing is best-effort: the database row is the source of truth, and a slow or
//! unreachable Redis must never hold up a job or a request. [`Publisher`] queues messages
//! (dropping them when its queue is full) and sends them from one task, each batch bounded
//! by the command timeout.

use std::{
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};

use bb8_redis::RedisConnectionManager;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

use crate::config::RedisConfig;

pub type RedisPool = bb8::Pool<RedisConnectionManager>;

/// The SSE payload (contract §3.3 keys, in that order, plus `jobId` for the Boards client).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ProgressEvent {
    pub job_id: Uuid,
    /// `pending`, `processing`, `completed`, `failed` or `cancelled`.
    pub status: String,
    /// Percent complete, 0-100.
    pub progress: f64,
    /// `queued`, `initializing`, `processing` or `finalizing`.
    pub phase: String,
    pub message: Option<String>,
    pub estimated_completion: Option<DateTime<Utc>>,
    pub artifacts: Vec<Value>,
    pub timestamp: DateTime<Utc>,
    #[serde(rename = "jobId")]
    pub job_id_camel: Uuid,
}

impl ProgressEvent {
    pub fn new(
        job_id: Uuid,
        status: &str,
        progress: f64,
        phase: &str,
        message: Option<String>,
    ) -> Self {
        Self {
            job_id,
            status: status.to_string(),
            progress: progress.clamp(0.0, 100.0),
            phase: phase.to_string(),
            message,
            estimated_completion: None,
            artifacts: vec![],
            timestamp: Utc::now(),
            job_id_camel: job_id,
        }
    }

    pub fn is_terminal(&self) -> bool {
        is_terminal(&self.status)
    }
}

pub fn is_terminal(status: &str) -> bool {
    matches!(status, "completed" | "failed" | "cancelled")
}

/// The phase that goes with a stored status (for snapshots).
pub fn phase_of(status: &str) -> &'static str {
    match status {
        "pending" => "queued",
        "processing" => "processing",
        _ => "finalizing",
    }
}

pub fn progress_channel(prefix: &str, id: Uuid) -> String {
    format!("{prefix}job:{id}:progress")
}

/// Pattern matching every job's progress channel.
pub fn progress_pattern(prefix: &str) -> String {
    format!("{prefix}job:*:progress")
}

/// The channel on which cancellations are announced to workers (payload: the generation id).
pub fn cancel_channel(prefix: &str) -> String {
    format!("{prefix}boards:cancel")
}

/// The generation id inside a progress channel name.
pub fn id_of_channel(prefix: &str, channel: &str) -> Option<Uuid> {
    let rest = channel.strip_prefix(prefix)?.strip_prefix("job:")?;
    Uuid::parse_str(rest.strip_suffix(":progress")?).ok()
}

/// A lazily connecting Redis pool (publishing); checkouts wait at most the command timeout.
pub fn build_redis_pool(config: &RedisConfig) -> anyhow::Result<RedisPool> {
    let manager = RedisConnectionManager::new(config.url.expose())?;
    Ok(bb8::Pool::builder()
        .max_size(config.pool_size)
        .connection_timeout(Duration::from_millis(config.command_timeout_ms.max(1)))
        .build_unchecked(manager))
}

/// Messages waiting to be published; beyond this, new ones are dropped (and counted).
const QUEUE: usize = 4096;
/// Messages sent in one pipeline.
const BATCH: usize = 128;
/// After a failed send, messages are dropped without trying for this long.
const PAUSE_AFTER_FAILURE: Duration = Duration::from_secs(1);

/// Best-effort publisher: [`Publisher::publish`] never waits. Cheap to clone.
#[derive(Clone)]
pub struct Publisher {
    tx: tokio::sync::mpsc::Sender<(String, String)>,
    dropped: Arc<AtomicU64>,
}

impl Publisher {
    /// Starts the sending task; it ends when every clone of the publisher is gone.
    pub fn start(pool: RedisPool, command_timeout: Duration, logger: slog::Logger) -> Self {
        let (tx, rx) = tokio::sync::mpsc::channel(QUEUE);
        let dropped = Arc::new(AtomicU64::new(0));
        tokio::spawn(send_loop(
            pool,
            command_timeout,
            rx,
            dropped.clone(),
            logger,
        ));
        Self { tx, dropped }
    }

    /// Queues `payload` for `channel`; drops it when the queue is full.
    pub fn publish(&self, channel: String, payload: String) {
        if self.tx.try_send((channel, payload)).is_err() {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Queues a progress event on its generation's channel.
    pub fn event(&self, prefix: &str, event: &ProgressEvent) {
        match serde_json::to_string(event) {
            Ok(payload) => self.publish(progress_channel(prefix, event.job_id), payload),
            Err(_) => {
                self.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Messages dropped so far (queue full, Redis down or slow).
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

async fn send_loop(
    pool: RedisPool,
    timeout: Duration,
    mut rx: tokio::sync::mpsc::Receiver<(String, String)>,
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
                    slog::info!(logger, "progress publishing to Redis works again");
                }
            }
            Err(e) => {
                dropped.fetch_add(batch.len() as u64, Ordering::Relaxed);
                if paused_until.is_none() {
                    slog::warn!(logger, "progress publishing failed; events are dropped until Redis answers (rows stay correct)";
                        "error" => format!("{e:#}"));
                }
                paused_until = Some(Instant::now() + PAUSE_AFTER_FAILURE);
            }
        }
        batch.clear();
    }
}

pub async fn ping(pool: &RedisPool) -> anyhow::Result<()> {
    let mut conn = pool
        .get()
        .await
        .map_err(|e| anyhow::anyhow!("redis: {e}"))?;
    let _: String = redis::cmd("PING").query_async(&mut *conn).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_carry_both_id_spellings_and_clamp_progress() {
        let id = Uuid::new_v4();
        let e = ProgressEvent::new(id, "processing", 150.0, "processing", None);
        let v = serde_json::to_value(&e).unwrap();
        assert_eq!(v["job_id"], id.to_string());
        assert_eq!(v["jobId"], id.to_string());
        assert_eq!(v["progress"], 100.0);
        let keys: Vec<&String> = v.as_object().unwrap().keys().collect();
        assert_eq!(keys[0], "job_id");
    }

    #[test]
    fn channel_names_round_trip() {
        let id = Uuid::new_v4();
        assert_eq!(id_of_channel("t1:", &progress_channel("t1:", id)), Some(id));
        assert_eq!(id_of_channel("", &progress_channel("", id)), Some(id));
        assert_eq!(id_of_channel("x", "job:nope:progress"), None);
    }
}
