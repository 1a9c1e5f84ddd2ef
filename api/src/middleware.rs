//! Request ids, one access-log line per request, and the multi-tenant header rules.

use std::time::Instant;

use actix_web::{
    body::MessageBody,
    dev::{ServiceRequest, ServiceResponse},
    http::header::{HeaderName, HeaderValue},
    middleware::Next,
    web, HttpMessage, HttpResponse,
};
use serde_json::json;
use slog::info;

use crate::state::AppState;

/// The id of the current request (from `X-Request-Id` when sane, else generated).
#[derive(Clone, Debug)]
pub struct RequestId(pub String);

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

fn incoming_id(req: &ServiceRequest) -> Option<String> {
    let v = req.headers().get(&REQUEST_ID)?.to_str().ok()?;
    let ok = !v.is_empty()
        && v.len() <= 64
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b));
    ok.then(|| v.to_string())
}

/// Assigns the request id and writes the access log line (method, path, status, duration).
pub async fn access_log(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let started = Instant::now();
    let id = incoming_id(&req).unwrap_or_else(|| uuid::Uuid::new_v4().simple().to_string());
    req.extensions_mut().insert(RequestId(id.clone()));
    let method = req.method().to_string();
    let path = req.path().to_string();
    let logger = req
        .app_data::<web::Data<AppState>>()
        .map(|s| s.logger.clone());
    let mut res = next.call(req).await?;
    if let Ok(value) = HeaderValue::from_str(&id) {
        res.headers_mut().insert(REQUEST_ID, value);
    }
    if let Some(logger) = logger {
        let status = res.status().as_u16();
        let duration_ms = started.elapsed().as_secs_f64() * 1000.0;
        info!(logger, "request";
            "method" => method, "path" => path, "status" => status,
            "duration_ms" => format!("{duration_ms:.2}"), "request_id" => id);
    }
    Ok(res)
}

fn tenant_exempt(path: &str) -> bool {
    !(path.starts_with("/graphql") || path.starts_with("/api/")) || path.starts_with("/api/setup/")
}

/// In multi-tenant mode, `/graphql` and `/api/*` need an `X-Tenant` header (contract §3.10);
/// in debug mode responses say which tenant the header selected.
pub async fn tenant_header(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<actix_web::body::BoxBody>, actix_web::Error> {
    let Some(state) = req.app_data::<web::Data<AppState>>().cloned() else {
        return Ok(next.call(req).await?.map_into_boxed_body());
    };
    let tenancy = &state.config.tenancy;
    let header = req
        .headers()
        .get("x-tenant")
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(str::to_string);
    if tenancy.multi_tenant_mode && req.method() != actix_web::http::Method::OPTIONS {
        if let Some(h) = &header {
            if !boards_shared::config::valid_slug(h) {
                let body = json!({
                    "error": "Invalid X-Tenant header format",
                    "detail": "X-Tenant must match ^[a-z0-9-]+$, be at most 255 characters and not start or end with '-'",
                    "provided_tenant": h,
                });
                return Ok(req.into_response(HttpResponse::BadRequest().json(body)));
            }
        } else if !tenant_exempt(req.path()) {
            let body = json!({
                "error": "Missing X-Tenant header",
                "detail": "X-Tenant header is required in multi-tenant mode for this endpoint",
                "multi_tenant_mode": true,
            });
            return Ok(req.into_response(HttpResponse::BadRequest().json(body)));
        }
    }
    let debug = state.config.debug;
    let resolved = header.unwrap_or_else(|| tenancy.default_tenant_slug.clone());
    let multi = tenancy.multi_tenant_mode;
    let mut res = next.call(req).await?.map_into_boxed_body();
    if debug {
        if let Ok(v) = HeaderValue::from_str(&resolved) {
            res.headers_mut()
                .insert(HeaderName::from_static("x-tenant-resolved"), v);
        }
        if multi {
            res.headers_mut().insert(
                HeaderName::from_static("x-multi-tenant-mode"),
                HeaderValue::from_static("true"),
            );
        }
    }
    Ok(res)
}
