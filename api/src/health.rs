//! Liveness (`/health`, no I/O) and readiness (`/ready`, checks dependencies).

use std::time::Duration;

use actix_web::{web, HttpResponse};
use serde_json::json;

use crate::state::AppState;

pub async fn health() -> HttpResponse {
    HttpResponse::Ok().json(json!({"status": "healthy", "version": env!("CARGO_PKG_VERSION")}))
}

/// 200 when PostgreSQL, Redis and RabbitMQ answer; 503 naming each failing dependency.
pub async fn ready(state: web::Data<AppState>) -> HttpResponse {
    let (db, redis) = tokio::join!(
        tokio::time::timeout(Duration::from_secs(2), boards_shared::db::ping(&state.pool)),
        tokio::time::timeout(
            Duration::from_secs(2),
            boards_shared::progress::ping(&state.redis)
        ),
    );
    let checks = [
        ("postgresql", matches!(db, Ok(Ok(())))),
        ("redis", matches!(redis, Ok(Ok(())))),
        ("rabbitmq", state.relay.connected()),
    ];
    let failing: Vec<&str> = checks
        .iter()
        .filter(|(_, ok)| !ok)
        .map(|(n, _)| *n)
        .collect();
    let ok = failing.is_empty();
    let body = json!({
        "status": if ok { "ready" } else { "unavailable" },
        "checks": checks
            .iter()
            .map(|(n, ok)| (n.to_string(), json!(if *ok { "ok" } else { "unavailable" })))
            .collect::<serde_json::Map<_, _>>(),
        "failing": failing,
    });
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
