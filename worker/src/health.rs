//! The worker's HTTP port for Kubernetes probes and Prometheus: `/health`, `/ready`, `/metrics`
//! (or `/metrics` alone on `worker.metrics_address`, when it is set).

use std::{net::SocketAddr, sync::Arc};

use actix_web::{
    body::{BoxBody, MessageBody},
    dev::{ServiceRequest, ServiceResponse},
    middleware::{from_fn, Condition, Next},
    web, App, HttpResponse, HttpServer,
};
use anyhow::Context as _;
use serde_json::json;

use crate::env::WorkerEnv;

async fn health() -> HttpResponse {
    HttpResponse::Ok().json(json!({"status": "healthy", "version": env!("CARGO_PKG_VERSION")}))
}

async fn ready(env: web::Data<Arc<WorkerEnv>>) -> HttpResponse {
    let (ok, body) = boards_shared::readiness::check(
        &env.pool,
        &env.redis,
        env.broker.probe(boards_shared::readiness::PROBE_TIMEOUT),
        env.storage.as_ref(),
    )
    .await;
    if ok {
        HttpResponse::Ok().json(body)
    } else {
        HttpResponse::ServiceUnavailable().json(body)
    }
}

async fn metrics(env: web::Data<Arc<WorkerEnv>>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4")
        .body(env.metrics.render())
}

/// The listener that alone serves `/metrics`.
#[derive(Clone, Copy)]
struct MetricsAddress(SocketAddr);

/// With a metrics address, `/metrics` is served there only, and nothing else is (404).
async fn split_metrics(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    if let Some(MetricsAddress(address)) = req.app_data::<MetricsAddress>().copied() {
        let on_metrics_listener = req.app_config().local_addr() == address;
        if on_metrics_listener != (req.path() == "/metrics") {
            return Ok(
                req.into_response(HttpResponse::NotFound().json(json!({"detail": "Not Found"})))
            );
        }
    }
    Ok(next.call(req).await?.map_into_boxed_body())
}

/// The bound health server.
pub struct HealthServer {
    pub server: actix_web::dev::Server,
    pub port: u16,
    /// The port of `worker.metrics_address`, when set.
    pub metrics_port: Option<u16>,
}

/// Binds the health port (and the metrics address, when set); run the returned server.
pub fn server(env: Arc<WorkerEnv>) -> anyhow::Result<HealthServer> {
    let listener = std::net::TcpListener::bind((
        env.config.worker.health_host.as_str(),
        env.config.worker.health_port,
    ))?;
    let port = listener.local_addr()?.port();
    let metrics_listener = match env.config.worker.metrics_address.as_str() {
        "" => None,
        address => Some(
            std::net::TcpListener::bind(address)
                .with_context(|| format!("binding the metrics address {address}"))?,
        ),
    };
    let metrics_address = metrics_listener
        .as_ref()
        .map(std::net::TcpListener::local_addr)
        .transpose()?
        .map(MetricsAddress);
    let data = web::Data::new(env);
    let mut server = HttpServer::new(move || {
        let mut app = App::new().app_data(data.clone());
        if let Some(address) = metrics_address {
            app = app.app_data(address);
        }
        app.wrap(Condition::new(
            metrics_address.is_some(),
            from_fn(split_metrics),
        ))
        .route("/health", web::get().to(health))
        .route("/", web::get().to(health))
        .route("/ready", web::get().to(ready))
        .route("/metrics", web::get().to(metrics))
    })
    .workers(1)
    .disable_signals()
    .listen(listener)?;
    if let Some(listener) = metrics_listener {
        server = server.listen(listener)?;
    }
    Ok(HealthServer {
        server: server.run(),
        port,
        metrics_port: metrics_address.map(|MetricsAddress(a)| a.port()),
    })
}
