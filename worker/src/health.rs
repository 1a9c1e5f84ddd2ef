//! The worker's HTTP port for Kubernetes probes and Prometheus: `/health`, `/ready`, `/metrics`.

use std::sync::Arc;

use actix_web::{web, App, HttpResponse, HttpServer};
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

/// Binds the health port; returns the server (run it) and the bound port.
pub fn server(env: Arc<WorkerEnv>) -> anyhow::Result<(actix_web::dev::Server, u16)> {
    let listener = std::net::TcpListener::bind((
        env.config.worker.health_host.as_str(),
        env.config.worker.health_port,
    ))?;
    let port = listener.local_addr()?.port();
    let data = web::Data::new(env);
    let server = HttpServer::new(move || {
        App::new()
            .app_data(data.clone())
            .route("/health", web::get().to(health))
            .route("/", web::get().to(health))
            .route("/ready", web::get().to(ready))
            .route("/metrics", web::get().to(metrics))
    })
    .workers(1)
    .disable_signals()
    .listen(listener)?
    .run();
    Ok((server, port))
}
