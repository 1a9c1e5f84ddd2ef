//! Liveness (`/health`, no I/O) and readiness (`/ready`, checks dependencies).

use actix_web::{web, HttpResponse};
use serde_json::json;

use crate::state::AppState;

pub async fn health() -> HttpResponse {
    HttpResponse::Ok().json(json!({"status": "healthy", "version": env!("CARGO_PKG_VERSION")}))
}

/// 200 when PostgreSQL, Redis and RabbitMQ answer; 503 naming each failing dependency.
pub async fn ready(state: web::Data<AppState>) -> HttpResponse {
    let (ok, body) = boards_shared::readiness::check(
        &state.pool,
        &state.redis,
        state.relay.probe(boards_shared::readiness::PROBE_TIMEOUT),
        state.storage.as_ref(),
    )
    .await;
    if ok {
        HttpResponse::Ok().json(body)
    } else {
        HttpResponse::ServiceUnavailable().json(body)
    }
}

/// Prometheus metrics of this process.
pub async fn metrics(state: web::Data<AppState>) -> HttpResponse {
    if let Ok(mut conn) = state.pool.get().await {
        if let Ok(n) = boards_shared::db::models::outbox::count(&mut conn).await {
            state.metrics.outbox_backlog.set(n);
        }
    }
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4")
        .body(state.metrics.render())
}
