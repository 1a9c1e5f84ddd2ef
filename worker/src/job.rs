//! One job: claim, resolve inputs, run the generator (timeout, cancellation, heartbeat), store
//! the artifact, finalise with a conditional update, publish progress — then tell the caller
//! how to settle the message.

use std::{
    collections::HashMap,
    sync::Arc,
    time::{Duration, Instant},
};

use boards_shared::{
    db::models::{generations, job_runs, Generation},
    generators::{
        run::{Context, GenerateError, InputArtifact, Progress},
        ArtifactKind, Registered,
    },
    jobs::JobMessage,
    progress::{self, ProgressEvent},
    storage,
};
use serde_json::{json, Value};
use slog::{info, warn, Logger};
use tokio::sync::Mutex;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::env::WorkerEnv;

/// How the message of a job is settled.
#[derive(Debug, PartialEq, Eq)]
pub enum Settle {
    /// Done (completed, failed for good, cancelled, or nothing to do): ack.
    Ack,
    /// Retry later: publish attempt+1 to the retry queue, then ack.
    Retry { attempt: u32, reason: String },
    /// Out of attempts: publish to the dead-letter queue, then ack.
    Dead { reason: String },
    /// Not ours to finish now (shutdown, database down): requeue.
    Requeue,
}

/// Why a run stopped early.
enum Stop {
    Error(GenerateError),
    Shutdown,
}

/// Publishes progress on Redis for every report and persists it to the row at most every
/// `persist_every`, never going backwards.
pub struct Reporter {
    env: Arc<WorkerEnv>,
    id: Uuid,
    state: Mutex<(f64, Instant)>,
    persist_every: Duration,
}

impl Reporter {
    pub fn new(env: Arc<WorkerEnv>, id: Uuid) -> Self {
        let persist_every = Duration::from_millis(env.config.jobs.progress_persist_interval_ms);
        Self {
            env,
            id,
            state: Mutex::new((
                0.0,
                Instant::now()
                    .checked_sub(persist_every)
                    .unwrap_or_else(Instant::now),
            )),
            persist_every,
        }
    }

    pub async fn event(&self, status: &str, percent: f64, phase: &str, message: Option<String>) {
        let event = ProgressEvent::new(self.id, status, percent, phase, message);
        if let Err(e) = progress::publish_event(
            &self.env.redis,
            &self.env.config.redis.channel_prefix,
            &event,
        )
        .await
        {
            warn!(self.env.logger, "progress publish failed"; "generation_id" => %self.id, "error" => format!("{e:#}"));
        }
    }
}

#[async_trait::async_trait]
impl Progress for Reporter {
    async fn report(&self, percent: f64, message: Option<String>) {
        let percent = percent.clamp(0.0, 99.0);
        let persist = {
            let mut state = self.state.lock().await;
            if percent < state.0 {
                return; // monotonic
            }
            state.0 = percent;
            if state.1.elapsed() >= self.persist_every {
                state.1 = Instant::now();
                true
            } else {
                false
            }
        };
        self.event("processing", percent, "processing", message)
            .await;
        if persist {
            if let Ok(mut conn) = self.env.pool.get().await {
                let _ = job_runs::set_progress(&mut conn, self.id, percent).await;
            }
        }
    }
}

fn ids_of(value: &Value) -> Vec<String> {
    match value {
        Value::String(s) => vec![s.clone()],
        Value::Array(items) => items
            .iter()
            .filter_map(|v| v.as_str().map(str::to_string))
            .collect(),
        _ => vec![],
    }
}

