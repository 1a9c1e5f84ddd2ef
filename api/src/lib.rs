//! Boards API server: actix-web + juniper GraphQL over PostgreSQL.
//!
//! [`Application::build`] assembles exactly what production runs; `main.rs` only parses the
//! command line, and tests start the same application on port 0.

pub mod caller;
pub mod graphql;
pub mod health;
pub mod middleware;
pub mod rest;
pub mod sse;
pub mod state;

use std::{net::TcpListener, sync::Arc, time::Duration};

use actix_cors::Cors;
use actix_web::{
    dev::Server,
    http::header,
    middleware::{from_fn, Condition},
    web, App, HttpResponse, HttpServer,
};
use anyhow::Context as _;
use boards_shared::{
    auth::{build_provider, AuthService},
    config::redact_url,
    db::{self, models::tenants, DbMetrics},
    Config,
};
use serde_json::json;
use slog::{info, warn, Logger};

use crate::state::AppState;

pub struct Application {
    port: u16,
    server: Server,
    state: web::Data<AppState>,
    /// Stops the background tasks (relay, progress subscription) when the server stops.
    background: tokio_util::sync::CancellationToken,
    /// Cancelled to stop the server: progress streams end, then in-flight requests finish.
    shutdown: tokio_util::sync::CancellationToken,
}

