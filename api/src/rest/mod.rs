//! REST endpoints under `/api`: progress streams, stored artifacts, uploads, jobs, and tenant
//! administration.

pub mod board_feed;
pub(crate) mod feed;
pub mod files;
pub mod jobs;
pub mod progress;
pub mod setup;
pub mod storage;
pub mod tenants;
pub mod uploads;

use actix_web::{http::header, HttpMessage as _, HttpRequest, HttpResponse};
use boards_shared::{
    auth::{AuthContext, Caller},
    db::PgConn,
    AppError, AppResult,
};
use serde_json::json;

use crate::state::AppState;

/// `{"detail": message}` with the error's status (FastAPI's shape, as the original); a rate
/// limit adds `Retry-After` and `retry_after` (seconds).
pub fn error_response(err: &AppError) -> HttpResponse {
    let status = actix_web::http::StatusCode::from_u16(err.http_status())
        .unwrap_or(actix_web::http::StatusCode::INTERNAL_SERVER_ERROR);
    let mut res = HttpResponse::build(status);
    if err.http_status() == 401 {
        res.insert_header((header::WWW_AUTHENTICATE, "Bearer"));
    }
    let mut body = json!({"detail": err.to_string(), "code": err.code()});
    if let Some(seconds) = err.retry_after() {
        res.insert_header((header::RETRY_AFTER, seconds));
        body["retry_after"] = seconds.into();
    }
    res.json(body)
}

/// [`error_response`] for a failed handler, logging an internal cause once (it never reaches
/// the client).
pub fn failure(state: &AppState, req: &HttpRequest, err: &AppError) -> HttpResponse {
    let cause = match err {
        AppError::Internal(cause) | AppError::Unavailable(_, Some(cause)) => Some(cause),
        _ => None,
    };
    if let Some(cause) = cause {
        let request_id = req
            .extensions()
            .get::<crate::middleware::RequestId>()
            .map(|r| r.0.clone())
            .unwrap_or_default();
        slog::error!(state.logger, "request failed";
            "path" => req.path(), "error" => format!("{cause:#}"), "request_id" => request_id);
    }
    error_response(err)
}

/// Strict resolution: a refused token or an anonymous caller is an error response.
pub async fn current_user(
    state: &AppState,
    req: &HttpRequest,
) -> Result<AuthContext, HttpResponse> {
    let auth = crate::caller::authenticate(state, req)
        .await
        .map_err(|e| error_response(&e))?;
    if !auth.is_authenticated() {
        return Err(error_response(&AppError::unauthenticated(
            "Authentication required",
        )));
    }
    Ok(auth)
}

/// The caller of an administration endpoint: the operator (admin token) or a verified
/// identity; no credentials, or bad ones, are 401 (and count as failed authentications).
pub async fn admin_caller(state: &AppState, req: &HttpRequest) -> Result<Caller, HttpResponse> {
    let authorization = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    crate::caller::guarded(state, req, state.auth.admin_caller(authorization))
        .await
        .map_err(|e| error_response(&e))
}

/// Runs `op` for an administration caller; every failure is a JSON error response.
pub async fn as_admin<F>(state: &AppState, req: &HttpRequest, op: F) -> HttpResponse
where
    F: AsyncFnOnce(&mut PgConn<'_>, Caller) -> AppResult<HttpResponse>,
{
    let caller = match admin_caller(state, req).await {
        Ok(c) => c,
        Err(res) => return res,
    };
    let result = async {
        let mut conn = state.pool.get().await?;
        op(&mut conn, caller).await
    }
    .await;
    result.unwrap_or_else(|e| failure(state, req, &e))
}

/// `{}`: the serde default of optional JSON-object fields of request bodies.
pub fn empty_object() -> serde_json::Value {
    json!({})
}

/// A path id that must be a UUID (422 otherwise, as the original's path validation).
pub fn path_uuid(value: &str, name: &str) -> Result<uuid::Uuid, AppError> {
    uuid::Uuid::parse_str(value).map_err(|_| {
        AppError::unprocessable(format!(
            "{name} must be a UUID (got '{}')",
            value.chars().take(64).collect::<String>()
        ))
    })
}

/// A JSON body of type `T`; a body that is not JSON or lacks required fields is 422 with
/// serde's description of what is wrong.
pub fn json_body<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, AppError> {
    serde_json::from_slice(body)
        .map_err(|e| AppError::unprocessable(format!("Invalid request body: {e}")))
}