/// Resolves the generations named in artifact slots: they must exist, be in the job's
/// tenant, be completed, be of the slot's type and have a stored artifact. Returns the inputs
/// by field and the lineage entries to record.
async fn resolve_inputs(
    env: &WorkerEnv,
    job: &Generation,
    generator: &Registered,
) -> Result<(HashMap<String, Vec<InputArtifact>>, Vec<Value>), GenerateError> {
    let mut wanted: Vec<(String, ArtifactKind, Uuid)> = vec![];
    for slot in &generator.slots {
        let Some(value) = job.input_params.get(&slot.field) else {
            continue;
        };
        if value.is_null() {
            continue;
        }
        let ids = ids_of(value);
        if !slot.many && ids.len() > 1 {
            return Err(GenerateError::Invalid(format!(
                "{}: takes one generation id",
                slot.field
            )));
        }
        for id in ids {
            let uuid = Uuid::parse_str(&id).map_err(|_| {
                GenerateError::Invalid(format!("{}: {id:?} is not a generation id", slot.field))
            })?;
            wanted.push((slot.field.clone(), slot.kind, uuid));
        }
    }
    if wanted.is_empty() {
        return Ok((HashMap::new(), vec![]));
    }
    let ids: Vec<Uuid> = wanted.iter().map(|(_, _, id)| *id).collect();
    let mut conn = env
        .pool
        .get()
        .await
        .map_err(|e| GenerateError::Transient(format!("database: {e}")))?;
    let rows = generations::find_many(&mut conn, &ids)
        .await
        .map_err(|e| GenerateError::Transient(format!("database: {e}")))?;
    let by_id: HashMap<Uuid, Generation> = rows.into_iter().map(|g| (g.id, g)).collect();
    let mut inputs: HashMap<String, Vec<InputArtifact>> = HashMap::new();
    let mut lineage = vec![];
    for (field, kind, id) in wanted {
        let g = by_id
            .get(&id)
            .filter(|g| g.tenant_id == job.tenant_id)
            .ok_or_else(|| GenerateError::Invalid(format!("{field}: generation {id} not found")))?;
        if g.status != "completed" {
            return Err(GenerateError::Invalid(format!(
                "{field}: generation {id} is {}, not completed",
                g.status
            )));
        }
        if g.artifact_type != kind.as_str() {
            return Err(GenerateError::Invalid(format!(
                "{field}: generation {id} is a {} artifact, expected {kind}",
                g.artifact_type
            )));
        }
        let url = g.storage_url.clone().ok_or_else(|| {
            GenerateError::Invalid(format!("{field}: generation {id} has no artifact"))
        })?;
        inputs
            .entry(field.clone())
            .or_default()
            .push(InputArtifact {
                generation_id: id,
                kind,
                storage_key: g
                    .output_metadata
                    .get("storage_key")
                    .and_then(Value::as_str)
                    .map(str::to_string),
                storage_url: url,
                metadata: g.output_metadata.clone(),
            });
        lineage.push(json!({"generation_id": id, "role": field, "artifact_type": kind.as_str()}));
    }
    Ok((inputs, lineage))
}