impl Application {
    /// Connects to PostgreSQL, checks the schema, ensures the default tenant and binds the port.
    pub async fn build(config: Config, logger: Logger) -> anyhow::Result<Self> {
        let config = Arc::new(config);
        let db_metrics = Arc::new(DbMetrics::default());
        let pool = db::build_pool(&config.database, db_metrics.clone());
        wait_for_database(&pool, &config, &logger).await?;
        if db::has_pending_migrations(config.database.url.expose()).await? {
            anyhow::bail!(
                "the database schema is not up to date: run `boards-api migrate` (or `make migrate`) first"
            );
        }
        {
            let mut conn = pool.get().await.map_err(|e| anyhow::anyhow!("{e}"))?;
            tenants::ensure(
                &mut conn,
                &config.tenancy.default_tenant_slug,
                &config.tenancy.tenant_name,
            )
            .await
            .context("ensuring the default tenant")?;
        }
        let loaded =
            boards_shared::generators::config::load(&config).map_err(|e| anyhow::anyhow!(e))?;
        for w in &loaded.warnings {
            warn!(logger, "generators config"; "warning" => w);
        }
        info!(logger, "generators registered"; "count" => loaded.registry.len());
        let generators = Arc::new(loaded.registry);
        let provider = build_provider(&config, &logger)?;
        let auth = Arc::new(AuthService::new(&config, provider, pool.clone()));
        let schema = Arc::new(graphql::build_schema(&config.graphql));
        let metrics = Arc::new(boards_shared::metrics::Metrics::new());
        let redis = boards_shared::redis_pool::build_redis_pool(&config.redis)?;
        let events = boards_shared::events::EventBus::from_config(
            &config.redis,
            redis.clone(),
            logger.clone(),
        );
        let background = tokio_util::sync::CancellationToken::new();
        // The relay gets a small pool of its own: it never competes with requests for
        // connections, and request metrics stay about requests.
        let relay_pool = db::build_pool(
            &boards_shared::config::DatabaseConfig {
                pool_size: 1,
                max_overflow: 1,
                ..config.database.clone()
            },
            Arc::new(DbMetrics::default()),
        );
        let (relay, relay_handle) =
            boards_shared::relay::Relay::new(&config, relay_pool, metrics.clone(), logger.clone());
        tokio::spawn(relay.run(background.clone()));
        tokio::spawn(sample_job_gauges(
            gauges_pool(&config),
            config.jobs.pools.clone(),
            metrics.clone(),
            background.clone(),
        ));
        let shutdown = tokio_util::sync::CancellationToken::new();
        let sse = Arc::new(sse::SseHub::new(shutdown.clone()));
        tokio::spawn(
            sse.clone()
                .run(events.clone(), logger.clone(), background.clone()),
        );
        let storage = boards_shared::storage::open(&config, &logger).await?;
        let listener = TcpListener::bind((config.api.host.as_str(), config.api.port))
            .with_context(|| format!("binding {}:{}", config.api.host, config.api.port))?;
        let metrics_listener = match config.api.metrics_address.as_str() {
            "" => None,
            address => Some(
                TcpListener::bind(address)
                    .with_context(|| format!("binding the metrics address {address}"))?,
            ),
        };
        let metrics_address = metrics_listener
            .as_ref()
            .map(TcpListener::local_addr)
            .transpose()?;
        let redis_for_limits = redis.clone();
        log_rate_limits(&config, &logger);
        let state = web::Data::new(AppState {
            config: config.clone(),
            pool,
            db_metrics,
            auth,
            generators,
            documents: graphql::cache::DocumentCache::new(
                config.graphql.document_cache_bytes,
                config.graphql.max_page_size.max(1) as u64,
            ),
            expensive: tokio::sync::Semaphore::new(config.graphql.max_concurrent_expensive),
            schema,
            logger: logger.clone(),
            redis,
            events,
            relay: relay_handle,
            sse,
            signer: boards_shared::storage::signer_from_config(&config),
            uploader: Arc::new(boards_shared::domain::uploads::Uploader::new(
                storage.clone(),
                boards_shared::domain::uploads::UploadLimits::from_config(&config),
            )),
            fetcher: Arc::new(url_fetcher(&config)?),
            webhooks: boards_shared::domain::webhooks::WebhookRules::from_config(&config)?,
            telemetry: boards_shared::telemetry::Telemetry::from_config(
                config.log.otlp_endpoint.as_deref(),
                "boards-api",
            )?,
            storage,
            limits: boards_shared::ratelimit::Limiter::from_config(
                &config,
                redis_for_limits,
                metrics.clone(),
                logger.clone(),
            ),
            metrics,
            metrics_address,
        });

        let port = listener.local_addr()?.port();
        let app_state = state.clone();
        let mut server = HttpServer::new(move || {
            let config = &app_state.config;
            App::new()
                .app_data(app_state.clone())
                .app_data(web::PayloadConfig::new(config.api.max_body_bytes))
                .wrap(from_fn(middleware::body_deadline))
                .wrap(from_fn(middleware::tenant_header))
                .wrap(Condition::new(
                    app_state.metrics_address.is_some(),
                    from_fn(middleware::metrics_listener),
                ))
                .wrap(from_fn(middleware::access_log))
                .wrap(cors(&config.api.cors_origins))
                .configure(routes)
        })
        .client_request_timeout(Duration::from_secs(config.api.header_timeout_seconds))
        // A client that closes its side is gone (as the original's uvicorn treated it): its
        // progress stream ends at once, freeing its place, instead of at the next keep-alive.
        .h1_allow_half_closed(false)
        .shutdown_timeout(30)
        // Our own stop signal instead of actix's signal handling: progress streams must end
        // first (they would otherwise hold the graceful shutdown for its whole 30 s).
        .shutdown_signal(shutdown.clone().cancelled_owned())
        .listen(listener)?;
        if let Some(listener) = metrics_listener {
            server = server.listen(listener)?;
        }
        if config.api.workers > 0 {
            server = server.workers(config.api.workers);
        }
        info!(logger, "API listening"; "address" => format!("{}:{}", config.api.host, port),
            "metrics" => metrics_address.map_or_else(|| "on the API port".to_string(), |a| a.to_string()),
            "graphiql" => format!("http://{}:{}/graphql", display_host(&config.api.host), port));
        Ok(Self {
            port,
            server: server.run(),
            state,
            background,
            shutdown,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn state(&self) -> web::Data<AppState> {
        self.state.clone()
    }

    /// Cancelling this token stops the server gracefully: every progress stream sends its last
    /// frame and ends, idle connections close, in-flight requests finish (up to 30 s), and
    /// [`run_until_stopped`](Self::run_until_stopped) returns.
    pub fn stop_handle(&self) -> tokio_util::sync::CancellationToken {
        self.shutdown.clone()
    }

    /// Serves until the [stop handle](Self::stop_handle) is cancelled, then drains in-flight
    /// requests.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let result = self.server.await;
        self.background.cancel();
        // Export the last spans (blocking: it waits for the collector, at most its timeout).
        let telemetry = self.state.telemetry.clone();
        let _ = tokio::task::spawn_blocking(move || telemetry.shutdown()).await;
        result
    }

    /// Serves until `signal` resolves (`main` passes [`shutdown_signal`]), then stops gracefully.
    pub async fn run_until(
        self,
        signal: impl std::future::Future<Output = ()> + 'static,
    ) -> std::io::Result<()> {
        let stop = self.stop_handle();
        let logger = self.state.logger.clone();
        let on_signal = logger.clone();
        actix_web::rt::spawn(async move {
            signal.await;
            info!(
                on_signal,
                "shutting down: ending progress streams, finishing requests"
            );
            stop.cancel();
        });
        let result = self.run_until_stopped().await;
        info!(logger, "API stopped");
        result
    }
}

/// Resolves on SIGTERM or SIGINT. The SIGTERM handler is installed when this is called (not
/// when the future is first polled), so call it before building the application: a SIGTERM
/// that arrives during startup then stops the server cleanly once it runs.
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

/// Says once at startup which rate limits apply (they are easy to forget behind a proxy).
fn log_rate_limits(config: &Config, logger: &Logger) {
    let r = &config.rate_limit;
    if !r.enabled {
        info!(logger, "rate limits off"; "reason" => if config.auth.provider == "none" {
            "the none auth provider"
        } else {
            "rate_limit.enabled is false"
        });
        return;
    }
    info!(logger, "rate limits on";
        "generations" => r.generations.to_string(),
        "uploads" => r.uploads.to_string(),
        "auth_failures" => r.auth_failures.to_string());
}

fn display_host(host: &str) -> &str {
    if host == "0.0.0.0" {
        "localhost"
    } else {
        host
    }
}

/// A one-connection pool of its own for the job gauges (its queries are not requests').
fn gauges_pool(config: &boards_shared::Config) -> db::PgPool {
    db::build_pool(
        &boards_shared::config::DatabaseConfig {
            pool_size: 1,
            max_overflow: 0,
            ..config.database.clone()
        },
        Arc::new(DbMetrics::default()),
    )
}

/// Samples the job gauges every 15 s: waiting generations and the age of the oldest per worker
/// pool (generators mapped by `BOARDS_JOB_POOLS`), and `processing` ones past their lease.
async fn sample_job_gauges(
    pool: db::PgPool,
    job_pools: std::collections::BTreeMap<String, String>,
    metrics: Arc<boards_shared::metrics::Metrics>,
    stop: tokio_util::sync::CancellationToken,
) {
    loop {
        if let Ok(mut conn) = pool.get().await {
            if let Ok((waiting, stuck)) =
                boards_shared::db::models::job_runs::gauges(&mut conn).await
            {
                let mut by_pool: std::collections::BTreeMap<&str, (i64, f64)> =
                    std::iter::once("default")
                        .chain(job_pools.values().map(String::as_str))
                        .map(|p| (p, (0, 0.0)))
                        .collect();
                for w in &waiting {
                    let p = boards_shared::relay::pool_of(&job_pools, &w.generator_name);
                    let e = by_pool.entry(p).or_insert((0, 0.0));
                    e.0 += w.pending;
                    e.1 = e.1.max(w.oldest_seconds);
                }
                metrics.jobs_pending.reset();
                metrics.oldest_pending_seconds.reset();
                for (p, (n, age)) in by_pool {
                    metrics.jobs_pending.with_label_values(&[p]).set(n);
                    metrics
                        .oldest_pending_seconds
                        .with_label_values(&[p])
                        .set(age);
                }
                metrics.jobs_stuck.set(stuck);
            }
        }
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(Duration::from_secs(15)) => {}
        }
    }
}

/// The SSRF-guarded fetcher of URL imports, from configuration.
fn url_fetcher(config: &boards_shared::Config) -> anyhow::Result<boards_shared::net::Fetcher> {
    use boards_shared::net::{AllowList, FetchPolicy, Fetcher, SystemResolver};
    let allow = AllowList::parse(&config.uploads.url_import_allowed_hosts).map_err(|e| {
        anyhow::anyhow!("BOARDS_URL_IMPORT_ALLOWED_HOSTS (uploads.url_import_allowed_hosts): {e}")
    })?;
    Ok(Fetcher::new(
        FetchPolicy {
            allow,
            max_bytes: config.uploads.max_upload_size,
            total_timeout: Duration::from_secs(config.uploads.url_import_timeout_seconds),
            ..FetchPolicy::default()
        },
        Arc::new(SystemResolver),
    ))
}

/// Every route of the API.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/health", web::get().to(health::health))
        .route("/ready", web::get().to(health::ready))
        .route("/metrics", web::get().to(health::metrics))
        .route(
            "/api/sse/generations/{id}/progress",
            web::get().to(rest::progress::stream),
        )
        .route(
            "/api/sse/boards/{id}/events",
            web::get().to(rest::board_feed::stream),
        )
        .route("/api/storage/status", web::get().to(rest::storage::status))
        .route("/api/jobs/generations", web::post().to(rest::jobs::create))
        .route("/api/setup/status", web::get().to(rest::setup::status))
        .route("/api/setup/tenant", web::post().to(rest::setup::create))
        .route("/api/setup/tenants", web::get().to(rest::setup::list))
        .service(
            web::resource("/api/setup/tenant/{tenant_id}")
                .route(web::get().to(rest::setup::get))
                .route(web::put().to(rest::setup::update))
                .route(web::delete().to(rest::setup::delete)),
        )
        .route(
            "/api/setup/tenant/{tenant_id}/approve",
            web::post().to(rest::setup::approve),
        )
        // The original's stub, kept for its clients (webhooks themselves are GraphQL).
        .route(
            "/api/webhooks/status",
            web::get().to(|| async {
                HttpResponse::Ok().json(json!({"status": "Webhook endpoint ready"}))
            }),
        )
        .route(
            "/api/tenants/registration/status",
            web::get().to(rest::tenants::registration_status),
        )
        .route(
            "/api/tenants/register",
            web::post().to(rest::tenants::register),
        )
        .service(
            web::resource("/api/tenants/{tenant_id}/members")
                .route(web::get().to(rest::tenants::list_members))
                .route(web::post().to(rest::tenants::add_member)),
        )
        .service(
            web::resource("/api/tenants/{tenant_id}/members/{subject}")
                .route(web::put().to(rest::tenants::update_member))
                .route(web::delete().to(rest::tenants::remove_member)),
        )
        .service(
            web::resource("/api/uploads/artifact")
                .route(web::post().to(rest::uploads::upload))
                .default_service(web::to(|| async {
                    HttpResponse::MethodNotAllowed()
                        .insert_header((header::ALLOW, "POST"))
                        .json(json!({"detail": "Method Not Allowed"}))
                })),
        )
        .service(
            web::resource("/api/storage/{key:.*}")
                .route(web::get().to(rest::storage::serve))
                .route(web::head().to(rest::storage::serve))
                .default_service(web::to(|| async {
                    HttpResponse::MethodNotAllowed()
                        .insert_header((header::ALLOW, "GET, HEAD"))
                        .json(json!({"detail": "Method Not Allowed"}))
                })),
        )
        .service(
            web::resource("/graphql")
                .route(web::post().to(graphql::transport::graphql_post))
                .route(web::get().to(graphql::transport::graphql_get))
                .default_service(web::to(|| async {
                    HttpResponse::MethodNotAllowed().json(json!({"detail": "Method Not Allowed"}))
                })),
        )
        .route(
            "/graphql/",
            web::to(|| async {
                HttpResponse::TemporaryRedirect()
                    .insert_header((header::LOCATION, "/graphql"))
                    .finish()
            }),
        )
        .default_service(web::to(|| async {
            HttpResponse::NotFound().json(json!({"detail": "Not Found"}))
        }));
}

fn cors(origins: &[String]) -> Cors {
    let base = Cors::default()
        .allow_any_method()
        .allow_any_header()
        .expose_headers(["x-request-id"])
        .max_age(3600);
    if origins.iter().any(|o| o == "*") {
        return base.allow_any_origin().send_wildcard();
    }
    origins
        .iter()
        .fold(base.supports_credentials(), |cors, origin| {
            cors.allowed_origin(origin)
        })
}

/// Waits up to 30 s for PostgreSQL, then fails with a message naming it.
async fn wait_for_database(
    pool: &db::PgPool,
    config: &Config,
    logger: &Logger,
) -> anyhow::Result<()> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let mut delay = Duration::from_millis(200);
    loop {
        match db::ping(pool).await {
            Ok(()) => return Ok(()),
            Err(e) if tokio::time::Instant::now() + delay > deadline => {
                anyhow::bail!(
                    "PostgreSQL is unreachable at {}: {e:#}. Start PostgreSQL or set BOARDS_DATABASE_URL.",
                    redact_url(config.database.url.expose())
                );
            }
            Err(e) => {
                warn!(logger, "waiting for PostgreSQL"; "error" => format!("{e:#}"));
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(3));
            }
        }
    }
}
