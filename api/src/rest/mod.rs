//! REST endpoints under `/api`: progress streams and stored artifacts.

pub mod files;
pub mod progress;
pub mod storage;
pub mod uploads;

use actix_web::{http::header, HttpRequest, HttpResponse};
use boards_shared::{auth::AuthContext, AppError};
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
