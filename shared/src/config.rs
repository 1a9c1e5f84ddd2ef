//! Typed configuration: defaults, then an optional YAML file, then environment variables.
//!
//! Every key has exactly one entry in [`ENV_KEYS`]; `docs/configuration.md` documents each of
//! them (a test keeps the two in step). Secrets are wrapped in [`Secret`] so that neither `Debug`
//! nor the startup log can print them.

use std::{collections::BTreeMap, fmt, path::Path};

use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use crate::ratelimit::{Quota, TrustedProxies};

/// A string that must never be logged.
#[derive(Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

/// The whole configuration of both binaries.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// `development` or `production` (`prod`); production refuses the `none` auth provider.
    pub environment: String,
    /// Debug mode: tenant debug headers on responses.
    pub debug: bool,
    pub api: ApiConfig,
    pub database: DatabaseConfig,
    pub redis: RedisConfig,
    pub amqp: AmqpConfig,
    pub auth: AuthConfig,
    pub tenancy: TenancyConfig,
    pub graphql: GraphqlConfig,
    pub log: LogConfig,
    pub worker: WorkerConfig,
    pub generators: GeneratorsConfig,
    pub storage: StorageConfig,
    pub uploads: UploadsConfig,
    pub jobs: JobsConfig,
    pub rate_limit: RateLimitConfig,
    pub webhooks: WebhooksConfig,
}

/// Webhook deliveries (issue 12; `crate::webhooks`).
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct WebhooksConfig {
    /// Time limit of one delivery attempt (connect, send, response headers).
    pub timeout_ms: u64,
    /// Delay before retry n; a delivery is tried once plus once per delay, then failed and
    /// dead-lettered.
    pub retry_delays_ms: Vec<u64>,
    /// Hosts or CIDRs webhook URLs may reach although they are private or loopback.
    pub allowed_hosts: Vec<String>,
    /// Webhooks one board may have.
    pub max_per_board: u32,
    /// Settled deliveries (delivered or failed) are deleted after this many days.
    pub delivery_retention_days: u32,
    /// After a secret rotation, the previous secret keeps signing this long.
    pub secret_rotation_grace_seconds: u64,
}

