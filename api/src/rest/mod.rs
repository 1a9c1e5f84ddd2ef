//! REST endpoints under `/api`: progress streams and stored artifacts.

pub mod files;
pub mod progress;
pub mod storage;
pub mod uploads;

use actix_web::{http::header, HttpRequest, HttpResponse};
use boards_shared::{
    auth::{AuthContext, AuthError},
    AppError,
};
use serde_json::json;

use crate::state::AppState;

/// `{"detail": message}` with the error's status (FastAPI's shape, as the original).
pub fn error_response(err: &AppError) -> HttpResponse {
    let status = actix_web::http::StatusCode::from_u16(err.http_status())
        .unwrap_or(actix_web::http::StatusCode::INTERNAL_SERVER_ERROR);
    let mut res = HttpResponse::build(status);
    if err.http_status() == 401 {
        res.insert_header((header::WWW_AUTHENTICATE, "Bearer"));
    }
    res.json(json!({"detail": err.to_string(), "code": err.code()}))
}

/// Strict resolution: a refused token or an anonymous caller is an error response.
pub async fn current_user(
    state: &AppState,
    req: &HttpRequest,
) -> Result<AuthContext, HttpResponse> {
    let header = |name: &str| req.headers().get(name).and_then(|v| v.to_str().ok());
    let auth = state
        .auth
        .resolve(header("authorization"), header("x-tenant"))
        .await
        .map_err(|e| error_response(&auth_error(e)))?;
    if !auth.is_authenticated() {
        return Err(error_response(&AppError::unauthenticated(
            "Authentication required",
        )));
    }
    Ok(auth)
}

/// The [`AppError`] (status and code) of refused credentials.
pub fn auth_error(e: AuthError) -> AppError {
    match e {
        AuthError::Unauthenticated(m) => AppError::Unauthenticated(m),
        AuthError::BadTenant(m) => AppError::BadInput(m),
        AuthError::Forbidden(m) => AppError::Forbidden(m),
        AuthError::Unavailable(m) => AppError::Unavailable(m, None),
    }
}
