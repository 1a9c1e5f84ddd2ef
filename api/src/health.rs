//! Liveness (`/health`, no I/O) and readiness (`/ready`, checks dependencies).

use std::time::Duration;

use actix_web::{web, HttpResponse};
use serde_json::json;

use crate::state::AppState;

pub async fn health() -> HttpResponse {
    HttpResponse::Ok().json(json!({"status": "healthy", "version": env!("CARGO_PKG_VERSION")}))
}

/// 200 when PostgreSQL answers; 503 naming each failing dependency otherwise.
pub async fn ready(state: web::Data<AppState>) -> HttpResponse {
    let db =
        tokio::time::timeout(Duration::from_secs(2), boards_shared::db::ping(&state.pool)).await;
    let database = match db {
        Ok(Ok(())) => "ok".to_string(),
        Ok(Err(_)) => "unavailable".to_string(),
        Err(_) => "timeout".to_string(),
    };
    let ok = database == "ok";
    let body = json!({
        "status": if ok { "ready" } else { "unavailable" },
        "checks": {"postgresql": database},
        "failing": if ok { vec![] } else { vec!["postgresql"] },
    });
    if ok {
        HttpResponse::Ok().json(body)
    } else {
        HttpResponse::ServiceUnavailable().json(body)
    }
}
