//! Boards worker daemon: consumes its pools' job queues from RabbitMQ, runs generators, stores
//! artifacts, publishes progress on Redis, and finalises rows with conditional updates.
//! [`Worker::start`] is what `main` and the tests run.

pub mod background;
pub mod consumer;
pub mod env;
pub mod generators;
pub mod health;
pub mod job;
pub mod output;
pub mod webhooks;

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::Duration,
};

use anyhow::Context as _;
use boards_shared::{
    config::redact_url,
    db::{self, DbMetrics},
    events::EventBus,
    generators::Registry,
    metrics::Metrics,
    queue::Topology,
    redis_pool, Config,
};
use slog::{info, Logger};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub use env::WorkerEnv;

/// A running worker.
pub struct Worker {
    pub env: Arc<WorkerEnv>,
    pub health_port: u16,
    /// The port serving `/metrics` alone, when `worker.metrics_address` is set.
    pub metrics_port: Option<u16>,
    shutdown: CancellationToken,
    tasks: Vec<JoinHandle<()>>,
    health: actix_web::dev::ServerHandle,
}

impl Worker {
    /// Connects to PostgreSQL (waiting up to 30 s), then starts consuming, listening for
    /// cancellations, reaping and serving the health port.
    pub async fn start(config: Config, logger: Logger, registry: Registry) -> anyhow::Result<Self> {
        let pool = db::build_pool(&config.database, Arc::new(DbMetrics::default()));
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            match db::ping(&pool).await {
                Ok(()) => break,
                Err(e) if tokio::time::Instant::now() > deadline => {
                    return Err(e).with_context(|| {
                        format!(
                            "PostgreSQL is unreachable at {}",
                            redact_url(config.database.url.expose())
                        )
                    });
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(500)).await,
            }
        }
        let redis = redis_pool::build_redis_pool(&config.redis)?;
        let events = EventBus::from_config(&config.redis, redis.clone(), logger.clone());
        let storage = boards_shared::storage::open(&config, &logger).await?;
        let telemetry = boards_shared::telemetry::Telemetry::from_config(
            config.log.otlp_endpoint.as_deref(),
            "boards-worker",
        )?;
        let executors = generators::Executors::from_config(&registry, &config, telemetry.clone())?;
        let fetcher = output_fetcher(&config)?;
        let env = Arc::new(WorkerEnv {
            topology: Topology::new(&config),
            webhook_topology: Topology::webhooks(&config),
            webhook_client: Arc::new(webhooks::client(&config)?),
            worker_id: format!(
                "{}-{}",
                hostname(),
                &uuid::Uuid::new_v4().simple().to_string()[..8]
            ),
            pool,
            redis,
            events,
            storage,
            memory: Arc::new(boards_shared::generators::run::MemoryBudget::new(
                config.worker.memory_budget_mb,
            )),
            registry: Arc::new(registry),
            executors: Arc::new(executors),
            fetcher: Arc::new(fetcher),
            metrics: Arc::new(Metrics::new()),
            telemetry,
            logger: logger.clone(),
            running: Mutex::new(HashMap::new()),
            broker: Default::default(),
            config,
        });
        let health::HealthServer {
            server,
            port: health_port,
            metrics_port,
        } = health::server(env.clone())?;
        let health = server.handle();
        let shutdown = CancellationToken::new();
        let tasks = vec![
            tokio::spawn(async move {
                let _ = server.await;
            }),
            tokio::spawn(consumer::consume(env.clone(), shutdown.clone())),
            tokio::spawn(background::cancellations(env.clone(), shutdown.clone())),
            tokio::spawn(background::reaper(env.clone(), shutdown.clone())),
            tokio::spawn(background::webhook_retention(env.clone(), shutdown.clone())),
        ];
        info!(logger, "worker started"; "worker_id" => &env.worker_id, "concurrency" => env.config.worker.concurrency,
            "pools" => env.config.worker.pools.join(","), "health_port" => health_port);
        Ok(Self {
            env,
            health_port,
            metrics_port,
            shutdown,
            tasks,
            health,
        })
    }

    /// Stops consuming, lets running jobs finish within the grace period (handing back the
    /// rest), and stops.
    pub async fn stop(self) {
        info!(self.env.logger, "shutting down");
        self.shutdown.cancel();
        let mut tasks = self.tasks;
        // The health server task ends when its handle stops; the others on the token.
        for t in tasks.drain(1..) {
            let _ = t.await;
        }
        self.health.stop(true).await;
        for t in tasks {
            let _ = t.await;
        }
        let telemetry = self.env.telemetry.clone();
        let _ = tokio::task::spawn_blocking(move || telemetry.shutdown()).await;
        info!(self.env.logger, "worker stopped");
    }
}

/// The SSRF-guarded fetcher of provider outputs: public hosts, plus what the operator trusts
/// (the URL-import allow-list and the hosts of the configured provider URLs, so a proxy or a
/// regional endpoint on a private network works).
fn output_fetcher(config: &Config) -> anyhow::Result<boards_shared::net::Fetcher> {
    use boards_shared::net::{AllowList, FetchPolicy, Fetcher, SystemResolver};
    let g = &config.generators;
    let mut hosts = config.uploads.url_import_allowed_hosts.clone();
    for base in [
        &g.fal_base_url,
        &g.fal_rest_url,
        &g.replicate_base_url,
        &g.openai_base_url,
        &g.kie_base_url,
        &g.kie_upload_url,
    ] {
        if let Some(host) = url::Url::parse(base)
            .ok()
            .and_then(|u| u.host_str().map(str::to_string))
        {
            hosts.push(
                host.trim_start_matches('[')
                    .trim_end_matches(']')
                    .to_string(),
            );
        }
    }
    let allow = AllowList::parse(&hosts).map_err(|e| anyhow::anyhow!("provider hosts: {e}"))?;
    Ok(Fetcher::new(
        FetchPolicy {
            allow,
            max_bytes: config.storage.max_file_size,
            total_timeout: Duration::from_secs(g.download_timeout_seconds.max(1)),
            ..FetchPolicy::default()
        },
        Arc::new(SystemResolver),
    ))
}

fn hostname() -> String {
    std::env::var("HOSTNAME")
        .ok()
        .or_else(|| {
            std::fs::read_to_string("/etc/hostname")
                .ok()
                .map(|s| s.trim().to_string())
        })
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "worker".into())
}

/// Resolves on SIGTERM or SIGINT. The SIGTERM handler is installed when this is called (not
/// when the future is first polled), so call it before starting: a SIGTERM that arrives
/// while the worker starts up is then a clean shutdown, not the default kill.
pub fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    #[cfg(unix)]
    let term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    async move {
        #[cfg(unix)]
        if let Some(mut term) = term {
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
            return;
        }
        let _ = tokio::signal::ctrl_c().await;
    }
}
