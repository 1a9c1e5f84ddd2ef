//! Resolver errors: [`AppError`] as GraphQL errors with `extensions.code`.
//!
//! The cause of an internal error travels in `extensions.cause` only as far as the transport,
//! which logs it with the request id and strips it before the response is written.

use boards_shared::{auth::AuthError, AppError};
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

/// The GraphQL error for an [`AppError`].
pub fn field_error(err: &AppError) -> FieldError<BoardsScalar> {
    let mut ext = Object::with_capacity(2);
    ext.add_field("code", Value::scalar(err.code().to_string()));
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

/// The code and message for a request whose credentials were refused.
pub fn auth_error_code(err: &AuthError) -> &'static str {
    match err {
        AuthError::Unauthenticated(_) => "UNAUTHENTICATED",
        AuthError::BadTenant(_) => "BAD_USER_INPUT",
        AuthError::Forbidden(_) => "FORBIDDEN",
        AuthError::Unavailable(_) => "SERVICE_UNAVAILABLE",
    }
}