/// Runs a claimed job to its end; returns how the message is settled.
pub async fn run(env: Arc<WorkerEnv>, message: JobMessage, shutdown: CancellationToken) -> Settle {
    let id = message.generation_id;
    let logger = env.logger.new(
        slog::o!("generation_id" => id.to_string(), "attempt" => message.attempt,
        "request_id" => message.request_id.clone().unwrap_or_default()),
    );
    let lease = env.config.jobs.lease_seconds as i64;
    let claimed = match env.pool.get().await {
        Ok(mut conn) => job_runs::claim(&mut conn, id, &env.worker_id, lease).await,
        Err(e) => {
            warn!(logger, "database unavailable; requeueing"; "error" => %e);
            tokio::time::sleep(Duration::from_secs(1)).await;
            return Settle::Requeue;
        }
    };
    let job = match claimed {
        Ok(Some((job, _))) => job,
        Ok(None) => {
            info!(
                logger,
                "nothing to do (finished, cancelled, deleted or running elsewhere)"
            );
            return Settle::Ack;
        }
        Err(e) => {
            warn!(logger, "claim failed; requeueing"; "error" => %e);
            tokio::time::sleep(Duration::from_secs(1)).await;
            return Settle::Requeue;
        }
    };
    let started = Instant::now();
    let token = CancellationToken::new();
    if let Ok(mut running) = env.running.lock() {
        running.insert(id, token.clone());
    }
    env.metrics.running.inc();
    let reporter = Reporter::new(env.clone(), id);
    reporter
        .event(
            "processing",
            0.0,
            "initializing",
            Some("Starting generation".into()),
        )
        .await;

    // Heartbeat: renew the lease; a lost claim (cancelled, reaped) stops the run.
    let heartbeat = {
        let (env, token) = (env.clone(), token.clone());
        tokio::spawn(async move {
            let every = Duration::from_secs((lease as u64 / 3).max(1));
            loop {
                tokio::time::sleep(every).await;
                let alive = match env.pool.get().await {
                    Ok(mut conn) => job_runs::heartbeat(&mut conn, id, &env.worker_id, lease)
                        .await
                        .unwrap_or(true),
                    Err(_) => true,
                };
                if !alive {
                    token.cancel();
                    return;
                }
            }
        })
    };

    let exec = execute(&env, &job, &reporter, token.clone());
    tokio::pin!(exec);
    let outcome = tokio::select! {
        r = &mut exec => r.map_err(Stop::Error),
        _ = shutdown.cancelled() => {
            // Let the run finish within the grace period, then hand the job back.
            let grace = Duration::from_secs(env.config.worker.shutdown_grace_seconds);
            match tokio::time::timeout(grace, &mut exec).await {
                Ok(r) => r.map_err(Stop::Error),
                Err(_) => Err(Stop::Shutdown),
            }
        }
    };
    heartbeat.abort();
    token.cancel();
    if let Ok(mut running) = env.running.lock() {
        running.remove(&id);
    }
    env.metrics.running.dec();
    let generator = job.generator_name.clone();
    let settle = finish(&env, &logger, &job, &message, &reporter, outcome).await;
    env.metrics
        .job_duration
        .with_label_values(&[&generator])
        .observe(started.elapsed().as_secs_f64());
    settle
}

async fn execute(
    env: &Arc<WorkerEnv>,
    job: &Generation,
    reporter: &Reporter,
    cancel: CancellationToken,
) -> Result<Generation, GenerateError> {
    let generator = env.registry.get(&job.generator_name).ok_or_else(|| {
        GenerateError::Permanent(format!("Unknown generator: {}", job.generator_name))
    })?;
    generator.validate(&job.input_params).map_err(|e| {
        GenerateError::Invalid(
            e.to_string()
                .trim_start_matches("Invalid input parameters: ")
                .to_string(),
        )
    })?;
    let (inputs, lineage) = resolve_inputs(env, job, generator).await?;
    if !lineage.is_empty() {
        let mut conn = env
            .pool
            .get()
            .await
            .map_err(|e| GenerateError::Transient(format!("database: {e}")))?;
        job_runs::set_input_artifacts(&mut conn, job.id, &Value::Array(lineage))
            .await
            .map_err(|e| GenerateError::Transient(format!("database: {e}")))?;
    }
    let ctx = Context {
        progress: reporter,
        cancel: cancel.clone(),
        inputs,
        storage: env.storage.clone(),
    };
    let limit = generator
        .timeout
        .or_else(|| generator.exec.0.timeout())
        .unwrap_or(Duration::from_secs(env.config.jobs.timeout_seconds));
    let output = tokio::select! {
        r = tokio::time::timeout(limit, generator.exec.0.generate(job.input_params.clone(), &ctx)) => match r {
            Ok(r) => r?,
            Err(_) => return Err(GenerateError::Permanent(format!("Generation timed out after {} s", limit.as_secs()))),
        },
        _ = cancel.cancelled() => return Err(GenerateError::Cancelled),
    };
    let key = storage::artifact_key(job.tenant_id, job.board_id, job.id, &output.extension);
    let stored = env
        .storage
        .put(&key, output.bytes, &output.content_type)
        .await
        .map_err(|e| match e {
            storage::StorageError::TooLarge { .. } => GenerateError::Permanent(e.to_string()),
            other => GenerateError::Transient(format!("Storing the artifact failed: {other}")),
        })?;
    let mut metadata = output.metadata;
    metadata.insert("generation_id".into(), json!(job.id));
    metadata.insert("storage_url".into(), json!(stored.url));
    metadata.insert("storage_key".into(), json!(stored.key));
    metadata.insert("storage_provider".into(), json!(env.storage.name()));
    metadata.insert("content_type".into(), json!(stored.content_type));
    metadata.insert("size".into(), json!(stored.size));
    let mut conn = env
        .pool
        .get()
        .await
        .map_err(|e| GenerateError::Transient(format!("database: {e}")))?;
    match job_runs::complete(&mut conn, job.id, &stored.url, &Value::Object(metadata)).await {
        Ok(Some(done)) => Ok(done),
        Ok(None) => {
            // Cancelled (or taken back) while we worked: nothing overwrites that state.
            let _ = env.storage.delete(&key).await;
            Err(GenerateError::Cancelled)
        }
        Err(e) => Err(GenerateError::Transient(format!("database: {e}"))),
    }
}

