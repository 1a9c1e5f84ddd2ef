//! Background duties of a worker: listening for cancellations, reaping jobs whose worker died,
//! and deleting old webhook deliveries.

use std::{sync::Arc, time::Duration};

use boards_shared::{
    db::models::{job_runs, webhooks},
    events::{BoardEvent, Delivery, Event, ProgressEvent, Topic},
};
use slog::{info, warn};
use tokio_util::sync::CancellationToken;

use crate::env::WorkerEnv;

/// Cancels local runs of the generations users cancel (the cancel subscription; without it,
/// cancelled jobs still stop at their next heartbeat).
pub async fn cancellations(env: Arc<WorkerEnv>, shutdown: CancellationToken) {
    let mut deliveries = env.events.subscribe(&[Topic::Cancel], shutdown);
    while let Some(delivery) = deliveries.recv().await {
        match delivery {
            Delivery::Event(Event::Cancel(id)) => {
                if env.cancel(id) {
                    info!(env.logger, "cancelling running job"; "generation_id" => %id);
                }
            }
            Delivery::Disconnected(error) => {
                warn!(env.logger, "cancel listener lost Redis; reconnecting"; "error" => error);
            }
            Delivery::Connected | Delivery::Event(_) => {}
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
                    let event = ProgressEvent::new(r.id, "failed", 0.0, "finalizing", Some(reason));
                    env.events.publish(Event::Board {
                        board: r.board_id,
                        event: BoardEvent::GenerationProgress(event),
                        id: None,
                    });
                }
            }
            Err(e) => warn!(env.logger, "reaper query failed"; "error" => %e),
        }
    }
}

/// Every hour (and at start): deletes settled webhook deliveries older than
/// `webhooks.delivery_retention_days`. Every worker runs it; the deletes are idempotent.
pub async fn webhook_retention(env: Arc<WorkerEnv>, shutdown: CancellationToken) {
    let keep = chrono::Duration::days(i64::from(env.config.webhooks.delivery_retention_days));
    loop {
        if let Ok(mut conn) = env.pool.get().await {
            let before = chrono::Utc::now() - keep;
            match webhooks::delete_settled_before(&mut conn, before).await {
                Ok(0) => {}
                Ok(n) => info!(env.logger, "deleted old webhook deliveries"; "count" => n),
                Err(e) => warn!(env.logger, "webhook delivery cleanup failed"; "error" => %e),
            }
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(Duration::from_secs(3600)) => {}
        }
    }
}
