//! One job: claim, resolve inputs, run the generator (timeout, cancellation, heartbeat), store
//! the artifact, finalise with a conditional update, publish progress — then tell the caller
//! how to settle the message. Every write after the claim is fenced by it (see
//! `job_runs`), and every run stores its artifact under a key of its own.

use std::{
    collections::HashMap,
    sync::{
        atomic::{AtomicU8, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};
use uuid::Uuid;

use boards_shared::{
    db::models::{
        generations::{self, NewUpload},
        job_runs::{self, Claim},
        Generation,
    },
    domain::inputs,
    events::{BoardEvent, Event, ProgressEvent},
    generators::{
        run::{Context, GenerateError, InputArtifact, JobRecord, Progress},
        Registered,
    },
    jobs::JobMessage,
};
use serde_json::{json, Value};
use slog::{info, warn, Logger};
use tokio::sync::Mutex;
use tokio_util::sync::CancellationToken;

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

impl Settle {
    /// What the span of the run calls it.
    pub fn name(&self) -> &'static str {
        match self {
            Settle::Ack => "done",
            Settle::Retry { .. } => "retry",
            Settle::Dead { .. } => "dead",
            Settle::Requeue => "requeue",
        }
    }
}

/// Why a run stopped early.
enum Stop {
    Error(GenerateError),
    Shutdown,
    /// The run no longer holds the job (see [`Lost`]).
    Lost(Lost),
}

/// How a run lost its job.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
enum Lost {
    /// Still ours as far as we know.
    No = 0,
    /// The database says another run (or a cancel, or a finish) took it.
    Claim = 1,
    /// The lease could not be renewed before it ran out (database unreachable): the reaper
    /// may hand the job out again, so this run must stop.
    Lease = 2,
}

/// The cancellation token of a run and why it was cancelled, if it lost its job.
pub struct RunControl {
    pub token: CancellationToken,
    lost: AtomicU8,
}

impl RunControl {
    fn new() -> Self {
        Self {
            token: CancellationToken::new(),
            lost: AtomicU8::new(Lost::No as u8),
        }
    }

    fn lose(&self, why: Lost) {
        let _ = self.lost.compare_exchange(
            Lost::No as u8,
            why as u8,
            Ordering::SeqCst,
            Ordering::SeqCst,
        );
        self.token.cancel();
    }

    fn lost(&self) -> Lost {
        match self.lost.load(Ordering::SeqCst) {
            1 => Lost::Claim,
            2 => Lost::Lease,
            _ => Lost::No,
        }
    }
}

/// Publishes `event` on its board's feed, which also carries it to its generation's stream
/// and progress channel (best-effort).
fn publish_progress(env: &WorkerEnv, board: Uuid, event: ProgressEvent) {
    env.events.publish(Event::Board {
        board,
        event: BoardEvent::GenerationProgress(event),
        id: None,
    });
}

/// Publishes progress (best-effort) for every report and persists it to the row at most
/// every `persist_every`. One scale that never goes back, terminal events included; nothing
/// is published or written once the run was stopped (cancelled, or its claim lost).
pub struct Reporter {
    env: Arc<WorkerEnv>,
    claim: Claim,
    /// The generation's board, whose feed gets every event too.
    board: Uuid,
    stopped: CancellationToken,
    state: Mutex<(f64, Instant)>,
    persist_every: Duration,
}

impl Reporter {
    pub fn new(env: Arc<WorkerEnv>, claim: Claim, board: Uuid, stopped: CancellationToken) -> Self {
        let persist_every = Duration::from_millis(env.config.jobs.progress_persist_interval_ms);
        Self {
            env,
            claim,
            board,
            stopped,
            state: Mutex::new((
                0.0,
                Instant::now()
                    .checked_sub(persist_every)
                    .unwrap_or_else(Instant::now),
            )),
            persist_every,
        }
    }

    /// The highest progress reported so far.
    pub async fn high_water(&self) -> f64 {
        self.state.lock().await.0
    }

    /// Publishes an event at `percent`, or at the high-water mark if that is higher.
    pub async fn event(&self, status: &str, percent: f64, phase: &str, message: Option<String>) {
        let percent = percent.max(self.high_water().await);
        let event = ProgressEvent::new(self.claim.generation_id, status, percent, phase, message);
        publish_progress(&self.env, self.board, event);
    }
}

#[async_trait::async_trait]
impl Progress for Reporter {
    async fn report(&self, percent: f64, message: Option<String>) {
        if self.stopped.is_cancelled() {
            return;
        }
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
                let _ = job_runs::set_progress(&mut conn, &self.claim, percent).await;
            }
        }
    }
}

