//! Progress events: published by workers on Redis pub/sub (`{prefix}job:{id}:progress`),
//! relayed by the API as Server-Sent Events. One scale: `progress` is a percentage, 0 to 100.

use std::time::Duration;

use bb8_redis::RedisConnectionManager;
use chrono::{DateTime, Utc};
use redis::AsyncCommands as _;
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

/// A lazily connecting Redis pool (publishing).
pub fn build_redis_pool(config: &RedisConfig) -> anyhow::Result<RedisPool> {
    let manager = RedisConnectionManager::new(config.url.expose())?;
    Ok(bb8::Pool::builder()
        .max_size(config.pool_size)
        .connection_timeout(Duration::from_secs(3))
        .build_unchecked(manager))
}

pub async fn publish(pool: &RedisPool, channel: &str, payload: &str) -> anyhow::Result<()> {
    let mut conn = pool
        .get()
        .await
        .map_err(|e| anyhow::anyhow!("redis: {e}"))?;
    let _: i64 = conn.publish(channel, payload).await?;
    Ok(())
}

pub async fn publish_event(
    pool: &RedisPool,
    prefix: &str,
    event: &ProgressEvent,
) -> anyhow::Result<()> {
    let payload = serde_json::to_string(event)?;
    publish(pool, &progress_channel(prefix, event.job_id), &payload).await
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
