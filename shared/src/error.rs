//! Domain errors of the shared library (`thiserror`); binaries wrap them with `anyhow` context.
//!
//! Every variant carries the message a client may see and maps to one stable `code`, used as
//! GraphQL `extensions.code` and, on REST, to pick the HTTP status. `Internal` keeps its cause
//! for the log only: clients get an opaque message.

use std::fmt;

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("{0}")]
    Unauthenticated(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    BadInput(String),
    #[error("{0}")]
    Conflict(String),
    /// A request body or path that does not have the expected shape (REST 422).
    #[error("{0}")]
    Unprocessable(String),
    /// A body over its size limit (REST 413).
    #[error("{0}")]
    TooLarge(String),
    /// A feature this server does not offer (yet).
    #[error("{0}")]
    NotImplemented(String),
    /// A rate limit refused the request (REST 429 with `Retry-After`; GraphQL
    /// `extensions.retryAfter`).
    #[error("{message}")]
    RateLimited { message: String, retry_after: u64 },
    /// A dependency is down; the cause is for the log.
    #[error("{0}")]
    Unavailable(String, #[source] Option<anyhow::Error>),
    #[error("Internal server error")]
    Internal(#[source] anyhow::Error),
}

pub type AppResult<T> = Result<T, AppError>;

impl AppError {
    /// Stable machine-readable code (GraphQL `extensions.code`).
    pub fn code(&self) -> &'static str {
        match self {
            Self::Unauthenticated(_) => "UNAUTHENTICATED",
            Self::Forbidden(_) => "FORBIDDEN",
            Self::NotFound(_) => "NOT_FOUND",
            Self::BadInput(_) => "BAD_USER_INPUT",
            Self::Conflict(_) => "CONFLICT",
            Self::Unprocessable(_) => "BAD_USER_INPUT",
            Self::TooLarge(_) => "PAYLOAD_TOO_LARGE",
            Self::NotImplemented(_) => "NOT_IMPLEMENTED",
            Self::RateLimited { .. } => "RATE_LIMITED",
            Self::Unavailable(..) => "SERVICE_UNAVAILABLE",
            Self::Internal(_) => "INTERNAL_SERVER_ERROR",
        }
    }

    /// HTTP status for REST responses.
    pub fn http_status(&self) -> u16 {
        match self {
            Self::Unauthenticated(_) => 401,
            Self::Forbidden(_) => 403,
            Self::NotFound(_) => 404,
            Self::BadInput(_) => 400,
            Self::Conflict(_) => 409,
            Self::Unprocessable(_) => 422,
            Self::TooLarge(_) => 413,
            Self::NotImplemented(_) => 501,
            Self::RateLimited { .. } => 429,
            Self::Unavailable(..) => 503,
            Self::Internal(_) => 500,
        }
    }

    /// Seconds the client should wait before trying again (rate limits).
    pub fn retry_after(&self) -> Option<u64> {
        match self {
            Self::RateLimited { retry_after, .. } => Some(*retry_after),
            _ => None,
        }
    }

    pub fn internal(err: impl Into<anyhow::Error>) -> Self {
        Self::Internal(err.into())
    }

    pub fn forbidden(msg: impl fmt::Display) -> Self {
        Self::Forbidden(msg.to_string())
    }

    pub fn not_found(msg: impl fmt::Display) -> Self {
        Self::NotFound(msg.to_string())
    }

    pub fn bad_input(msg: impl fmt::Display) -> Self {
        Self::BadInput(msg.to_string())
    }

    pub fn unprocessable(msg: impl fmt::Display) -> Self {
        Self::Unprocessable(msg.to_string())
    }

    pub fn conflict(msg: impl fmt::Display) -> Self {
        Self::Conflict(msg.to_string())
    }

    pub fn unauthenticated(msg: impl fmt::Display) -> Self {
        Self::Unauthenticated(msg.to_string())
    }
}

impl From<diesel::result::Error> for AppError {
    fn from(e: diesel::result::Error) -> Self {
        use diesel::result::{DatabaseErrorKind, Error};
        match &e {
            Error::DatabaseError(DatabaseErrorKind::UniqueViolation, _) => {
                Self::Conflict("The record already exists".into())
            }
            Error::DatabaseError(DatabaseErrorKind::ForeignKeyViolation, _) => {
                Self::Conflict("The record is referenced by or refers to a missing record".into())
            }
            Error::DatabaseError(DatabaseErrorKind::CheckViolation, _) => {
                Self::BadInput("A value is outside its allowed range".into())
            }
            _ => Self::Internal(e.into()),
        }
    }
}

/// Refused credentials, as the transports answer them (401, 400 for a bad tenant, 503).
impl From<crate::auth::AuthError> for AppError {
    fn from(e: crate::auth::AuthError) -> Self {
        use crate::auth::AuthError;
        match e {
            AuthError::Unauthenticated(m) => Self::Unauthenticated(m),
            AuthError::BadTenant(m) => Self::BadInput(m),
            AuthError::Forbidden(m) => Self::Forbidden(m),
            AuthError::Unavailable(m) => Self::Unavailable(m, None),
        }
    }
}

impl From<crate::db::PoolError> for AppError {
    fn from(e: crate::db::PoolError) -> Self {
        Self::Unavailable("Database unavailable".into(), Some(anyhow::anyhow!("{e}")))
    }
}