/// Rate limits (see `crate::ratelimit`): each quota is `COUNT/PERIOD` (`30/60`: 30 per 60 s;
/// units `s`, `m`, `h`) or `off`.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimitConfig {
    /// The switch of all limits; forced off with the `none` auth provider (one shared
    /// development user, no tokens to refuse).
    pub enabled: bool,
    /// Per user: requests that start a paid job (createGeneration, regenerate, retryGeneration).
    pub generations: Quota,
    /// Per user: uploads (GraphQL uploadArtifact, REST POST /api/uploads/artifact).
    pub uploads: Quota,
    /// Per client address: requests whose credentials are refused; past the quota, every
    /// request from that address that carries credentials is refused before verification.
    pub auth_failures: Quota,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct StorageConfig {
    /// Directory of the local provider.
    pub local_base_path: String,
    /// Public base of stored URLs (the API serves `/api/storage/{key}`). Empty = derived from
    /// the API's own address when loading: `http://{api.host}:{api.port}/api/storage`.
    pub local_public_url_base: String,
    /// Largest artifact stored, in bytes.
    pub max_file_size: u64,
    /// `storage_config.yaml` (providers and routing rules, runtime.md §4); empty = none.
    pub config_path: String,
    /// The provider used when no routing rule matches; empty = the file's, else `local`.
    pub default_provider: String,
    /// Public deployments hand out plain URLs; private ones (`false`) signed URLs that expire.
    pub public: bool,
    /// Lifetime of signed and presigned URLs.
    pub url_expiry_seconds: u64,
    /// Key signing the local provider's URLs in private deployments (shared by all API
    /// replicas). Secret.
    pub signing_key: Option<Secret>,
    /// S3 from the environment: a bucket adds (or replaces) the provider named `s3`.
    pub s3_bucket: String,
    pub s3_region: String,
    pub s3_endpoint_url: String,
    pub s3_prefix: String,
    pub s3_cdn_base_url: String,
    /// `redirect` (to a presigned or public URL) or `proxy` (the API streams the object).
    pub s3_delivery: String,
    pub s3_access_key_id: String,
    pub s3_secret_access_key: Option<Secret>,
    pub s3_session_token: Option<Secret>,
    /// The providers and rules in effect, resolved when loading (file, then environment).
    #[serde(skip)]
    pub layout: crate::storage::settings::Layout,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct UploadsConfig {
    /// Largest upload, in bytes (checked while streaming).
    pub max_upload_size: u64,
    /// Extensions an uploaded file's name may have (case-insensitive; none passes).
    pub allowed_extensions: Vec<String>,
    /// The whole upload body must arrive within this many seconds.
    pub timeout_seconds: u64,
    /// Hosts or CIDRs URL imports may reach although they are private or loopback.
    pub url_import_allowed_hosts: Vec<String>,
    /// Total time of one URL import (connect, redirects, body).
    pub url_import_timeout_seconds: u64,
    /// Largest uploaded image given a thumbnail, in bytes.
    pub thumbnail_max_source_bytes: u64,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct JobsConfig {
    /// Deliveries of one job before it is dead-lettered (transient failures only).
    pub max_attempts: u32,
    /// Delay before retry n (the last value repeats), in milliseconds.
    pub retry_delays_ms: Vec<u64>,
    /// How long a claim lasts without a heartbeat before the reaper may take the job back.
    pub lease_seconds: u64,
    /// Time limit of one run of a generator, unless the generator sets its own.
    pub timeout_seconds: u64,
    /// Generator name → worker pool (generators not listed run in `default`).
    pub pools: BTreeMap<String, String>,
    /// Safety-net interval of the outbox relay (it is also woken after every commit).
    pub relay_interval_ms: u64,
    /// Minimum interval between progress writes to the database for one job.
    pub progress_persist_interval_ms: u64,
}
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct GeneratorsConfig {
    /// `generators.yaml`; unset = every built-in generator.
    pub config_path: Option<String>,
    /// Generators whose provider has no key: `list` (listed as unavailable, refused at
    /// creation) or `hide`.
    pub unavailable: String,
    /// Provider keys as a JSON object keyed by environment-variable name (the original's
    /// `BOARDS_GENERATOR_API_KEYS`). Secret.
    pub api_keys: Option<Secret>,
    pub fal_key: Option<Secret>,
    pub replicate_api_token: Option<Secret>,
    pub openai_api_key: Option<Secret>,
    pub kie_api_key: Option<Secret>,
    /// fal.ai's queue API (submit, status, result, cancel).
    pub fal_base_url: String,
    /// fal.ai's REST API (CDN upload tokens); the upload host comes from the token.
    pub fal_rest_url: String,
    pub replicate_base_url: String,
    pub openai_base_url: String,
    pub kie_base_url: String,
    /// Kie.ai's file upload host.
    pub kie_upload_url: String,
    /// First wait between status polls; it grows to `max_poll_interval_ms`.
    pub poll_interval_ms: u64,
    pub max_poll_interval_ms: u64,
    /// Attempts of one provider call on transport errors and 408/409/429/5xx.
    pub max_retries: u32,
    /// Deadline of one provider call (not of the whole run).
    pub request_timeout_seconds: u64,
    /// Deadline of downloading one output file from a provider into storage.
    pub download_timeout_seconds: u64,
}

impl Default for GeneratorsConfig {
    fn default() -> Self {
        Self {
            config_path: None,
            unavailable: "list".into(),
            api_keys: None,
            fal_key: None,
            replicate_api_token: None,
            openai_api_key: None,
            kie_api_key: None,
            fal_base_url: "https://queue.fal.run".into(),
            fal_rest_url: "https://rest.alpha.fal.ai".into(),
            replicate_base_url: "https://api.replicate.com/v1".into(),
            openai_base_url: "https://api.openai.com/v1".into(),
            kie_base_url: "https://api.kie.ai".into(),
            kie_upload_url: "https://kieai.redpandaai.co".into(),
            poll_interval_ms: 1000,
            max_poll_interval_ms: 5000,
            max_retries: 5,
            request_timeout_seconds: 120,
            download_timeout_seconds: 600,
        }
    }
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ApiConfig {
    pub host: String,
    pub port: u16,
    /// Allowed CORS origins (`*` allows any origin, without credentials).
    pub cors_origins: Vec<String>,
    /// Largest accepted request body for JSON endpoints, in bytes.
    pub max_body_bytes: usize,
    /// Number of actix worker threads (0 = one per core).
    pub workers: usize,
    /// Longest wait for a request's head (headers) on a new connection; then 408 and close.
    pub header_timeout_seconds: u64,
    /// The whole request body must arrive within this many seconds of its head; else 408
    /// and the connection is closed.
    pub body_timeout_seconds: u64,
    /// `host:port` serving `/metrics` alone; empty = `/metrics` on the main port.
    pub metrics_address: String,
    /// Progress streams one user may hold open per API process (429 beyond).
    pub sse_max_streams_per_user: usize,
    /// Safety-net interval at which open progress streams re-check the caller's access (they
    /// also re-check at once when a board's members or visibility change).
    pub sse_access_recheck_seconds: u64,
    /// Reverse proxies (IPs, CIDRs) whose `X-Forwarded-For`/`Forwarded` name the client.
    pub trusted_proxies: TrustedProxies,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseConfig {
    pub url: Secret,
    pub pool_size: u32,
    /// Extra connections on top of `pool_size` (the original's `max_overflow`).
    pub max_overflow: u32,
    pub statement_timeout_ms: u64,
    /// A session idle inside a transaction this long is ended by PostgreSQL (its locks freed).
    pub idle_in_transaction_timeout_ms: u64,
    pub connect_timeout_ms: u64,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RedisConfig {
    pub url: Secret,
    pub pool_size: u32,
    /// Longest wait for one Redis command (publishing is best-effort: slower means dropped).
    pub command_timeout_ms: u64,
    /// Prepended to every pub/sub channel (`{prefix}job:{id}:progress`); empty in production.
    pub channel_prefix: String,
    /// Board events kept per board for replay (`Last-Event-ID`), newest first.
    pub board_events_max_len: u64,
    /// Board events older than this are not kept for replay.
    pub board_events_max_age_seconds: u64,
}

/// The RabbitMQ queue type of the job queues.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum QueueType {
    /// Single-node classic queues (the default; right for one broker).
    #[default]
    Classic,
    /// Replicated quorum queues, for clustered brokers.
    Quorum,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AmqpConfig {
    pub url: Secret,
    /// Prefix of exchange and queue names (`{prefix}.jobs`, `{prefix}.jobs.{pool}`…).
    pub prefix: String,
    /// AMQP heartbeat asked of the broker (unless the URL sets `heartbeat=`): a stalled
    /// process loses its connection, and its unacknowledged deliveries, after about twice this.
    pub heartbeat_seconds: u16,
    /// Longest wait for a publisher confirm; then the message is retried (outbox rows
    /// stay until confirmed) over a fresh connection.
    pub confirm_timeout_ms: u64,
    /// `classic` (default) or `quorum` (clustered brokers) for the job queues.
    pub queue_type: QueueType,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AuthConfig {
    /// `none` or `jwt` (the adapter seam takes the others later).
    pub provider: String,
    /// Provider options (JSON object), as the original's `BOARDS_AUTH_CONFIG`.
    pub config: Value,
    pub jwt_secret: Option<Secret>,
    pub jwt_tenant_claim: Option<String>,
    /// Clock skew tolerated on `exp`/`nbf`, in seconds.
    pub leeway_seconds: i64,
    /// The non-`BOARDS_*` variables providers read as fallbacks (`auth::PROVIDER_ENV`); never
    /// serialised (some are secrets).
    #[serde(skip)]
    pub env: BTreeMap<String, String>,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TenancyConfig {
    pub multi_tenant_mode: bool,
    pub default_tenant_slug: String,
    /// Name given to the default tenant when it is created.
    pub tenant_name: String,
    /// The original's compatibility switch: create unknown tenants on first sight (and, as
    /// the original, let any caller select any tenant with `X-Tenant`).
    pub auto_create_tenants: bool,
    /// The operator's credential for `/api/setup/*` and tenant member administration, sent as
    /// `Authorization: Bearer <token>`. Unset: only tenant admins administer (their tenants).
    /// Secret.
    pub admin_token: Option<Secret>,
    /// Self-registered tenants wait for an operator's approval before anyone can use them.
    pub registration_requires_approval: bool,
    /// How many tenants one identity may administer and still register another (unset: any).
    pub registration_max_per_user: Option<u32>,
    /// E-mail domains allowed to register tenants (empty: any).
    pub registration_allowed_domains: Vec<String>,
    /// The frontend's base URL, for the dashboard link of a registration's answer.
    pub frontend_base_url: Option<String>,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct GraphqlConfig {
    pub introspection: bool,
    pub graphiql: bool,
    pub max_depth: usize,
    pub max_fields: usize,
    pub max_tokens: usize,
    /// Largest `limit` a list field accepts; larger values are clamped.
    pub max_page_size: i64,
    /// Largest query cost (each field 1, list fields times their page; see
    /// docs/ARCHITECTURE.md); costlier documents are refused before they run.
    pub max_cost: u64,
    /// Queries costing more than this are "expensive": only `max_concurrent_expensive` of
    /// them run at once per process.
    pub expensive_cost: u64,
    pub max_concurrent_expensive: usize,
    /// Largest response body; a larger answer is replaced by an error.
    pub max_response_bytes: usize,
    /// Estimated memory of the validated-document cache (an eighth is for anonymous callers).
    pub document_cache_bytes: u64,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct LogConfig {
    /// `trace`, `debug`, `info`, `warning`, `error` or `critical`.
    pub level: String,
    /// `auto` (JSON unless stderr is a terminal), `json` or `term`.
    pub format: String,
    /// OTLP/HTTP collector (`http://collector:4318`) that spans are exported to; unset, none
    /// are (`crate::telemetry`).
    #[serde(default)]
    pub otlp_endpoint: Option<String>,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct WorkerConfig {
    pub health_host: String,
    pub health_port: u16,
    pub concurrency: usize,
    /// Pools whose queues this worker consumes.
    pub pools: Vec<String>,
    /// How long SIGTERM waits for running jobs before handing them back to the queue.
    pub shutdown_grace_seconds: u64,
    /// Memory the jobs of one worker may reserve for their large buffers (decoded images,
    /// outputs); jobs wait for each other beyond it.
    pub memory_budget_mb: u32,
    /// Largest image, in pixels, a local generator decodes or produces.
    pub max_image_pixels: u64,
    /// `host:port` serving the worker's `/metrics` alone; empty = on the health port.
    pub metrics_address: String,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            environment: "development".into(),
            debug: false,
            api: ApiConfig {
                host: "127.0.0.1".into(),
                port: 8088,
                cors_origins: vec!["http://localhost:3033".into()],
                max_body_bytes: 1024 * 1024,
                workers: 0,
                header_timeout_seconds: 5,
                body_timeout_seconds: 30,
                metrics_address: String::new(),
                sse_max_streams_per_user: 20,
                sse_access_recheck_seconds: 30,
                trusted_proxies: TrustedProxies::default(),
            },
            database: DatabaseConfig {
                url: Secret::new("postgres://postgres@127.0.0.1:5432/boards"),
                pool_size: 10,
                max_overflow: 20,
                statement_timeout_ms: 30_000,
                idle_in_transaction_timeout_ms: 10_000,
                connect_timeout_ms: 5_000,
            },
            redis: RedisConfig {
                url: Secret::new("redis://127.0.0.1:6379"),
                pool_size: 16,
                command_timeout_ms: 500,
                channel_prefix: String::new(),
                board_events_max_len: 1000,
                board_events_max_age_seconds: 86_400,
            },
            amqp: AmqpConfig {
                url: Secret::new("amqp://guest:guest@127.0.0.1:5672/%2f"),
                prefix: "boards".into(),
                heartbeat_seconds: 10,
                confirm_timeout_ms: 10_000,
                queue_type: QueueType::Classic,
            },
            auth: AuthConfig {
                provider: "none".into(),
                config: json!({}),
                jwt_secret: None,
                jwt_tenant_claim: None,
                leeway_seconds: 60,
                env: BTreeMap::new(),
            },
            tenancy: TenancyConfig {
                multi_tenant_mode: false,
                default_tenant_slug: "default".into(),
                tenant_name: "Default Tenant".into(),
                auto_create_tenants: false,
                admin_token: None,
                registration_requires_approval: false,
                registration_max_per_user: None,
                registration_allowed_domains: Vec::new(),
                frontend_base_url: None,
            },
            graphql: GraphqlConfig {
                introspection: true,
                graphiql: true,
                max_depth: 20,
                max_fields: 2_000,
                max_tokens: 15_000,
                max_page_size: 500,
                max_cost: 50_000,
                expensive_cost: 10_000,
                max_concurrent_expensive: 1,
                max_response_bytes: 16 * 1024 * 1024,
                document_cache_bytes: 32 * 1024 * 1024,
            },
            log: LogConfig {
                level: "info".into(),
                format: "auto".into(),
                otlp_endpoint: None,
            },
            worker: WorkerConfig {
                health_host: "127.0.0.1".into(),
                health_port: 8081,
                concurrency: 8,
                pools: vec!["default".into()],
                shutdown_grace_seconds: 30,
                memory_budget_mb: 1024,
                max_image_pixels: 40_000_000,
                metrics_address: String::new(),
            },
            generators: GeneratorsConfig::default(),
            storage: StorageConfig {
                local_base_path: "/tmp/boards/storage".into(),
                local_public_url_base: String::new(),
                max_file_size: 100 * 1024 * 1024,
                config_path: String::new(),
                default_provider: String::new(),
                public: true,
                url_expiry_seconds: 3600,
                signing_key: None,
                s3_bucket: String::new(),
                s3_region: String::new(),
                s3_endpoint_url: String::new(),
                s3_prefix: String::new(),
                s3_cdn_base_url: String::new(),
                s3_delivery: String::new(),
                s3_access_key_id: String::new(),
                s3_secret_access_key: None,
                s3_session_token: None,
                layout: Default::default(),
            },
            uploads: UploadsConfig {
                max_upload_size: 100 * 1024 * 1024,
                allowed_extensions: [
                    ".jpg", ".jpeg", ".png", ".gif", ".webp", ".mp4", ".mov", ".avi", ".webm",
                    ".mp3", ".wav", ".ogg", ".m4a", ".txt", ".md", ".json",
                ]
                .into_iter()
                .map(String::from)
                .collect(),
                timeout_seconds: 900,
                url_import_allowed_hosts: vec![],
                url_import_timeout_seconds: 60,
                thumbnail_max_source_bytes: 32 * 1024 * 1024,
            },
            jobs: JobsConfig {
                max_attempts: 3,
                retry_delays_ms: vec![5_000, 15_000, 30_000],
                lease_seconds: 60,
                timeout_seconds: 600,
                pools: BTreeMap::new(),
                relay_interval_ms: 1_000,
                progress_persist_interval_ms: 1_000,
            },
            rate_limit: RateLimitConfig {
                enabled: true,
                generations: Quota::per(30, 60),
                uploads: Quota::per(60, 60),
                auth_failures: Quota::per(20, 60),
            },
            webhooks: WebhooksConfig {
                timeout_ms: 10_000,
                // The schedule Standard Webhooks suggests: 8 attempts over about 28 hours.
                retry_delays_ms: vec![
                    5_000, 300_000, 1_800_000, 7_200_000, 18_000_000, 36_000_000, 36_000_000,
                ],
                allowed_hosts: vec![],
                max_per_board: 20,
                delivery_retention_days: 30,
                secret_rotation_grace_seconds: 86_400,
            },
        }
    }
}

/// How an environment value is turned into a configuration value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Str,
    Int,
    Bool,
    /// A JSON object.
    Json,
    /// A JSON array of strings, or a comma-separated list.
    List,
    /// A JSON array of integers, or a comma-separated list.
    IntList,
}

/// One configuration key: its environment name(s) and its place in [`Config`].
#[derive(Debug)]
pub struct EnvKey {
    pub env: &'static str,
    /// Accepted alternatives, weaker than `env` when both are set.
    pub aliases: &'static [&'static str],
    pub path: &'static str,
    pub kind: Kind,
    pub secret: bool,
}

const fn secret(env: &'static str, path: &'static str) -> EnvKey {
    EnvKey {
        env,
        aliases: &[],
        path,
        kind: Kind::Str,
        secret: true,
    }
}

const fn key(env: &'static str, path: &'static str, kind: Kind) -> EnvKey {
    EnvKey {
        env,
        aliases: &[],
        path,
        kind,
        secret: false,
    }
}

/// Every configuration key. `path` is the dotted place in the YAML file.
pub const ENV_KEYS: &[EnvKey] = &[
    key("BOARDS_ENVIRONMENT", "environment", Kind::Str),
    key("BOARDS_DEBUG", "debug", Kind::Bool),
    key("BOARDS_API_HOST", "api.host", Kind::Str),
    key("BOARDS_API_PORT", "api.port", Kind::Int),
    key("BOARDS_CORS_ORIGINS", "api.cors_origins", Kind::List),
    key("BOARDS_MAX_BODY_BYTES", "api.max_body_bytes", Kind::Int),
    key("BOARDS_API_WORKERS", "api.workers", Kind::Int),
    key(
        "BOARDS_API_HEADER_TIMEOUT_SECONDS",
        "api.header_timeout_seconds",
        Kind::Int,
    ),
    key(
        "BOARDS_API_BODY_TIMEOUT_SECONDS",
        "api.body_timeout_seconds",
        Kind::Int,
    ),
    key("BOARDS_METRICS_ADDRESS", "api.metrics_address", Kind::Str),
    key(
        "BOARDS_SSE_MAX_STREAMS_PER_USER",
        "api.sse_max_streams_per_user",
        Kind::Int,
    ),
    key(
        "BOARDS_SSE_ACCESS_RECHECK_SECONDS",
        "api.sse_access_recheck_seconds",
        Kind::Int,
    ),
    key("BOARDS_TRUSTED_PROXIES", "api.trusted_proxies", Kind::List),
    EnvKey {
        env: "BOARDS_DATABASE_URL",
        aliases: &["DATABASE_URL"],
        path: "database.url",
        kind: Kind::Str,
        secret: true,
    },
    key("BOARDS_DATABASE_POOL_SIZE", "database.pool_size", Kind::Int),
    key(
        "BOARDS_DATABASE_MAX_OVERFLOW",
        "database.max_overflow",
        Kind::Int,
    ),
    key(
        "BOARDS_DATABASE_STATEMENT_TIMEOUT_MS",
        "database.statement_timeout_ms",
        Kind::Int,
    ),
    key(
        "BOARDS_DATABASE_IDLE_IN_TRANSACTION_TIMEOUT_MS",
        "database.idle_in_transaction_timeout_ms",
        Kind::Int,
    ),
    key(
        "BOARDS_DATABASE_CONNECT_TIMEOUT_MS",
        "database.connect_timeout_ms",
        Kind::Int,
    ),
    EnvKey {
        env: "BOARDS_REDIS_URL",
        aliases: &["REDIS_URL"],
        path: "redis.url",
        kind: Kind::Str,
        secret: true,
    },
    key("BOARDS_REDIS_POOL_SIZE", "redis.pool_size", Kind::Int),
    key(
        "BOARDS_REDIS_COMMAND_TIMEOUT_MS",
        "redis.command_timeout_ms",
        Kind::Int,
    ),
    key(
        "BOARDS_REDIS_CHANNEL_PREFIX",
        "redis.channel_prefix",
        Kind::Str,
    ),
    key(
        "BOARDS_REDIS_BOARD_EVENTS_MAX_LEN",
        "redis.board_events_max_len",
        Kind::Int,
    ),
    key(
        "BOARDS_REDIS_BOARD_EVENTS_MAX_AGE_SECONDS",
        "redis.board_events_max_age_seconds",
        Kind::Int,
    ),
    EnvKey {
        env: "BOARDS_AMQP_URL",
        aliases: &["AMQP_URL"],
        path: "amqp.url",
        kind: Kind::Str,
        secret: true,
    },
    key("BOARDS_AMQP_PREFIX", "amqp.prefix", Kind::Str),
    key(
        "BOARDS_AMQP_HEARTBEAT_SECONDS",
        "amqp.heartbeat_seconds",
        Kind::Int,
    ),
    key("BOARDS_AMQP_QUEUE_TYPE", "amqp.queue_type", Kind::Str),
    key(
        "BOARDS_AMQP_CONFIRM_TIMEOUT_MS",
        "amqp.confirm_timeout_ms",
        Kind::Int,
    ),
    key("BOARDS_AUTH_PROVIDER", "auth.provider", Kind::Str),
    EnvKey {
        env: "BOARDS_AUTH_CONFIG",
        aliases: &[],
        path: "auth.config",
        kind: Kind::Json,
        secret: true,
    },
    EnvKey {
        env: "BOARDS_JWT_SECRET",
        aliases: &[],
        path: "auth.jwt_secret",
        kind: Kind::Str,
        secret: true,
    },
    key(
        "BOARDS_JWT_TENANT_CLAIM",
        "auth.jwt_tenant_claim",
        Kind::Str,
    ),
    key(
        "BOARDS_AUTH_LEEWAY_SECONDS",
        "auth.leeway_seconds",
        Kind::Int,
    ),
    key(
        "BOARDS_MULTI_TENANT_MODE",
        "tenancy.multi_tenant_mode",
        Kind::Bool,
    ),
    key(
        "BOARDS_DEFAULT_TENANT_SLUG",
        "tenancy.default_tenant_slug",
        Kind::Str,
    ),
    key("BOARDS_TENANT_NAME", "tenancy.tenant_name", Kind::Str),
    key(
        "BOARDS_AUTO_CREATE_TENANTS",
        "tenancy.auto_create_tenants",
        Kind::Bool,
    ),
    secret("BOARDS_ADMIN_TOKEN", "tenancy.admin_token"),
    key(
        "BOARDS_TENANT_REGISTRATION_REQUIRES_APPROVAL",
        "tenancy.registration_requires_approval",
        Kind::Bool,
    ),
    EnvKey {
        env: "BOARDS_TENANT_REGISTRATION_MAX_PER_USER",
        aliases: &["BOARDS_MAX_TENANTS_PER_USER"],
        path: "tenancy.registration_max_per_user",
        kind: Kind::Int,
        secret: false,
    },
    key(
        "BOARDS_TENANT_REGISTRATION_ALLOWED_DOMAINS",
        "tenancy.registration_allowed_domains",
        Kind::List,
    ),
    key(
        "BOARDS_FRONTEND_BASE_URL",
        "tenancy.frontend_base_url",
        Kind::Str,
    ),
    key(
        "BOARDS_GRAPHQL_INTROSPECTION",
        "graphql.introspection",
        Kind::Bool,
    ),
    key("BOARDS_GRAPHIQL", "graphql.graphiql", Kind::Bool),
    key("BOARDS_GRAPHQL_MAX_DEPTH", "graphql.max_depth", Kind::Int),
    key("BOARDS_GRAPHQL_MAX_FIELDS", "graphql.max_fields", Kind::Int),
    key("BOARDS_GRAPHQL_MAX_TOKENS", "graphql.max_tokens", Kind::Int),
    key(
        "BOARDS_GRAPHQL_MAX_PAGE_SIZE",
        "graphql.max_page_size",
        Kind::Int,
    ),
    key("BOARDS_GRAPHQL_MAX_COST", "graphql.max_cost", Kind::Int),
    key(
        "BOARDS_GRAPHQL_EXPENSIVE_COST",
        "graphql.expensive_cost",
        Kind::Int,
    ),
    key(
        "BOARDS_GRAPHQL_MAX_CONCURRENT_EXPENSIVE",
        "graphql.max_concurrent_expensive",
        Kind::Int,
    ),
    key(
        "BOARDS_GRAPHQL_MAX_RESPONSE_BYTES",
        "graphql.max_response_bytes",
        Kind::Int,
    ),
    key(
        "BOARDS_GRAPHQL_DOCUMENT_CACHE_BYTES",
        "graphql.document_cache_bytes",
        Kind::Int,
    ),
    key("BOARDS_LOG_LEVEL", "log.level", Kind::Str),
    key("BOARDS_LOG_FORMAT", "log.format", Kind::Str),
    key("BOARDS_OTLP_ENDPOINT", "log.otlp_endpoint", Kind::Str),
    key("BOARDS_WORKER_HEALTH_HOST", "worker.health_host", Kind::Str),
    key("BOARDS_WORKER_HEALTH_PORT", "worker.health_port", Kind::Int),
    key("BOARDS_WORKER_CONCURRENCY", "worker.concurrency", Kind::Int),
    key(
        "BOARDS_GENERATORS_CONFIG_PATH",
        "generators.config_path",
        Kind::Str,
    ),
    key(
        "BOARDS_GENERATORS_UNAVAILABLE",
        "generators.unavailable",
        Kind::Str,
    ),
    secret("BOARDS_GENERATOR_API_KEYS", "generators.api_keys"),
    secret("FAL_KEY", "generators.fal_key"),
    secret("REPLICATE_API_TOKEN", "generators.replicate_api_token"),
    secret("OPENAI_API_KEY", "generators.openai_api_key"),
    secret("KIE_API_KEY", "generators.kie_api_key"),
    key("BOARDS_FAL_BASE_URL", "generators.fal_base_url", Kind::Str),
    key("BOARDS_FAL_REST_URL", "generators.fal_rest_url", Kind::Str),
    key(
        "BOARDS_REPLICATE_BASE_URL",
        "generators.replicate_base_url",
        Kind::Str,
    ),
    key(
        "BOARDS_OPENAI_BASE_URL",
        "generators.openai_base_url",
        Kind::Str,
    ),
    key("BOARDS_KIE_BASE_URL", "generators.kie_base_url", Kind::Str),
    key(
        "BOARDS_KIE_UPLOAD_URL",
        "generators.kie_upload_url",
        Kind::Str,
    ),
    key(
        "BOARDS_PROVIDER_POLL_INTERVAL_MS",
        "generators.poll_interval_ms",
        Kind::Int,
    ),
    key(
        "BOARDS_PROVIDER_MAX_POLL_INTERVAL_MS",
        "generators.max_poll_interval_ms",
        Kind::Int,
    ),
    key(
        "BOARDS_PROVIDER_MAX_RETRIES",
        "generators.max_retries",
        Kind::Int,
    ),
    key(
        "BOARDS_PROVIDER_REQUEST_TIMEOUT_SECONDS",
        "generators.request_timeout_seconds",
        Kind::Int,
    ),
    key(
        "BOARDS_PROVIDER_DOWNLOAD_TIMEOUT_SECONDS",
        "generators.download_timeout_seconds",
        Kind::Int,
    ),
    key("BOARDS_WORKER_POOLS", "worker.pools", Kind::List),
    key(
        "BOARDS_WORKER_SHUTDOWN_GRACE_SECONDS",
        "worker.shutdown_grace_seconds",
        Kind::Int,
    ),
    key(
        "BOARDS_WORKER_MEMORY_BUDGET_MB",
        "worker.memory_budget_mb",
        Kind::Int,
    ),
    key(
        "BOARDS_WORKER_MAX_IMAGE_PIXELS",
        "worker.max_image_pixels",
        Kind::Int,
    ),
    key(
        "BOARDS_WORKER_METRICS_ADDRESS",
        "worker.metrics_address",
        Kind::Str,
    ),
    key(
        "BOARDS_STORAGE_LOCAL_BASE_PATH",
        "storage.local_base_path",
        Kind::Str,
    ),
    key(
        "BOARDS_STORAGE_LOCAL_PUBLIC_URL_BASE",
        "storage.local_public_url_base",
        Kind::Str,
    ),
    key(
        "BOARDS_STORAGE_MAX_FILE_SIZE",
        "storage.max_file_size",
        Kind::Int,
    ),
    key(
        "BOARDS_STORAGE_CONFIG_PATH",
        "storage.config_path",
        Kind::Str,
    ),
    key(
        "BOARDS_STORAGE_DEFAULT_PROVIDER",
        "storage.default_provider",
        Kind::Str,
    ),
    key("BOARDS_STORAGE_PUBLIC", "storage.public", Kind::Bool),
    key(
        "BOARDS_STORAGE_URL_EXPIRY_SECONDS",
        "storage.url_expiry_seconds",
        Kind::Int,
    ),
    EnvKey {
        env: "BOARDS_STORAGE_SIGNING_KEY",
        aliases: &[],
        path: "storage.signing_key",
        kind: Kind::Str,
        secret: true,
    },
    key("BOARDS_STORAGE_S3_BUCKET", "storage.s3_bucket", Kind::Str),
    key("BOARDS_STORAGE_S3_REGION", "storage.s3_region", Kind::Str),
    key(
        "BOARDS_STORAGE_S3_ENDPOINT_URL",
        "storage.s3_endpoint_url",
        Kind::Str,
    ),
    key("BOARDS_STORAGE_S3_PREFIX", "storage.s3_prefix", Kind::Str),
    key(
        "BOARDS_STORAGE_S3_CDN_BASE_URL",
        "storage.s3_cdn_base_url",
        Kind::Str,
    ),
    key(
        "BOARDS_STORAGE_S3_DELIVERY",
        "storage.s3_delivery",
        Kind::Str,
    ),
    key(
        "BOARDS_AWS_ACCESS_KEY_ID",
        "storage.s3_access_key_id",
        Kind::Str,
    ),
    EnvKey {
        env: "BOARDS_AWS_SECRET_ACCESS_KEY",
        aliases: &[],
        path: "storage.s3_secret_access_key",
        kind: Kind::Str,
        secret: true,
    },
    EnvKey {
        env: "BOARDS_AWS_SESSION_TOKEN",
        aliases: &[],
        path: "storage.s3_session_token",
        kind: Kind::Str,
        secret: true,
    },
    key(
        "BOARDS_MAX_UPLOAD_SIZE",
        "uploads.max_upload_size",
        Kind::Int,
    ),
    key(
        "BOARDS_ALLOWED_UPLOAD_EXTENSIONS",
        "uploads.allowed_extensions",
        Kind::List,
    ),
    key(
        "BOARDS_UPLOAD_TIMEOUT_SECONDS",
        "uploads.timeout_seconds",
        Kind::Int,
    ),
    key(
        "BOARDS_URL_IMPORT_ALLOWED_HOSTS",
        "uploads.url_import_allowed_hosts",
        Kind::List,
    ),
    key(
        "BOARDS_URL_IMPORT_TIMEOUT_SECONDS",
        "uploads.url_import_timeout_seconds",
        Kind::Int,
    ),
    key(
        "BOARDS_THUMBNAIL_MAX_SOURCE_BYTES",
        "uploads.thumbnail_max_source_bytes",
        Kind::Int,
    ),
    key("BOARDS_JOB_MAX_ATTEMPTS", "jobs.max_attempts", Kind::Int),
    key(
        "BOARDS_JOB_RETRY_DELAYS_MS",
        "jobs.retry_delays_ms",
        Kind::IntList,
    ),
    key("BOARDS_JOB_LEASE_SECONDS", "jobs.lease_seconds", Kind::Int),
    key("BOARDS_JOB_TIMEOUT", "jobs.timeout_seconds", Kind::Int),
    key("BOARDS_JOB_POOLS", "jobs.pools", Kind::Json),
    key(
        "BOARDS_JOB_RELAY_INTERVAL_MS",
        "jobs.relay_interval_ms",
        Kind::Int,
    ),
    key(
        "BOARDS_PROGRESS_PERSIST_INTERVAL_MS",
        "jobs.progress_persist_interval_ms",
        Kind::Int,
    ),
    key(
        "BOARDS_RATE_LIMIT_ENABLED",
        "rate_limit.enabled",
        Kind::Bool,
    ),
    key(
        "BOARDS_RATE_LIMIT_GENERATIONS",
        "rate_limit.generations",
        Kind::Str,
    ),
    key("BOARDS_RATE_LIMIT_UPLOADS", "rate_limit.uploads", Kind::Str),
    key(
        "BOARDS_RATE_LIMIT_AUTH_FAILURES",
        "rate_limit.auth_failures",
        Kind::Str,
    ),
    key(
        "BOARDS_WEBHOOK_TIMEOUT_MS",
        "webhooks.timeout_ms",
        Kind::Int,
    ),
    key(
        "BOARDS_WEBHOOK_RETRY_DELAYS_MS",
        "webhooks.retry_delays_ms",
        Kind::IntList,
    ),
    key(
        "BOARDS_WEBHOOK_ALLOWED_HOSTS",
        "webhooks.allowed_hosts",
        Kind::List,
    ),
    key(
        "BOARDS_WEBHOOK_MAX_PER_BOARD",
        "webhooks.max_per_board",
        Kind::Int,
    ),
    key(
        "BOARDS_WEBHOOK_DELIVERY_RETENTION_DAYS",
        "webhooks.delivery_retention_days",
        Kind::Int,
    ),
    key(
        "BOARDS_WEBHOOK_SECRET_ROTATION_GRACE_SECONDS",
        "webhooks.secret_rotation_grace_seconds",
        Kind::Int,
    ),
];

/// Environment variables read outside [`ENV_KEYS`] (they choose the file or guard production).
pub const OTHER_ENV: &[&str] = &[
    "BOARDS_CONFIG_FILE",
    "ENVIRONMENT",
    "BOARDS_TEST_DATABASE_URL",
];

/// Configuration that could not be loaded; the message names the offending key.
#[derive(Debug, thiserror::Error)]
#[error("invalid configuration: {0}")]
pub struct ConfigError(pub String);

impl Config {
    /// Loads the configuration from the process environment (and the YAML file it names).
    pub fn load() -> Result<Self, ConfigError> {
        let env: BTreeMap<String, String> = std::env::vars().collect();
        Self::load_from(&env)
    }

    /// Loads from an explicit environment map (tests use this instead of the process env).
    pub fn load_from(env: &BTreeMap<String, String>) -> Result<Self, ConfigError> {
        let mut tree = serde_json::to_value(Config::default())
            .map_err(|e| ConfigError(format!("defaults: {e}")))?;

        if let Some(path) = env.get("BOARDS_CONFIG_FILE").filter(|p| !p.is_empty()) {
            let file = load_yaml(Path::new(path))?;
            merge(&mut tree, file);
        }

        for key in ENV_KEYS {
            let found = std::iter::once(key.env)
                .chain(key.aliases.iter().copied())
                .find_map(|name| env.get(name).map(|v| (name, v)));
            if let Some((name, raw)) = found {
                let value = parse_env(key.kind, raw)
                    .map_err(|e| ConfigError(format!("{name}: {e} (got {})", shown(key, raw))))?;
                set_path(&mut tree, key.path, value);
            }
        }

        let mut config: Config = serde_path_to_error::deserialize(tree).map_err(|e| {
            let path = e.path().to_string();
            ConfigError(format!("{}: {}", describe_path(&path), e.inner()))
        })?;
        if config.storage.local_public_url_base.is_empty() {
            config.storage.local_public_url_base = default_public_url_base(&config.api);
        }
        config.storage.layout = resolve_storage(&mut config, env)?;
        config.auth.env = env
            .iter()
            .filter(|(k, _)| crate::auth::PROVIDER_ENV.contains(&k.as_str()))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        config.validate()?;
        // One shared development user and no tokens: nothing to limit.
        if config.auth.provider == "none" {
            config.rate_limit.enabled = false;
        }
        Ok(config)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let err =
            |path: &str, msg: &str| Err(ConfigError(format!("{}: {msg}", describe_path(path))));
        let g = &self.generators;
        if !matches!(g.unavailable.as_str(), "list" | "hide") {
            return err("generators.unavailable", "expected `list` or `hide`");
        }
        for (path, url) in [
            ("generators.fal_base_url", &g.fal_base_url),
            ("generators.fal_rest_url", &g.fal_rest_url),
            ("generators.replicate_base_url", &g.replicate_base_url),
            ("generators.openai_base_url", &g.openai_base_url),
            ("generators.kie_base_url", &g.kie_base_url),
            ("generators.kie_upload_url", &g.kie_upload_url),
        ] {
            if !url::Url::parse(url).is_ok_and(|u| matches!(u.scheme(), "http" | "https")) {
                return err(path, "expected an http(s) URL");
            }
        }
        if g.poll_interval_ms == 0 || g.max_poll_interval_ms < g.poll_interval_ms {
            return err(
                "generators.max_poll_interval_ms",
                "poll intervals must be positive, the maximum at least the first",
            );
        }
        if let Err(e) = crate::generators::ProviderKeys::from_config(g) {
            return err("generators.api_keys", &e);
        }
        // Each provider checks its own options (auth::build_provider makes no network call).
        let discard = slog::Logger::root(slog::Discard, slog::o!());
        if let Err(e) = crate::auth::build_provider(self, &discard) {
            return err(&e.path, &e.why);
        }
        if !self.auth.config.is_object() {
            return err("auth.config", "must be a JSON object");
        }
        if !valid_slug(&self.tenancy.default_tenant_slug) {
            return err(
                "tenancy.default_tenant_slug",
                "must match ^[a-z0-9-]+$ without a leading or trailing '-'",
            );
        }
        if let Some(token) = self.tenancy.admin_token.as_ref().filter(|t| !t.is_empty()) {
            if token.expose().chars().count() < MIN_ADMIN_TOKEN_CHARS {
                return err(
                    "tenancy.admin_token",
                    "must be at least 16 characters (generate one, e.g. `openssl rand -hex 32`)",
                );
            }
        }
        if self
            .tenancy
            .registration_allowed_domains
            .iter()
            .any(|d| d.trim().is_empty() || d.contains('@'))
        {
            return err(
                "tenancy.registration_allowed_domains",
                "expected domain names such as example.com",
            );
        }
        if let Some(url) = self
            .tenancy
            .frontend_base_url
            .as_deref()
            .filter(|u| !u.is_empty())
        {
            if !url::Url::parse(url).is_ok_and(|u| matches!(u.scheme(), "http" | "https")) {
                return err("tenancy.frontend_base_url", "expected an http(s) URL");
            }
        }
        if self.database.pool_size == 0 {
            return err("database.pool_size", "must be at least 1");
        }
        if self.redis.pool_size == 0 {
            return err("redis.pool_size", "must be at least 1");
        }
        if self.amqp.confirm_timeout_ms == 0 {
            return err("amqp.confirm_timeout_ms", "must be at least 1");
        }
        if self.redis.command_timeout_ms == 0 {
            return err("redis.command_timeout_ms", "must be at least 1");
        }
        if self.redis.board_events_max_len == 0 {
            return err("redis.board_events_max_len", "must be at least 1");
        }
        if self.redis.board_events_max_age_seconds == 0 {
            return err("redis.board_events_max_age_seconds", "must be at least 1");
        }
        if self.worker.memory_budget_mb < 16 {
            return err("worker.memory_budget_mb", "must be at least 16");
        }
        for (path, value) in [
            (
                "api.header_timeout_seconds",
                self.api.header_timeout_seconds,
            ),
            ("api.body_timeout_seconds", self.api.body_timeout_seconds),
            (
                "api.sse_access_recheck_seconds",
                self.api.sse_access_recheck_seconds,
            ),
        ] {
            if value == 0 {
                return err(path, "must be at least 1");
            }
        }
        if self.api.sse_max_streams_per_user == 0 {
            return err("api.sse_max_streams_per_user", "must be at least 1");
        }
        for (path, address) in [
            ("api.metrics_address", &self.api.metrics_address),
            ("worker.metrics_address", &self.worker.metrics_address),
        ] {
            if !address.is_empty() && address.parse::<std::net::SocketAddr>().is_err() {
                return err(
                    path,
                    "expected host:port with an IP address (e.g. 127.0.0.1:9090), or empty",
                );
            }
        }
        if self.worker.concurrency == 0 {
            return err("worker.concurrency", "must be at least 1");
        }
        if self.worker.pools.is_empty() {
            return err("worker.pools", "must name at least one pool");
        }
        if self.jobs.max_attempts == 0 {
            return err("jobs.max_attempts", "must be at least 1");
        }
        if self.jobs.retry_delays_ms.is_empty() {
            return err("jobs.retry_delays_ms", "must have at least one delay");
        }
        if self.jobs.lease_seconds < 2 {
            return err("jobs.lease_seconds", "must be at least 2");
        }
        if self.webhooks.timeout_ms == 0 {
            return err("webhooks.timeout_ms", "must be at least 1");
        }
        if let Err(e) = crate::net::AllowList::parse(&self.webhooks.allowed_hosts) {
            return err("webhooks.allowed_hosts", &e);
        }
        let valid_name = |s: &str| {
            !s.is_empty()
                && s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
        };
        if !valid_name(&self.amqp.prefix) {
            return err("amqp.prefix", "use letters, digits, '-', '_' and '.' only");
        }
        for pool in self.worker.pools.iter().chain(self.jobs.pools.values()) {
            if !valid_name(pool) {
                return err("worker.pools", &format!("invalid pool name {pool:?}"));
            }
        }
        if self.graphql.max_page_size < 1 {
            return err("graphql.max_page_size", "must be at least 1");
        }
        if self.graphql.max_cost == 0 {
            return err("graphql.max_cost", "must be at least 1");
        }
        if self.graphql.max_concurrent_expensive == 0 {
            return err("graphql.max_concurrent_expensive", "must be at least 1");
        }
        if self.graphql.max_response_bytes < 1024 {
            return err("graphql.max_response_bytes", "must be at least 1024");
        }
        if !matches!(
            self.log.level.as_str(),
            "trace" | "debug" | "info" | "warning" | "warn" | "error" | "critical"
        ) {
            return err(
                "log.level",
                "expected trace, debug, info, warning, error or critical",
            );
        }
        if !matches!(self.log.format.as_str(), "auto" | "json" | "term") {
            return err("log.format", "expected auto, json or term");
        }
        for (path, url, schemes) in [
            (
                "database.url",
                &self.database.url,
                &["postgres", "postgresql"][..],
            ),
            ("redis.url", &self.redis.url, &["redis", "rediss"][..]),
            ("amqp.url", &self.amqp.url, &["amqp", "amqps"][..]),
        ] {
            let scheme = url.expose().split("://").next().unwrap_or_default();
            if !url.expose().contains("://") || !schemes.contains(&scheme) {
                return err(
                    path,
                    &format!("must be a URL with scheme {}", schemes.join(" or ")),
                );
            }
        }
        Ok(())
    }

    /// The effective configuration as JSON, with secrets and URL passwords replaced.
    pub fn redacted(&self) -> Value {
        let mut tree = serde_json::to_value(self).unwrap_or(Value::Null);
        for key in ENV_KEYS.iter().filter(|k| k.secret) {
            if let Some(slot) = get_path_mut(&mut tree, key.path) {
                *slot = match slot {
                    Value::String(s) if s.contains("://") => Value::String(redact_url(s)),
                    Value::Null => Value::Null,
                    _ => Value::String("[redacted]".into()),
                };
            }
        }
        tree
    }

    /// The redacted configuration as one `(dotted key, value)` pair per key of [`ENV_KEYS`], in
    /// their order: the fields of the startup log record.
    pub fn log_fields(&self) -> Vec<(&'static str, Value)> {
        let tree = self.redacted();
        ENV_KEYS
            .iter()
            .map(|key| {
                let value = key
                    .path
                    .split('.')
                    .try_fold(&tree, |node, part| node.get(part))
                    .cloned()
                    .unwrap_or(Value::Null);
                (key.path, value)
            })
            .collect()
    }

    pub fn is_production(&self) -> bool {
        matches!(
            self.environment.to_ascii_lowercase().as_str(),
            "production" | "prod"
        )
    }
}

/// The storage providers in effect: `storage_config.yaml` (when named), then the environment
/// (`BOARDS_STORAGE_LOCAL_*` replace the `local` provider's fields, `BOARDS_STORAGE_S3_BUCKET`
/// adds or replaces the `s3` provider), checked as a whole.
fn resolve_storage(
    config: &mut Config,
    env: &BTreeMap<String, String>,
) -> Result<crate::storage::settings::Layout, ConfigError> {
    use crate::storage::{
        s3::{S3Delivery, S3Settings},
        settings::{self, LocalSettings, ProviderSpec},
    };
    let derived_base = default_public_url_base(&config.api);
    let st = &mut config.storage;
    let (mut layout, values) = if st.config_path.is_empty() {
        Default::default()
    } else {
        settings::load_file(Path::new(&st.config_path), env).map_err(ConfigError)?
    };
    if let Some(max) = values.max_file_size {
        if !env.contains_key("BOARDS_STORAGE_MAX_FILE_SIZE") {
            st.max_file_size = max;
        }
    }
    let set = |name: &str| env.contains_key(name);
    let local_from_env = set("BOARDS_STORAGE_LOCAL_BASE_PATH")
        || set("BOARDS_STORAGE_LOCAL_PUBLIC_URL_BASE")
        || st.config_path.is_empty();
    if local_from_env {
        let entry = layout
            .providers
            .entry("local".into())
            .or_insert_with(|| ProviderSpec::Local(LocalSettings::default()));
        if let ProviderSpec::Local(local) = entry {
            if set("BOARDS_STORAGE_LOCAL_BASE_PATH") || local.base_path.is_empty() {
                local.base_path = st.local_base_path.clone();
            }
            if set("BOARDS_STORAGE_LOCAL_PUBLIC_URL_BASE") || local.public_url_base.is_empty() {
                local.public_url_base = st.local_public_url_base.clone();
            }
        }
    }
    for spec in layout.providers.values_mut() {
        if let ProviderSpec::Local(local) = spec {
            if local.base_path.is_empty() {
                local.base_path = "/tmp/boards/storage".into();
            }
            if local.public_url_base.is_empty() {
                local.public_url_base = derived_base.clone();
            }
        }
    }
    let some = |s: &str| (!s.is_empty()).then(|| s.to_string());
    let proxy =
        match st.s3_delivery.as_str() {
            "" | "redirect" => false,
            "proxy" => true,
            _ => return Err(ConfigError(
                "BOARDS_STORAGE_S3_DELIVERY (storage.s3_delivery): expected `redirect` or `proxy`"
                    .into(),
            )),
        };
    if !st.s3_bucket.is_empty() {
        let mut s3 = S3Settings {
            bucket: st.s3_bucket.clone(),
            endpoint_url: some(&st.s3_endpoint_url),
            prefix: st.s3_prefix.clone(),
            cdn_base_url: some(&st.s3_cdn_base_url),
            aws_access_key_id: some(&st.s3_access_key_id),
            aws_secret_access_key: st.s3_secret_access_key.clone().filter(|s| !s.is_empty()),
            aws_session_token: st.s3_session_token.clone().filter(|s| !s.is_empty()),
            ..S3Settings::default()
        };
        if !st.s3_region.is_empty() {
            s3.region = st.s3_region.clone();
        }
        if proxy {
            s3.delivery = S3Delivery::Proxy;
        }
        layout
            .providers
            .insert("s3".into(), ProviderSpec::S3(Box::new(s3)));
    }
    for spec in layout.providers.values_mut() {
        if let ProviderSpec::S3(s3) = spec {
            if set("BOARDS_STORAGE_URL_EXPIRY_SECONDS") {
                s3.url_expiry_seconds = st.url_expiry_seconds;
            }
            // Private deployments never hand out plain bucket or CDN URLs.
            if !st.public {
                if s3.cdn_base_url.is_some() || s3.cloudfront_domain.is_some() {
                    return Err(ConfigError(
                        "storage: a CDN base URL (cdn_base_url, cloudfront_domain, \
                         BOARDS_STORAGE_S3_CDN_BASE_URL) serves objects publicly; unset it or \
                         set BOARDS_STORAGE_PUBLIC=true"
                            .into(),
                    ));
                }
                s3.presign = true;
            }
        }
    }
    layout.default_provider = if !st.default_provider.is_empty() {
        st.default_provider.clone()
    } else if let Some(d) = values.default_provider {
        d
    } else if layout.providers.len() == 1 {
        layout.providers.keys().next().cloned().unwrap_or_default()
    } else {
        "local".into()
    };
    st.default_provider = layout.default_provider.clone();
    layout.check().map_err(ConfigError)?;
    let has_local = layout
        .providers
        .values()
        .any(|p| matches!(p, ProviderSpec::Local(_)));
    let key_len = st.signing_key.as_ref().map_or(0, |k| k.expose().len());
    if !st.public && has_local && key_len < 32 {
        return Err(ConfigError(
            "storage.signing_key: a private deployment (BOARDS_STORAGE_PUBLIC=false) with a \
             local provider needs BOARDS_STORAGE_SIGNING_KEY, at least 32 characters, the same \
             for every API replica and worker"
                .into(),
        ));
    }
    if st.url_expiry_seconds == 0 || st.url_expiry_seconds > 604_800 {
        return Err(ConfigError(
            "storage.url_expiry_seconds: must be between 1 and 604800 (7 days)".into(),
        ));
    }
    Ok(layout)
}

/// `http://{host}:{port}/api/storage`: where this API serves stored files, as a browser on the
/// same machine reaches it (a wildcard bind address is shown as `localhost`).
fn default_public_url_base(api: &ApiConfig) -> String {
    let host = match api.host.as_str() {
        "" | "0.0.0.0" | "::" | "[::]" => "localhost".to_string(),
        h if h.contains(':') && !h.starts_with('[') => format!("[{h}]"),
        h => h.to_string(),
    };
    format!("http://{host}:{}/api/storage", api.port)
}

/// `BOARDS_*` variables present in `env` that no key knows (probably typos).
pub fn unknown_env_keys(env: &BTreeMap<String, String>) -> Vec<String> {
    env.keys()
        .filter(|k| k.starts_with("BOARDS_"))
        .filter(|k| !ENV_KEYS.iter().any(|key| key.env == k.as_str()))
        .filter(|k| !OTHER_ENV.contains(&k.as_str()))
        .filter(|k| !crate::auth::PROVIDER_ENV.contains(&k.as_str()))
        .cloned()
        .collect()
}

/// What to set instead of a variable of the original Boards that is not read here.
pub fn replacement_of(key: &str) -> Option<&'static str> {
    match key {
        k if k.starts_with("BOARDS_OTEL_") => Some(
            "the original's OTLP/gRPC exporter; set BOARDS_OTLP_ENDPOINT to the collector's \
             OTLP/HTTP address (port 4318) to export traces from both binaries",
        ),
        _ => None,
    }
}

/// The shortest `BOARDS_ADMIN_TOKEN` accepted (a short token is guessable).
pub const MIN_ADMIN_TOKEN_CHARS: usize = 16;

/// Tenant slugs: `^[a-z0-9-]+$`, at most 255 chars, no leading or trailing `-`.
pub fn valid_slug(slug: &str) -> bool {
    !slug.is_empty()
        && slug.len() <= 255
        && !slug.starts_with('-')
        && !slug.ends_with('-')
        && slug
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

fn shown(key: &EnvKey, raw: &str) -> String {
    if key.secret {
        "[redacted]".into()
    } else {
        format!("{raw:?}")
    }
}

fn describe_path(path: &str) -> String {
    match ENV_KEYS
        .iter()
        .find(|k| path == k.path || path.starts_with(&format!("{}.", k.path)))
    {
        Some(k) => format!("`{path}` (env {})", k.env),
        None => format!("`{path}`"),
    }
}

fn parse_env(kind: Kind, raw: &str) -> Result<Value, String> {
    let raw_trim = raw.trim();
    match kind {
        Kind::Str => Ok(Value::String(raw.to_string())),
        Kind::Int => raw_trim
            .parse::<i64>()
            .map(Value::from)
            .map_err(|_| "expected an integer".to_string()),
        Kind::Bool => match raw_trim.to_ascii_lowercase().as_str() {
            "1" | "true" | "yes" | "on" => Ok(Value::Bool(true)),
            "0" | "false" | "no" | "off" | "" => Ok(Value::Bool(false)),
            _ => Err("expected a boolean (true/false)".to_string()),
        },
        Kind::Json => {
            if raw_trim.is_empty() {
                return Ok(json!({}));
            }
            let v: Value = serde_json::from_str(raw_trim)
                .map_err(|e| format!("expected a JSON object: {e}"))?;
            if v.is_object() {
                Ok(v)
            } else {
                Err("expected a JSON object".to_string())
            }
        }
        Kind::IntList => {
            let items: Result<Vec<i64>, _> = if raw_trim.starts_with('[') {
                serde_json::from_str(raw_trim).map_err(|e| e.to_string())
            } else {
                raw_trim
                    .split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(|s| s.parse::<i64>().map_err(|e| e.to_string()))
                    .collect()
            };
            items
                .map(|v| json!(v))
                .map_err(|e| format!("expected a list of integers: {e}"))
        }
        Kind::List => {
            if raw_trim.starts_with('[') {
                let v: Vec<String> = serde_json::from_str(raw_trim)
                    .map_err(|e| format!("expected a JSON array of strings: {e}"))?;
                Ok(json!(v))
            } else {
                Ok(json!(raw_trim
                    .split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .collect::<Vec<_>>()))
            }
        }
    }
}

fn load_yaml(path: &Path) -> Result<Value, ConfigError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| ConfigError(format!("BOARDS_CONFIG_FILE {}: {e}", path.display())))?;
    let value: Value = serde_yaml::from_str(&text)
        .map_err(|e| ConfigError(format!("BOARDS_CONFIG_FILE {}: {e}", path.display())))?;
    match value {
        Value::Null => Ok(json!({})),
        Value::Object(_) => Ok(value),
        _ => Err(ConfigError(format!(
            "BOARDS_CONFIG_FILE {}: the top level must be a mapping",
            path.display()
        ))),
    }
}

/// Deep-merges `overlay` into `base`: objects merge key by key, anything else replaces.
fn merge(base: &mut Value, overlay: Value) {
    match (base, overlay) {
        (Value::Object(b), Value::Object(o)) => {
            for (k, v) in o {
                match b.get_mut(&k) {
                    // `auth.config` and `jobs.pools` are values, not sections: replace them whole.
                    Some(slot)
                        if slot.is_object() && v.is_object() && k != "config" && k != "pools" =>
                    {
                        merge(slot, v)
                    }
                    _ => {
                        b.insert(k, v);
                    }
                }
            }
        }
        (b, o) => *b = o,
    }
}

fn set_path(tree: &mut Value, path: &str, value: Value) {
    let mut node = tree;
    let mut parts = path.split('.').peekable();
    while let Some(part) = parts.next() {
        if !node.is_object() {
            *node = Value::Object(Map::new());
        }
        let Value::Object(map) = node else { return };
        if parts.peek().is_none() {
            map.insert(part.to_string(), value);
            return;
        }
        node = map.entry(part.to_string()).or_insert_with(|| json!({}));
    }
}

fn get_path_mut<'a>(tree: &'a mut Value, path: &str) -> Option<&'a mut Value> {
    path.split('.')
        .try_fold(tree, |node, part| node.get_mut(part))
}

/// `scheme://user:password@host/...?password=...` → `scheme://user:***@host/...?password=***`:
/// the password of the user info and the values of secret-looking query parameters (libpq's
/// `password`/`sslpassword`, `token`, `secret`, `access_key`…) are hidden.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return "[redacted]".into();
    };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    let (userinfo, host_and_tail) = match rest[..authority_end].rsplit_once('@') {
        Some((userinfo, _)) => (Some(userinfo), &rest[userinfo.len() + 1..]),
        None => (None, rest),
    };
    let shown_userinfo = match userinfo {
        Some(u) if u.contains(':') => {
            format!("{}:***@", u.split(':').next().unwrap_or_default())
        }
        Some(u) => format!("{u}@"),
        None => String::new(),
    };
    format!("{scheme}://{shown_userinfo}{}", redact_query(host_and_tail))
}