#[async_trait::async_trait]
impl JobRecord for Reporter {
    /// Tried a few times before giving up: a run that cannot record its upstream id would
    /// be retried and submit (and pay) again.
    async fn set_external_job_id(&self, id: &str) -> Result<(), GenerateError> {
        let mut last = String::new();
        for attempt in 0..5u32 {
            if attempt > 0 {
                tokio::time::sleep(Duration::from_millis(200) * attempt).await;
            }
            let written = match self.env.pool.get().await {
                Ok(mut conn) => job_runs::set_external_job_id(&mut conn, &self.claim, id)
                    .await
                    .map_err(|e| e.to_string()),
                Err(e) => Err(e.to_string()),
            };
            match written {
                Ok(true) => return Ok(()),
                Ok(false) => return Err(GenerateError::Cancelled),
                Err(e) => last = e,
            }
        }
        Err(GenerateError::Transient(format!("database: {last}")))
    }
}

/// Resolves the generations named in artifact slots: each must be readable by the job's
/// creator (checked again here: access may have changed since the job was created), in the
/// job's tenant, completed, of the slot's type and stored. Returns the inputs by field and the
/// lineage entries to record.
async fn resolve_inputs(
    env: &WorkerEnv,
    job: &Generation,
    generator: &Registered,
) -> Result<(HashMap<String, Vec<InputArtifact>>, Vec<Value>), GenerateError> {
    let failed = |e: inputs::InputError| match e {
        inputs::InputError::Invalid(m) => GenerateError::Invalid(m),
        inputs::InputError::Database(e) => GenerateError::Transient(format!("database: {e}")),
    };
    let refs = inputs::refs(generator, &job.input_params).map_err(failed)?;
    if refs.is_empty() {
        return Ok((HashMap::new(), vec![]));
    }
    let mut conn = env
        .pool
        .get()
        .await
        .map_err(|e| GenerateError::Transient(format!("database: {e}")))?;
    let by_id = inputs::readable(&mut conn, job.user_id, job.tenant_id, &refs)
        .await
        .map_err(failed)?;
    let mut found: HashMap<String, Vec<InputArtifact>> = HashMap::new();
    let mut lineage = vec![];
    for r in refs {
        let (field, kind, id) = (r.field, r.kind, r.id);
        let g = by_id
            .get(&id)
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
        found.entry(field.clone()).or_default().push(InputArtifact {
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
    Ok((found, lineage))
}

/// Runs a claimed job to its end; returns how the message is settled.
pub async fn run(env: Arc<WorkerEnv>, message: JobMessage, shutdown: CancellationToken) -> Settle {
    let id = message.generation_id;
    let trace_id = boards_shared::trace::current().map(|t| t.trace_id_hex());
    let logger = env.logger.new(
        slog::o!("generation_id" => id.to_string(), "attempt" => message.attempt,
        "request_id" => message.request_id.clone().unwrap_or_default(),
        "trace_id" => trace_id.unwrap_or_default()),
    );
    let lease = env.config.jobs.lease_seconds as i64;
    // While the database is unreachable the message stays with us, unsettled, and the claim is
    // tried again with backoff: requeueing it at once would spin it through the broker (and
    // count deliveries up to a quorum queue's limit). Shutdown hands it back.
    let mut backoff = Duration::from_millis(500);
    let mut warned = false;
    let (job, claim) = loop {
        let claimed = match env.pool.get().await {
            Ok(mut conn) => job_runs::claim(&mut conn, id, &env.worker_id, lease)
                .await
                .map_err(|e| e.to_string()),
            Err(e) => Err(format!("database unavailable: {e}")),
        };
        match claimed {
            Ok(Some(claimed)) => break claimed,
            Ok(None) => {
                info!(
                    logger,
                    "nothing to do (finished, cancelled, deleted or running elsewhere)"
                );
                return Settle::Ack;
            }
            Err(e) => {
                if !warned {
                    warn!(logger, "claim failed; trying again until the database answers"; "error" => e);
                    warned = true;
                }
                tokio::select! {
                    _ = shutdown.cancelled() => return Settle::Requeue,
                    _ = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(Duration::from_secs(10));
            }
        }
    };
    let logger = logger.new(slog::o!("run" => claim.attempt));
    let started = Instant::now();
    let control = Arc::new(RunControl::new());
    if let Ok(mut running) = env.running.lock() {
        running.insert(id, control.token.clone());
    }
    env.metrics.running.inc();
    let reporter = Reporter::new(
        env.clone(),
        claim.clone(),
        job.board_id,
        control.token.clone(),
    );
    reporter
        .event(
            "processing",
            0.0,
            "initializing",
            Some("Starting generation".into()),
        )
        .await;

    let heartbeat = tokio::spawn(heartbeat(
        env.clone(),
        claim.clone(),
        control.clone(),
        logger.clone(),
    ));
    let exec = execute(&env, &job, &claim, &reporter, control.token.clone());
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
    let outcome = match (outcome, control.lost()) {
        (Err(Stop::Error(GenerateError::Cancelled)), lost) if lost != Lost::No => {
            Err(Stop::Lost(lost))
        }
        (other, _) => other,
    };
    if matches!(
        outcome,
        Err(Stop::Error(GenerateError::Cancelled)) | Err(Stop::Lost(Lost::Claim))
    ) {
        // Stopped by a user's cancel (not by another worker taking the job over, which
        // resumes the upstream job): stop the upstream job too, without delaying the settle.
        let (env, logger) = (env.clone(), logger.clone());
        tokio::spawn(async move { cancel_upstream(&env, id, true, &logger).await });
    }
    control.token.cancel();
    if let Ok(mut running) = env.running.lock() {
        running.remove(&id);
    }
    env.metrics.running.dec();
    let generator = job.generator_name.clone();
    let settle = finish(&env, &logger, &job, &claim, &message, &reporter, outcome).await;
    env.metrics
        .job_duration
        .with_label_values(&[&generator])
        .observe(started.elapsed().as_secs_f64());
    settle
}

/// Renews the lease every third of its length. Stops the run when the database says the job
/// is no longer this run's, and also when the lease could not be renewed in time (the reaper
/// may already be handing the job to another worker): a run never assumes it is still alive.
async fn heartbeat(env: Arc<WorkerEnv>, claim: Claim, control: Arc<RunControl>, logger: Logger) {
    let lease = Duration::from_secs(env.config.jobs.lease_seconds);
    let every = (lease / 3).max(Duration::from_millis(500));
    let mut renewed = Instant::now();
    loop {
        tokio::time::sleep(every).await;
        let renew = async {
            let mut conn = env.pool.get().await.map_err(|e| anyhow::anyhow!("{e}"))?;
            Ok::<_, anyhow::Error>(
                job_runs::heartbeat(&mut conn, &claim, lease.as_secs() as i64).await?,
            )
        };
        match tokio::time::timeout(every, renew).await {
            Ok(Ok(true)) => renewed = Instant::now(),
            Ok(Ok(false)) => {
                info!(logger, "the job is no longer this run's (cancelled, reaped or finished elsewhere); stopping");
                control.lose(Lost::Claim);
                return;
            }
            failed => {
                let error = match failed {
                    Ok(Err(e)) => format!("{e:#}"),
                    _ => "timed out".into(),
                };
                if renewed.elapsed() + every >= lease {
                    warn!(logger, "cannot renew the lease before it runs out; stopping the run"; "error" => error);
                    control.lose(Lost::Lease);
                    return;
                }
                warn!(logger, "lease renewal failed; retrying"; "error" => error);
            }
        }
    }
}

async fn execute(
    env: &Arc<WorkerEnv>,
    job: &Generation,
    claim: &Claim,
    reporter: &Reporter,
    cancel: CancellationToken,
) -> Result<Generation, GenerateError> {
    let generator = env.registry.get(&job.generator_name).ok_or_else(|| {
        GenerateError::Permanent(format!("Unknown generator: {}", job.generator_name))
    })?;
    let exec = env.executors.get(&job.generator_name).ok_or_else(|| {
        GenerateError::Permanent(format!("Unknown generator: {}", job.generator_name))
    })?;
    generator.validate(&job.input_params).map_err(|e| {
        GenerateError::Invalid(
            e.to_string()
                .trim_start_matches("Invalid input parameters: ")
                .to_string(),
        )
    })?;
    if let Some(why) = &generator.unavailable {
        return Err(GenerateError::Permanent(why.clone()));
    }
    let (inputs, lineage) = resolve_inputs(env, job, generator).await?;
    if !lineage.is_empty() {
        let mut conn = env
            .pool
            .get()
            .await
            .map_err(|e| GenerateError::Transient(format!("database: {e}")))?;
        let held = job_runs::set_input_artifacts(&mut conn, claim, &Value::Array(lineage.clone()))
            .await
            .map_err(|e| GenerateError::Transient(format!("database: {e}")))?;
        if !held {
            return Err(GenerateError::Cancelled);
        }
    }
    let ctx = Context {
        progress: reporter,
        record: reporter,
        external_job_id: job.external_job_id.clone().filter(|id| !id.is_empty()),
        cancel: cancel.clone(),
        inputs,
        storage: env.storage.clone(),
        memory: env.memory.clone(),
        max_image_pixels: env.config.worker.max_image_pixels,
        max_artifact_bytes: env.config.storage.max_file_size,
    };
    let limit = generator
        .timeout
        .or_else(|| exec.timeout())
        .unwrap_or(Duration::from_secs(env.config.jobs.timeout_seconds));
    let outputs = tokio::select! {
        r = tokio::time::timeout(limit, exec.generate(job.input_params.clone(), &ctx)) => match r {
            Ok(r) => r?,
            Err(_) => {
                // Stops work the generator left on blocking threads, too.
                cancel.cancel();
                cancel_upstream(env, job.id, false, &env.logger).await;
                return Err(GenerateError::Permanent(format!("Generation timed out after {} s", limit.as_secs())));
            }
        },
        _ = cancel.cancelled() => return Err(GenerateError::Cancelled),
    };
    drop(ctx);
    if outputs.is_empty() {
        return Err(GenerateError::Permanent(format!(
            "{}: the generator returned no output",
            job.generator_name
        )));
    }
    // A run stopped while its generator finished must not store anything.
    if cancel.is_cancelled() {
        return Err(GenerateError::Cancelled);
    }
    let label = generator
        .entry()
        .map(|e| e.provider.label().to_string())
        .unwrap_or_else(|| job.generator_name.clone());
    let batch_id = uuid::Uuid::new_v4();
    let batch_size = outputs.len();
    let mut stored = Vec::with_capacity(batch_size);
    let mut stored_keys: Vec<String> = vec![];
    for (index, output) in outputs.into_iter().enumerate() {
        let target = crate::output::Target {
            env,
            job,
            claim,
            generation_id: if index == 0 {
                job.id
            } else {
                uuid::Uuid::new_v4()
            },
            kind: generator.artifact_type,
            label: &label,
        };
        let result = tokio::select! {
            r = target.store(output) => r,
            _ = cancel.cancelled() => Err(GenerateError::Cancelled),
        };
        match result {
            Ok(s) => {
                stored_keys.push(s.object.key.clone());
                stored_keys.extend(s.thumbnail.as_ref().map(|t| t.key.clone()));
                stored.push((target.generation_id, s));
            }
            Err(e) => {
                remove(env, &stored_keys).await;
                return Err(e);
            }
        }
    }
    if batch_size > 1 {
        for (index, (_, s)) in stored.iter_mut().enumerate() {
            s.metadata.insert("batch_id".into(), json!(batch_id));
            s.metadata.insert("batch_index".into(), json!(index));
            s.metadata.insert("batch_size".into(), json!(batch_size));
        }
    }
    let mut stored = stored.into_iter();
    let Some((_, primary)) = stored.next() else {
        return Err(GenerateError::Permanent("no output was stored".into()));
    };
    let now = chrono::Utc::now();
    let batch: Vec<NewUpload> = stored
        .map(|(id, s)| NewUpload {
            id,
            tenant_id: job.tenant_id,
            board_id: job.board_id,
            user_id: job.user_id,
            generator_name: job.generator_name.clone(),
            artifact_type: job.artifact_type.clone(),
            input_params: job.input_params.clone(),
            status: "completed".into(),
            storage_url: Some(s.object.url.clone()),
            thumbnail_url: s.thumbnail.as_ref().map(|t| t.url.clone()),
            output_metadata: Value::Object(s.metadata),
            input_artifacts: Value::Array(lineage.clone()),
            progress: bigdecimal::BigDecimal::from(100),
            error_message: None,
            started_at: job.started_at.unwrap_or(now),
            completed_at: now,
        })
        .collect();
    let completed = match env.pool.get().await {
        Ok(mut conn) => job_runs::complete(
            &mut conn,
            claim,
            &primary.object.url,
            primary.thumbnail.as_ref().map(|t| t.url.as_str()),
            &Value::Object(primary.metadata),
            batch,
        )
        .await
        .map_err(|e| GenerateError::Transient(format!("database: {e}"))),
        Err(e) => Err(GenerateError::Transient(format!("database: {e}"))),
    };
    match completed {
        Ok(Some(done)) => Ok(done),
        Ok(None) => {
            // The run lost the job: the objects are this run's own, so removing them never
            // touches another run's artifact.
            remove(env, &stored_keys).await;
            Err(GenerateError::Cancelled)
        }
        // The commit may have happened before the error (a connection lost after COMMIT was
        // sent): the objects stay, at worst orphans, never a completed row's missing file.
        Err(e) => Err(e),
    }
}

/// Stops the upstream job of generation `id` (its recorded `external_job_id`), when it has
/// one: always after a timeout, and after a stop only when the row says a user cancelled it.
async fn cancel_upstream(
    env: &Arc<WorkerEnv>,
    id: uuid::Uuid,
    only_if_cancelled: bool,
    logger: &Logger,
) {
    let row = match env.pool.get().await {
        Ok(mut conn) => generations::find(&mut conn, id).await.ok().flatten(),
        Err(_) => None,
    };
    let Some(row) = row else { return };
    if only_if_cancelled && row.status != "cancelled" {
        return;
    }
    let (Some(external), Some(exec)) = (
        row.external_job_id.filter(|e| !e.is_empty()),
        env.executors.get(&row.generator_name),
    ) else {
        return;
    };
    match tokio::time::timeout(Duration::from_secs(15), exec.cancel(&external)).await {
        Ok(Ok(())) => info!(logger, "upstream job cancelled"; "external_job_id" => &external),
        Ok(Err(e)) => {
            warn!(logger, "cancelling the upstream job failed"; "external_job_id" => &external, "error" => e.to_string())
        }
        Err(_) => {
            warn!(logger, "cancelling the upstream job timed out"; "external_job_id" => &external)
        }
    }
}

async fn remove(env: &Arc<WorkerEnv>, keys: &[String]) {
    for key in keys {
        let _ = env.storage.delete(key).await;
    }
}

async fn finish(
    env: &Arc<WorkerEnv>,
    logger: &Logger,
    job: &Generation,
    claim: &Claim,
    message: &JobMessage,
    reporter: &Reporter,
    outcome: Result<Generation, Stop>,
) -> Settle {
    let generator = job.generator_name.as_str();
    let fail = |reason: String| async move {
        if let Ok(mut conn) = env.pool.get().await {
            if let Ok(Some(_)) = job_runs::fail(&mut conn, claim, &reason).await {
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
            publish_progress(env, done.board_id, ProgressEvent::snapshot(&done));
            Settle::Ack
        }
        Err(Stop::Error(GenerateError::Cancelled)) => {
            info!(logger, "generation stopped (cancelled)");
            Settle::Ack
        }
        Err(Stop::Lost(Lost::Claim)) => {
            info!(logger, "run stopped: another run holds the job");
            Settle::Ack
        }
        Err(Stop::Lost(_)) => {
            // The database is unreachable: nothing can be written. The message goes back to
            // the queue; whoever claims the job after the lease runs out finishes it.
            warn!(
                logger,
                "run stopped without a lease; requeueing the message"
            );
            Settle::Requeue
        }
        Err(Stop::Shutdown) => {
            warn!(
                logger,
                "shutting down before the job finished; handing it back"
            );
            if let Ok(mut conn) = env.pool.get().await {
                let _ = job_runs::release(&mut conn, claim).await;
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
                let released = match env.pool.get().await {
                    Ok(mut conn) => job_runs::release(&mut conn, claim).await.unwrap_or(false),
                    Err(_) => false,
                };
                if released {
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
                }
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
