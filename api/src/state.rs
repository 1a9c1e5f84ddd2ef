//! [`AppState`]: everything a request handler needs, built once at startup.

use std::sync::Arc;

use boards_shared::{
    auth::AuthService,
    db::{DbMetrics, PgPool},
    events::EventBus,
    generators::Registry,
    metrics::Metrics,
    redis_pool::RedisPool,
    relay::RelayHandle,
    storage::Storage,
    Config,
};
use slog::Logger;

use crate::graphql::Schema;

pub struct AppState {
    /// The effective configuration.
    pub config: Arc<Config>,
    /// PostgreSQL connections (diesel-async over bb8).
    pub pool: PgPool,
    /// Counters of the pool (SQL statements run).
    pub db_metrics: Arc<DbMetrics>,
    /// Token verification, tenant resolution and user provisioning.
    pub auth: Arc<AuthService>,
    /// The generators of this deployment (listing, validation at creation).
    pub generators: Arc<Registry>,
    /// Validated GraphQL documents by query text.
    pub documents: crate::graphql::cache::DocumentCache,
    /// Permits for expensive queries running at once.
    pub expensive: tokio::sync::Semaphore,
    /// The GraphQL schema, built once.
    pub schema: Arc<Schema>,
    /// The root logger of the process.
    pub logger: Logger,
    /// Redis (readiness checks).
    pub redis: RedisPool,
    /// Events between processes: cancel signals, access changes, the progress subscription
    /// (publishing is best-effort and never waits on Redis).
    pub events: EventBus,
    /// Wakes the outbox relay after a job is committed.
    pub relay: RelayHandle,
    /// The progress fan-out to SSE clients.
    pub sse: Arc<crate::sse::SseHub>,
    /// Stored artifacts (served at `/api/storage`).
    pub storage: Arc<dyn Storage>,
    /// Private deployments: checks the signatures of `/api/storage` URLs.
    pub signer: Option<Arc<boards_shared::storage::UrlSigner>>,
    /// Uploads (REST file uploads and GraphQL URL imports).
    pub uploader: Arc<boards_shared::domain::uploads::Uploader>,
    /// URL imports' fetcher (SSRF-guarded).
    pub fetcher: Arc<boards_shared::net::Fetcher>,
    /// Span export (OTLP), when configured.
    pub telemetry: boards_shared::telemetry::Telemetry,
    /// What webhook URLs and counts are checked against.
    pub webhooks: boards_shared::domain::webhooks::WebhookRules,
    /// Rate limits (counters in Redis, shared by every replica).
    pub limits: boards_shared::ratelimit::Limiter,
    /// Prometheus metrics of this process.
    pub metrics: Arc<Metrics>,
    /// The listener that alone serves `/metrics`, when `api.metrics_address` is set.
    pub metrics_address: Option<std::net::SocketAddr>,
}
