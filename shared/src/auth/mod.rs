//! Identity: token verification through an [`AuthProvider`], tenant resolution and
//! just-in-time user provisioning, resolved once per request into an [`AuthContext`].

mod admin;
mod context;
mod jwt;
mod none;
pub mod tenant;

use std::sync::Arc;

use serde_json::Value;

pub use admin::{AdminToken, Caller};
pub use context::{AuthContext, AuthService};
pub use jwt::JwtProvider;
pub use none::NoneProvider;

use crate::config::Config;

/// Who a verified token says the caller is.
#[derive(Clone, Debug, PartialEq)]
pub struct Principal {
    pub provider: String,
    pub subject: String,
    pub email: Option<String>,
    pub display_name: Option<String>,
    pub avatar_url: Option<String>,
    /// Every claim of the token (a JSON object), used for tenant resolution and provisioning.
    pub claims: Value,
}

/// Why a request's credentials were refused. The message is safe to show to the client.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// 401: the credentials are missing, malformed or invalid.
    #[error("{0}")]
    Unauthenticated(String),
    /// 400: the request names a tenant that does not exist or is malformed.
    #[error("{0}")]
    BadTenant(String),
    /// 403: the caller is known but may not act here (another tenant, a tenant pending
    /// approval).
    #[error("{0}")]
    Forbidden(String),
    /// 503: identity could not be resolved because a dependency is down.
    #[error("{0}")]
    Unavailable(String),
}

/// A token verifier. Adapters are built once at startup and shared by every request.
#[async_trait::async_trait]
pub trait AuthProvider: Send + Sync {
    /// The provider name stored in `users.auth_provider`.
    fn name(&self) -> &'static str;

    /// Whether a request without `Authorization` acts as a fixed development user.
    fn implicit_token(&self) -> Option<&'static str> {
        None
    }

    /// Verifies a bearer token (never empty) and returns its principal.
    async fn verify(&self, token: &str) -> Result<Principal, AuthError>;
}

/// Builds the provider named by the configuration (validated at load time).
pub fn build_provider(config: &Config) -> anyhow::Result<Arc<dyn AuthProvider>> {
    match config.auth.provider.as_str() {
        "none" => Ok(Arc::new(NoneProvider::from_config(&config.auth.config))),
        "jwt" => Ok(Arc::new(JwtProvider::from_config(&config.auth)?)),
        other => anyhow::bail!("auth provider `{other}` is not supported"),
    }
}
