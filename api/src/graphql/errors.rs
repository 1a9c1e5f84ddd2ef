//! Resolver errors: [`AppError`] as GraphQL errors with `extensions.code`.
//!
//! The cause of an internal error travels in `extensions.cause` only as far as the transport,
//! which logs it with the request id and strips it before the response is written.

use boards_shared::AppError;
use juniper::{FieldError, IntoFieldError, Object, Value};

use super::scalars::BoardsScalar;

/// Key under which internal causes reach the transport (never sent to clients).
pub const CAUSE_KEY: &str = "cause";

#[derive(Debug)]
pub struct GqlError(pub AppError);

pub type GqlResult<T> = Result<T, GqlError>;

impl<E: Into<AppError>> From<E> for GqlError {
    fn from(e: E) -> Self {
        Self(e.into())
    }
}

impl GqlError {
    pub fn unauthenticated(what: &str) -> Self {
        Self(AppError::unauthenticated(format!(
            "Authentication required to {what}"
        )))
    }
}

/// Key of the seconds to wait in a `RATE_LIMITED` error's extensions.
pub const RETRY_AFTER_KEY: &str = "retryAfter";

/// The GraphQL error for an [`AppError`].
pub fn field_error(err: &AppError) -> FieldError<BoardsScalar> {
    let mut ext = Object::with_capacity(2);
    ext.add_field("code", Value::scalar(err.code().to_string()));
    if let Some(seconds) = err.retry_after() {
        let seconds = i32::try_from(seconds).unwrap_or(i32::MAX);
        ext.add_field(RETRY_AFTER_KEY, Value::scalar(seconds));
    }
    match err {
        AppError::Internal(cause) => {
            ext.add_field(CAUSE_KEY, Value::scalar(format!("{cause:#}")));
        }
        AppError::Unavailable(_, Some(cause)) => {
            ext.add_field(CAUSE_KEY, Value::scalar(format!("{cause:#}")));
        }
        _ => {}
    }
    FieldError::new(err.to_string(), Value::Object(ext))
}

impl IntoFieldError<BoardsScalar> for GqlError {
    fn into_field_error(self) -> FieldError<BoardsScalar> {
        field_error(&self.0)
    }
}

/// The `errors` entry of a request refused before execution (credentials, rate limits), as
/// JSON: the message and the same extensions as [`field_error`] (never an internal cause).
pub fn request_refusal(err: &AppError) -> serde_json::Value {
    let mut ext = serde_json::json!({ "code": err.code() });
    if let Some(seconds) = err.retry_after() {
        ext[RETRY_AFTER_KEY] = seconds.into();
    }
    serde_json::json!({ "message": err.to_string(), "extensions": ext })
}