async fn finish(
    env: &Arc<WorkerEnv>,
    logger: &Logger,
    job: &Generation,
    message: &JobMessage,
    reporter: &Reporter,
    outcome: Result<Generation, Stop>,
) -> Settle {
    let generator = job.generator_name.as_str();
    let fail = |reason: String| async move {
        if let Ok(mut conn) = env.pool.get().await {
            if let Ok(Some(_)) = job_runs::fail(&mut conn, job.id, &reason).await {
                env.metrics
                    .jobs
                    .with_label_values(&["failed", generator])
                    .inc();
                reporter
                    .event("failed", 0.0, "finalizing", Some(reason))
                    .await;
            }
        }
    };
    match outcome {
        Ok(done) => {
            info!(logger, "generation completed"; "generator" => generator);
            env.metrics
                .jobs
                .with_label_values(&["completed", generator])
                .inc();
            let mut event = ProgressEvent::new(
                done.id,
                "completed",
                100.0,
                "finalizing",
                Some("Completed".into()),
            );
            if let Some(url) = &done.storage_url {
                event.artifacts = vec![
                    json!({"url": url, "type": done.artifact_type, "metadata": done.output_metadata}),
                ];
            }
            if let Err(e) =
                progress::publish_event(&env.redis, &env.config.redis.channel_prefix, &event).await
            {
                warn!(logger, "progress publish failed"; "error" => format!("{e:#}"));
            }
            Settle::Ack
        }
        Err(Stop::Error(GenerateError::Cancelled)) => {
            info!(logger, "generation stopped (cancelled)");
            Settle::Ack
        }
        Err(Stop::Shutdown) => {
            warn!(
                logger,
                "shutting down before the job finished; handing it back"
            );
            if let Ok(mut conn) = env.pool.get().await {
                let _ = job_runs::release(&mut conn, job.id).await;
            }
            Settle::Requeue
        }
        Err(Stop::Error(e @ (GenerateError::Invalid(_) | GenerateError::Permanent(_)))) => {
            let reason = e.to_string();
            warn!(logger, "generation failed"; "error" => &reason);
            fail(reason).await;
            Settle::Ack
        }
        Err(Stop::Error(GenerateError::Transient(reason))) => {
            if message.attempt < env.config.jobs.max_attempts {
                warn!(logger, "transient failure; retrying"; "error" => &reason);
                if let Ok(mut conn) = env.pool.get().await {
                    let _ = job_runs::release(&mut conn, job.id).await;
                }
                let delay = env.topology.delay_ms(message.attempt as usize);
                reporter
                    .event(
                        "pending",
                        0.0,
                        "queued",
                        Some(format!(
                            "Retrying in {:.0} s: {reason}",
                            delay as f64 / 1000.0
                        )),
                    )
                    .await;
                env.metrics.retries.with_label_values(&[generator]).inc();
                Settle::Retry {
                    attempt: message.attempt + 1,
                    reason,
                }
            } else {
                let reason = format!("Failed after {} attempts: {reason}", message.attempt);
                warn!(logger, "out of attempts; dead-lettering"; "error" => &reason);
                fail(reason.clone()).await;
                env.metrics
                    .dead_lettered
                    .with_label_values(&[generator])
                    .inc();
                Settle::Dead { reason }
            }
        }
    }
}