/// Whether a query parameter name (case-insensitive) looks like it carries a secret.
fn secret_param(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    ["password", "passwd", "secret", "token"]
        .iter()
        .any(|s| name.contains(s))
        || [
            "pass",
            "pwd",
            "access_key",
            "api_key",
            "apikey",
            "key_secret",
        ]
        .contains(&name.as_str())
}

fn redact_query(host_and_tail: &str) -> String {
    let Some((before, query)) = host_and_tail.split_once('?') else {
        return host_and_tail.to_string();
    };
    let (query, fragment) = match query.split_once('#') {
        Some((q, f)) => (q, Some(f)),
        None => (query, None),
    };
    let query = query
        .split('&')
        .map(|pair| match pair.split_once('=') {
            Some((name, _)) if secret_param(name) => format!("{name}=***"),
            _ => pair.to_string(),
        })
        .collect::<Vec<_>>()
        .join("&");
    match fragment {
        Some(f) => format!("{before}?{query}#{f}"),
        None => format!("{before}?{query}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn defaults_load_without_any_environment() {
        let c = Config::load_from(&env(&[])).unwrap();
        assert_eq!(c.api.port, 8088);
        assert_eq!(c.auth.provider, "none");
        assert_eq!(c.tenancy.default_tenant_slug, "default");
    }

    #[test]
    fn boards_names_win_over_plain_aliases() {
        let c = Config::load_from(&env(&[
            ("DATABASE_URL", "postgres://a@h/one"),
            ("BOARDS_DATABASE_URL", "postgres://a@h/two"),
            ("REDIS_URL", "redis://r:1"),
        ]))
        .unwrap();
        assert_eq!(c.database.url.expose(), "postgres://a@h/two");
        assert_eq!(c.redis.url.expose(), "redis://r:1");
    }

    #[test]
    fn a_bad_integer_names_its_variable() {
        let e = Config::load_from(&env(&[("BOARDS_API_PORT", "eighty")])).unwrap_err();
        assert!(e.to_string().contains("BOARDS_API_PORT"), "{e}");
    }

    #[test]
    fn an_out_of_range_port_names_its_key() {
        let e = Config::load_from(&env(&[("BOARDS_API_PORT", "70000")])).unwrap_err();
        assert!(e.to_string().contains("api.port"), "{e}");
        assert!(e.to_string().contains("BOARDS_API_PORT"), "{e}");
    }

    #[test]
    fn none_auth_refuses_production() {
        let e = Config::load_from(&env(&[("ENVIRONMENT", "production")])).unwrap_err();
        assert!(e.to_string().contains("auth.provider"), "{e}");
        let e = Config::load_from(&env(&[("BOARDS_ENVIRONMENT", "prod")])).unwrap_err();
        assert!(e.to_string().contains("production"), "{e}");
    }

    #[test]
    fn jwt_without_a_secret_is_refused() {
        let e = Config::load_from(&env(&[("BOARDS_AUTH_PROVIDER", "jwt")])).unwrap_err();
        assert!(e.to_string().contains("BOARDS_JWT_SECRET"), "{e}");
        Config::load_from(&env(&[
            ("BOARDS_AUTH_PROVIDER", "jwt"),
            ("BOARDS_AUTH_CONFIG", r#"{"secret_key":"s"}"#),
        ]))
        .unwrap();
    }

    #[test]
    fn unknown_provider_and_bad_json_are_refused() {
        let e = Config::load_from(&env(&[("BOARDS_AUTH_PROVIDER", "ldap")])).unwrap_err();
        assert!(e.to_string().contains("auth.provider"), "{e}");
        let e = Config::load_from(&env(&[("BOARDS_AUTH_CONFIG", "{nope")])).unwrap_err();
        assert!(e.to_string().contains("BOARDS_AUTH_CONFIG"), "{e}");
    }

    #[test]
    fn lists_accept_json_and_commas() {
        let c = Config::load_from(&env(&[(
            "BOARDS_CORS_ORIGINS",
            r#"["http://a","http://b"]"#,
        )]))
        .unwrap();
        assert_eq!(c.api.cors_origins, vec!["http://a", "http://b"]);
        let c = Config::load_from(&env(&[("BOARDS_CORS_ORIGINS", "http://a, http://b")])).unwrap();
        assert_eq!(c.api.cors_origins, vec!["http://a", "http://b"]);
    }

    #[test]
    fn yaml_file_sits_between_defaults_and_env() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("boards.yaml");
        std::fs::write(
            &path,
            "api:\n  port: 9000\n  host: 0.0.0.0\nlog:\n  level: debug\n",
        )
        .unwrap();
        let file = path.to_str().unwrap();
        let c = Config::load_from(&env(&[
            ("BOARDS_CONFIG_FILE", file),
            ("BOARDS_API_PORT", "9100"),
        ]))
        .unwrap();
        assert_eq!(c.api.port, 9100);
        assert_eq!(c.api.host, "0.0.0.0");
        assert_eq!(c.log.level, "debug");
    }

    #[test]
    fn unknown_yaml_keys_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("boards.yaml");
        std::fs::write(&path, "api:\n  prot: 9000\n").unwrap();
        let e =
            Config::load_from(&env(&[("BOARDS_CONFIG_FILE", path.to_str().unwrap())])).unwrap_err();
        assert!(e.to_string().contains("prot"), "{e}");
    }

    #[test]
    fn redaction_hides_secrets_and_url_passwords() {
        let c = Config::load_from(&env(&[
            (
                "BOARDS_DATABASE_URL",
                "postgres://boards:hunter2@db:5432/boards",
            ),
            ("BOARDS_JWT_SECRET", "topsecret"),
        ]))
        .unwrap();
        let shown = c.redacted().to_string();
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(!shown.contains("topsecret"), "{shown}");
        assert!(
            shown.contains("postgres://boards:***@db:5432/boards"),
            "{shown}"
        );
        assert!(!format!("{c:?}").contains("hunter2"));
    }

    #[test]
    fn redact_url_hides_passwords_in_query_parameters() {
        for (url, shown) in [
            (
                "postgres://u@db/boards?password=hunter2",
                "postgres://u@db/boards?password=***",
            ),
            (
                "postgres://db/boards?sslmode=require&sslpassword=hunter2&application_name=x",
                "postgres://db/boards?sslmode=require&sslpassword=***&application_name=x",
            ),
            (
                "postgres://u:hunter2@db/boards?PassWord=hunter2#frag",
                "postgres://u:***@db/boards?PassWord=***#frag",
            ),
            (
                "redis://:hunter2@cache:6379?token=hunter2",
                "redis://:***@cache:6379?token=***",
            ),
            (
                "amqp://h/%2f?pass=hunter2&secret=hunter2&access_key=hunter2&heartbeat=10",
                "amqp://h/%2f?pass=***&secret=***&access_key=***&heartbeat=10",
            ),
            (
                "amqp://guest:guest@127.0.0.1:5672/%2f",
                "amqp://guest:***@127.0.0.1:5672/%2f",
            ),
            ("redis://127.0.0.1:6379/0", "redis://127.0.0.1:6379/0"),
            ("postgres://u:p?ss@db/boards", "postgres://u:***@db/boards"),
        ] {
            assert_eq!(redact_url(url), shown, "{url}");
        }
    }

    #[test]
    fn storage_providers_come_from_the_file_and_the_environment() {
        use crate::storage::settings::ProviderSpec;
        let c = Config::load_from(&env(&[])).unwrap();
        assert_eq!(c.storage.layout.default_provider, "local");
        assert_eq!(c.storage.layout.providers.len(), 1);

        let c = Config::load_from(&env(&[
            ("BOARDS_STORAGE_S3_BUCKET", "art"),
            ("BOARDS_STORAGE_S3_ENDPOINT_URL", "http://127.0.0.1:8333"),
            ("BOARDS_AWS_ACCESS_KEY_ID", "AKID"),
            ("BOARDS_AWS_SECRET_ACCESS_KEY", "sekrit"),
            ("BOARDS_STORAGE_DEFAULT_PROVIDER", "s3"),
        ]))
        .unwrap();
        assert_eq!(c.storage.layout.default_provider, "s3");
        match &c.storage.layout.providers["s3"] {
            // The credentials are really used (the original dropped them).
            ProviderSpec::S3(s3) => {
                assert_eq!(s3.aws_access_key_id.as_deref(), Some("AKID"));
                assert_eq!(
                    s3.aws_secret_access_key.as_ref().map(Secret::expose),
                    Some("sekrit")
                );
                assert_eq!(s3.endpoint_url.as_deref(), Some("http://127.0.0.1:8333"));
            }
            other => panic!("{other:?}"),
        }
        assert!(!format!("{c:?}").contains("sekrit"));

        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("storage_config.yaml");
        std::fs::write(
            &file,
            "storage:\n  default_provider: big\n  max_file_size: 2048\n  providers:\n    big: { type: s3, config: { bucket: \"${B}\" } }\n    local: { type: local }\n  routing_rules:\n    - { condition: { artifact_type: image }, provider: local }\n",
        )
        .unwrap();
        let path = file.to_string_lossy().to_string();
        let c = Config::load_from(&env(&[
            ("BOARDS_STORAGE_CONFIG_PATH", &path),
            ("B", "from-env"),
        ]))
        .unwrap();
        assert_eq!(c.storage.layout.default_provider, "big");
        assert_eq!(c.storage.max_file_size, 2048);
        assert_eq!(c.storage.layout.rules.len(), 1);
        match &c.storage.layout.providers["local"] {
            ProviderSpec::Local(l) => {
                assert_eq!(l.public_url_base, "http://127.0.0.1:8088/api/storage")
            }
            other => panic!("{other:?}"),
        }
        let err = Config::load_from(&env(&[("BOARDS_STORAGE_CONFIG_PATH", &path)]))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("B is not set") && err.contains("storage_config.yaml"),
            "{err}"
        );
        let c = Config::load_from(&env(&[
            ("BOARDS_STORAGE_CONFIG_PATH", &path),
            ("B", "xyz"),
            ("BOARDS_STORAGE_MAX_FILE_SIZE", "99"),
        ]))
        .unwrap();
        assert_eq!(c.storage.max_file_size, 99);

        for (pairs, named) in [
            (
                vec![("BOARDS_STORAGE_DEFAULT_PROVIDER", "nope")],
                "storage.default_provider",
            ),
            (
                vec![("BOARDS_STORAGE_PUBLIC", "false")],
                "storage.signing_key",
            ),
            (
                vec![
                    ("BOARDS_STORAGE_PUBLIC", "false"),
                    (
                        "BOARDS_STORAGE_SIGNING_KEY",
                        "0123456789abcdef0123456789abcdef",
                    ),
                    ("BOARDS_STORAGE_S3_BUCKET", "b"),
                    ("BOARDS_STORAGE_S3_CDN_BASE_URL", "https://cdn.example.com"),
                ],
                "CDN",
            ),
            (
                vec![("BOARDS_STORAGE_S3_DELIVERY", "teleport")],
                "s3_delivery",
            ),
            (
                vec![("BOARDS_STORAGE_URL_EXPIRY_SECONDS", "0")],
                "url_expiry_seconds",
            ),
            (
                vec![("BOARDS_STORAGE_CONFIG_PATH", "/nonexistent/storage.yaml")],
                "cannot read",
            ),
        ] {
            let err = Config::load_from(&env(&pairs)).unwrap_err().to_string();
            assert!(err.contains(named), "{pairs:?}: {err}");
        }
    }

    #[test]
    fn the_public_storage_url_follows_the_api_address_unless_set() {
        let c = Config::load_from(&env(&[])).unwrap();
        assert_eq!(
            c.storage.local_public_url_base,
            "http://127.0.0.1:8088/api/storage"
        );
        let c = Config::load_from(&env(&[("BOARDS_API_PORT", "9100")])).unwrap();
        assert_eq!(
            c.storage.local_public_url_base,
            "http://127.0.0.1:9100/api/storage"
        );
        for (host, shown) in [
            ("0.0.0.0", "localhost"),
            ("::", "localhost"),
            ("::1", "[::1]"),
            ("api.internal", "api.internal"),
        ] {
            let c = Config::load_from(&env(&[
                ("BOARDS_API_HOST", host),
                ("BOARDS_API_PORT", "8800"),
            ]))
            .unwrap();
            assert_eq!(
                c.storage.local_public_url_base,
                format!("http://{shown}:8800/api/storage"),
                "{host}"
            );
        }
        let c = Config::load_from(&env(&[
            ("BOARDS_API_PORT", "9100"),
            (
                "BOARDS_STORAGE_LOCAL_PUBLIC_URL_BASE",
                "https://cdn.example.com/files",
            ),
        ]))
        .unwrap();
        assert_eq!(
            c.storage.local_public_url_base,
            "https://cdn.example.com/files"
        );
    }

    #[test]
    fn the_worker_health_port_listens_on_loopback_by_default() {
        let c = Config::load_from(&env(&[])).unwrap();
        assert_eq!(c.worker.health_host, "127.0.0.1");
        let c = Config::load_from(&env(&[("BOARDS_WORKER_HEALTH_HOST", "0.0.0.0")])).unwrap();
        assert_eq!(c.worker.health_host, "0.0.0.0");
    }

    #[test]
    fn metrics_addresses_must_be_socket_addresses() {
        let c = Config::load_from(&env(&[
            ("BOARDS_METRICS_ADDRESS", "127.0.0.1:9090"),
            ("BOARDS_WORKER_METRICS_ADDRESS", "[::1]:9091"),
        ]))
        .unwrap();
        assert_eq!(c.api.metrics_address, "127.0.0.1:9090");
        assert_eq!(c.worker.metrics_address, "[::1]:9091");
        let e = Config::load_from(&env(&[("BOARDS_METRICS_ADDRESS", "9090")])).unwrap_err();
        assert!(e.to_string().contains("BOARDS_METRICS_ADDRESS"), "{e}");
        let e =
            Config::load_from(&env(&[("BOARDS_WORKER_METRICS_ADDRESS", "metrics:x")])).unwrap_err();
        assert!(
            e.to_string().contains("BOARDS_WORKER_METRICS_ADDRESS"),
            "{e}"
        );
    }

    #[test]
    fn zero_timeouts_and_stream_caps_are_refused() {
        for key in [
            "BOARDS_API_HEADER_TIMEOUT_SECONDS",
            "BOARDS_API_BODY_TIMEOUT_SECONDS",
            "BOARDS_SSE_MAX_STREAMS_PER_USER",
            "BOARDS_SSE_ACCESS_RECHECK_SECONDS",
        ] {
            let e = Config::load_from(&env(&[(key, "0")])).unwrap_err();
            assert!(e.to_string().contains(key), "{e}");
        }
    }

    #[test]
    fn log_fields_are_one_dotted_key_per_configuration_field_with_secrets_redacted() {
        let c = Config::load_from(&env(&[
            (
                "BOARDS_DATABASE_URL",
                "postgres://boards:hunter2@db:5432/boards",
            ),
            ("BOARDS_JWT_SECRET", "topsecret"),
            ("BOARDS_AUTH_CONFIG", r#"{"secret_key":"alsosecret"}"#),
            ("BOARDS_API_PORT", "9100"),
        ]))
        .unwrap();
        let fields = c.log_fields();
        // Every leaf of the configuration is one field: nothing is missing, nothing is nested.
        fn leaves(prefix: &str, v: &Value, out: &mut Vec<String>) {
            match v {
                Value::Object(map) if !ENV_KEYS.iter().any(|k| k.path == prefix) => {
                    for (k, v) in map {
                        let path = if prefix.is_empty() {
                            k.clone()
                        } else {
                            format!("{prefix}.{k}")
                        };
                        leaves(&path, v, out);
                    }
                }
                _ => out.push(prefix.to_string()),
            }
        }
        let mut expected = vec![];
        leaves("", &serde_json::to_value(&c).unwrap(), &mut expected);
        let mut keys: Vec<String> = fields.iter().map(|(k, _)| k.to_string()).collect();
        expected.sort();
        keys.sort();
        assert_eq!(keys, expected);
        let get = |key: &str| {
            fields
                .iter()
                .find(|(k, _)| *k == key)
                .map(|(_, v)| v.clone())
                .unwrap()
        };
        assert_eq!(get("api.port"), json!(9100));
        assert_eq!(
            get("database.url"),
            json!("postgres://boards:***@db:5432/boards")
        );
        assert_eq!(get("auth.jwt_secret"), json!("[redacted]"));
        assert_eq!(get("auth.config"), json!("[redacted]"));
        let shown = format!("{fields:?}");
        for secret in ["hunter2", "topsecret", "alsosecret"] {
            assert!(!shown.contains(secret), "{shown}");
        }
    }

    #[test]
    fn rate_limits_are_on_with_real_auth_and_forced_off_with_none() {
        let jwt = [("BOARDS_AUTH_PROVIDER", "jwt"), ("BOARDS_JWT_SECRET", "s")];
        let c = Config::load_from(&env(&jwt)).unwrap();
        assert!(c.rate_limit.enabled);
        assert_eq!(c.rate_limit.generations, Quota::per(30, 60));
        assert_eq!(c.rate_limit.uploads, Quota::per(60, 60));
        assert_eq!(c.rate_limit.auth_failures, Quota::per(20, 60));
        let mut pairs = jwt.to_vec();
        pairs.extend([
            ("BOARDS_RATE_LIMIT_GENERATIONS", "5/2m"),
            ("BOARDS_RATE_LIMIT_UPLOADS", "off"),
        ]);
        let c = Config::load_from(&env(&pairs)).unwrap();
        assert_eq!(c.rate_limit.generations, Quota::per(5, 120));
        assert_eq!(c.rate_limit.uploads, Quota::Off);
        let c = Config::load_from(&env(&[("BOARDS_RATE_LIMIT_ENABLED", "true")])).unwrap();
        assert!(!c.rate_limit.enabled, "the none provider turns limits off");
    }

    #[test]
    fn bad_quotas_and_proxies_name_their_variable_and_the_format() {
        let e = Config::load_from(&env(&[("BOARDS_RATE_LIMIT_GENERATIONS", "30 per minute")]))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("BOARDS_RATE_LIMIT_GENERATIONS") && e.contains("COUNT/PERIOD"),
            "{e}"
        );
        let e = Config::load_from(&env(&[("BOARDS_RATE_LIMIT_AUTH_FAILURES", "0/60")]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("BOARDS_RATE_LIMIT_AUTH_FAILURES"), "{e}");
        let e = Config::load_from(&env(&[("BOARDS_TRUSTED_PROXIES", "10.0.0.0/8, ingress")]))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("BOARDS_TRUSTED_PROXIES") && e.contains("ingress"),
            "{e}"
        );
        let c = Config::load_from(&env(&[("BOARDS_TRUSTED_PROXIES", "10.0.0.0/8, ::1")])).unwrap();
        assert!(c.api.trusted_proxies.contains("10.1.2.3".parse().unwrap()));
        assert!(c.api.trusted_proxies.contains("::1".parse().unwrap()));
    }

    #[test]
    fn unknown_boards_variables_are_reported() {
        let unknown = unknown_env_keys(&env(&[("BOARDS_API_PROT", "1"), ("BOARDS_API_PORT", "1")]));
        assert_eq!(unknown, vec!["BOARDS_API_PROT".to_string()]);
        assert!(replacement_of("BOARDS_OTEL_ENDPOINT")
            .is_some_and(|r| r.contains("BOARDS_OTLP_ENDPOINT")));
        assert_eq!(replacement_of("BOARDS_API_PROT"), None);
    }
}

#[cfg(test)]
mod docs_tests {
    use super::*;

    #[test]
    fn every_key_is_documented() {
        let path =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/configuration.md");
        let doc = std::fs::read_to_string(path).unwrap();
        for key in ENV_KEYS {
            assert!(
                doc.contains(&format!("`{}`", key.env)),
                "{} is not documented",
                key.env
            );
            assert!(
                doc.contains(&format!("`{}`", key.path)),
                "{} is not documented",
                key.path
            );
            for alias in key.aliases {
                assert!(
                    doc.contains(&format!("`{alias}`")),
                    "{alias} is not documented"
                );
            }
        }
        for other in OTHER_ENV.iter().chain(crate::auth::PROVIDER_ENV) {
            assert!(
                doc.contains(&format!("`{other}`")),
                "{other} is not documented"
            );
        }
    }
}
