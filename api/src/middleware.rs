//! Request ids, one access-log line per request, the multi-tenant header rules, and the
//! deadline of request bodies.

use std::{
    pin::Pin,
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
    task::{Context, Poll},
    time::{Duration, Instant},
};

use actix_web::{
    body::MessageBody,
    dev::{Payload, ServiceRequest, ServiceResponse},
    error::PayloadError,
    http::header::{HeaderName, HeaderValue},
    middleware::Next,
    web, HttpMessage, HttpResponse,
};
use boards_shared::{
    telemetry::{FinishedSpan, KeyValue, SpanKind},
    trace::{self, TraceContext},
};
use bytes::Bytes;
use futures::{Future as _, Stream};
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

/// The request's span: a child of the caller's `traceparent`, or the root of a new trace.
#[derive(Clone, Copy, Debug)]
pub struct RequestTrace(pub TraceContext);

/// Assigns the request id and the request's span, and writes the access log line (method,
/// path, status, duration, request and trace ids).
pub async fn access_log(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let started = Instant::now();
    let id = incoming_id(&req).unwrap_or_else(|| uuid::Uuid::new_v4().simple().to_string());
    req.extensions_mut().insert(RequestId(id.clone()));
    let parent = req
        .headers()
        .get("traceparent")
        .and_then(|v| v.to_str().ok())
        .and_then(TraceContext::parse);
    let trace = parent.map_or_else(TraceContext::root, |p| p.child());
    let started_at = std::time::SystemTime::now();
    req.extensions_mut().insert(RequestTrace(trace));
    let method = req.method().to_string();
    let path = req.path().to_string();
    let route = req.match_pattern().unwrap_or_else(|| path.clone());
    let state = req.app_data::<web::Data<AppState>>().cloned();
    // Handlers run in the request's span: what they write names it (a webhook delivery's
    // trace, `boards_shared::db::set_transaction_trace`).
    let mut res = trace::scope(trace, next.call(req)).await?;
    if let Ok(value) = HeaderValue::from_str(&id) {
        res.headers_mut().insert(REQUEST_ID, value);
    }
    if let Some(state) = state {
        let logger = &state.logger;
        let status = res.status().as_u16();
        state.telemetry.record(FinishedSpan {
            name: format!("{method} {route}").into(),
            kind: SpanKind::Server,
            trace,
            parent,
            start: started_at,
            end: std::time::SystemTime::now(),
            attributes: vec![
                KeyValue::new("http.request.method", method.clone()),
                KeyValue::new("http.route", route),
                KeyValue::new("http.response.status_code", i64::from(status)),
                KeyValue::new("request_id", id.clone()),
            ],
            error: (status >= 500).then(|| format!("HTTP {status}")),
        });
        let duration_ms = started.elapsed().as_secs_f64() * 1000.0;
        info!(logger, "request";
            "method" => method, "path" => path, "status" => status,
            "duration_ms" => format!("{duration_ms:.2}"), "request_id" => id,
            "trace_id" => trace.trace_id_hex());
    }
    Ok(res)
}

/// Paths that need no `X-Tenant` in multi-tenant mode: everything outside `/graphql` and
/// `/api/`, the setup endpoints (contract §3.10) and member administration, whose tenant is in
/// the path.
fn tenant_exempt(path: &str) -> bool {
    let members = path
        .strip_prefix("/api/tenants/")
        .is_some_and(|rest| rest.split('/').nth(1) == Some("members"));
    !(path.starts_with("/graphql") || path.starts_with("/api/"))
        || path.starts_with("/api/setup/")
        || members
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

/// With `api.metrics_address` set, `/metrics` is served on that listener only, and that
/// listener serves nothing else (404 either way, like an unknown route).
pub async fn metrics_listener(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<actix_web::body::BoxBody>, actix_web::Error> {
    let address = req
        .app_data::<web::Data<AppState>>()
        .and_then(|s| s.metrics_address);
    if let Some(address) = address {
        let on_metrics_listener = req.app_config().local_addr() == address;
        if on_metrics_listener != (req.path() == "/metrics") {
            return Ok(
                req.into_response(HttpResponse::NotFound().json(json!({"detail": "Not Found"})))
            );
        }
    }
    Ok(next.call(req).await?.map_into_boxed_body())
}

/// A request body that must end before a deadline; past it, the stream fails (once) and
/// records that it expired.
struct Deadline {
    inner: Payload,
    sleep: Pin<Box<tokio::time::Sleep>>,
    expired: Arc<AtomicBool>,
    done: bool,
}

impl Stream for Deadline {
    type Item = Result<Bytes, PayloadError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.done {
            return Poll::Ready(None);
        }
        if self.sleep.as_mut().poll(cx).is_ready() {
            self.done = true;
            self.expired.store(true, Ordering::Relaxed);
            return Poll::Ready(Some(Err(PayloadError::Io(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "request body timed out",
            )))));
        }
        let polled = Pin::new(&mut self.inner).poll_next(cx);
        if matches!(polled, Poll::Ready(None)) {
            self.done = true;
        }
        polled
    }
}

/// The whole request body must arrive within `api.body_timeout_seconds` of the request head
/// (actix bounds only the head). A body that stalls fails its handler's read; the answer is
/// then replaced by `408` and the connection is closed, whatever the handler made of the error.
pub async fn body_deadline(
    mut req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<actix_web::body::BoxBody>, actix_web::Error> {
    // Uploads stream large bodies: they get their own, longer deadline.
    let upload = req.path() == "/api/uploads/artifact";
    let timeout = req.app_data::<web::Data<AppState>>().map(|s| {
        Duration::from_secs(if upload {
            s.config.uploads.timeout_seconds
        } else {
            s.config.api.body_timeout_seconds
        })
    });
    let payload = req.take_payload();
    let Some(timeout) = timeout.filter(|_| !matches!(payload, Payload::None)) else {
        req.set_payload(payload);
        return Ok(next.call(req).await?.map_into_boxed_body());
    };
    let expired = Arc::new(AtomicBool::new(false));
    req.set_payload(Payload::Stream {
        payload: Box::pin(Deadline {
            inner: payload,
            sleep: Box::pin(tokio::time::sleep(timeout)),
            expired: expired.clone(),
            done: false,
        }),
    });
    let result = next.call(req).await;
    if !expired.load(Ordering::Relaxed) {
        return Ok(result?.map_into_boxed_body());
    }
    let response = HttpResponse::RequestTimeout()
        .force_close()
        .json(json!({"detail": "Request body timed out", "code": "REQUEST_TIMEOUT"}));
    match result {
        Ok(res) => Ok(res.into_response(response)),
        Err(e) => Err(actix_web::error::InternalError::from_response(e, response).into()),
    }
}
