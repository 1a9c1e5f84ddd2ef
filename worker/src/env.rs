//! [`WorkerEnv`]: everything a job needs, built once per process.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

use boards_shared::{
    db::PgPool,
    events::EventBus,
    generators::{run::MemoryBudget, Registry},
    metrics::Metrics,
    queue::{BrokerLink, Topology},
    redis_pool::RedisPool,
    storage::Storage,
    Config,
};
use slog::Logger;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

pub struct WorkerEnv {
    pub config: Config,
    /// PostgreSQL (job rows, claims, lineage).
    pub pool: PgPool,
    /// Redis (readiness checks).
    pub redis: RedisPool,
    /// Progress publishing (best-effort, never blocks a job) and the cancel subscription.
    pub events: EventBus,
    /// Where artifacts go.
    pub storage: Arc<dyn Storage>,
    /// Memory the running jobs reserve for their large buffers.
    pub memory: Arc<MemoryBudget>,
    /// The generators this worker can run.
    pub registry: Arc<Registry>,
    /// How each of them runs.
    pub executors: Arc<crate::generators::Executors>,
    /// Downloads provider outputs (SSRF-guarded, size-capped).
    pub fetcher: Arc<boards_shared::net::Fetcher>,
    pub topology: Topology,
    /// The webhook delivery queues.
    pub webhook_topology: Topology,
    /// Sends webhook deliveries (SSRF-guarded, no redirects, `webhooks.timeout_ms`).
    pub webhook_client: Arc<boards_shared::net::Fetcher>,
    pub metrics: Arc<Metrics>,
    /// Span export (OTLP), when configured.
    pub telemetry: boards_shared::telemetry::Telemetry,
    pub logger: Logger,
    /// Unique per process: recorded on claims.
    pub worker_id: String,
    /// Cancellation tokens of the jobs running here, by generation id.
    pub running: Mutex<HashMap<Uuid, CancellationToken>>,
    /// The RabbitMQ connection while there is one (readiness probes it).
    pub broker: BrokerLink,
}

impl WorkerEnv {
    /// Cancels the running job `id`, if it runs here.
    pub fn cancel(&self, id: Uuid) -> bool {
        let token = self.running.lock().ok().and_then(|m| m.get(&id).cloned());
        match token {
            Some(t) => {
                t.cancel();
                true
            }
            None => false,
        }
    }
}
