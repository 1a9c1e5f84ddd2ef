//! Background duties of a worker: listening for cancellations and reaping jobs whose worker died.

use std::{sync::Arc, time::Duration};

use boards_shared::{db::models::job_runs, progress};
use futures::StreamExt as _;
use slog::{info, warn};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::env::WorkerEnv;

/// Longest wait for a Redis connection or subscription before trying again.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Subscribes to the cancel channel (reconnecting with backoff) and cancels local runs.
pub async fn cancellations(env: Arc<WorkerEnv>, shutdown: CancellationToken) {
    let channel = progress::cancel_channel(&env.config.redis.channel_prefix);
    let mut backoff = Duration::from_millis(200);
    while !shutdown.is_cancelled() {
        let session = async {
            let client = redis::Client::open(env.config.redis.url.expose())?;
            // A black-holed Redis must not hold the listener (or shutdown) forever.
            let mut pubsub = tokio::time::timeout(CONNECT_TIMEOUT, client.get_async_pubsub())
                .await
                .map_err(|_| anyhow::anyhow!("connecting to Redis timed out"))??;
            tokio::time::timeout(CONNECT_TIMEOUT, pubsub.subscribe(&channel))
                .await
                .map_err(|_| anyhow::anyhow!("subscribing timed out"))??;
            let mut messages = pubsub.on_message();
            loop {
                tokio::select! {
                    _ = shutdown.cancelled() => return anyhow::Ok(()),
                    m = messages.next() => {
                        let Some(m) = m else { anyhow::bail!("subscription closed") };
                        let payload: String = m.get_payload().unwrap_or_default();
                        if let Ok(id) = Uuid::parse_str(payload.trim()) {
                            if env.cancel(id) {
                                info!(env.logger, "cancelling running job"; "generation_id" => %id);
                            }
                        }
                    }
                }
            }
        };
        let session = tokio::select! {
            _ = shutdown.cancelled() => return,
            r = session => r,
        };
        if let Err(e) = session {
            warn!(env.logger, "cancel listener lost Redis; reconnecting"; "error" => format!("{e:#}"));
            // Without the listener, cancelled jobs still stop at their next heartbeat.
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(backoff) => {}
            }
            backoff = (backoff * 2).min(Duration::from_secs(5));
        } else {
            return;
        }
    }
}

/// Every few seconds: jobs whose lease ran out (their worker died) go back to the queue; a job
/// that has had twice `BOARDS_JOB_MAX_ATTEMPTS` runs fails instead (its worker keeps dying).
pub async fn reaper(env: Arc<WorkerEnv>, shutdown: CancellationToken) {
    let every = Duration::from_secs((env.config.jobs.lease_seconds / 2).clamp(1, 30));
    let max_runs =
        i32::try_from(env.config.jobs.max_attempts.saturating_mul(2)).unwrap_or(i32::MAX);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(every) => {}
        }
        let Ok(mut conn) = env.pool.get().await else {
            continue;
        };
        match job_runs::reap_expired(&mut conn, 1, 100, max_runs).await {
            Ok(reaped) => {
                let (queued, failed): (Vec<_>, Vec<_>) =
                    reaped.iter().partition(|r| r.status == "pending");
                if !queued.is_empty() {
                    warn!(env.logger, "returned jobs of dead workers to the queue"; "count" => queued.len(),
                        "generation_ids" => queued.iter().map(|r| r.id.to_string()).collect::<Vec<_>>().join(","));
                }
                for r in failed {
                    let reason = format!(
                        "Failed after {} runs: the worker running it stopped responding",
                        r.runs
                    );
                    warn!(env.logger, "job failed: its workers kept dying"; "generation_id" => %r.id, "runs" => r.runs);
                    let event = progress::ProgressEvent::new(
                        r.id,
                        "failed",
                        0.0,
                        "finalizing",
                        Some(reason),
                    );
                    env.publisher
                        .event(&env.config.redis.channel_prefix, &event);
                }
            }
            Err(e) => warn!(env.logger, "reaper query failed"; "error" => %e),
        }
    }
}
