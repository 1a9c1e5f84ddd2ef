//! Identity: token verification through an [`AuthProvider`], tenant resolution and
//! just-in-time user provisioning, resolved once per request into an [`AuthContext`].

mod admin;
mod auth0;
mod cache;
mod clerk;
mod context;
mod jwks;
mod jwt;
mod none;
mod oidc;
pub mod options;
mod supabase;
pub mod tenant;
mod token;
mod verifier;

use std::sync::Arc;

use serde_json::Value;

pub use admin::{AdminToken, Caller};
pub use cache::CachedProvider;
pub use context::{AuthContext, AuthService};
pub use jwks::Jwks;
pub use jwt::JwtProvider;
pub use none::NoneProvider;
pub use token::TokenProvider;

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

    /// [`verify`](Self::verify), with the token's expiry (unix seconds) when it has one, so
    /// that the verification can be cached until then.
    async fn verify_until(&self, token: &str) -> Result<(Principal, Option<i64>), AuthError> {
        Ok((self.verify(token).await?, None))
    }
}

/// The providers `BOARDS_AUTH_PROVIDER` can name.
pub const PROVIDERS: &[&str] = &["none", "jwt", "supabase", "clerk", "auth0", "oidc"];

/// Environment variables (besides `BOARDS_*`) that providers read as fallbacks for their
/// `BOARDS_AUTH_CONFIG` options, as the original did. The configuration loader keeps these.
pub const PROVIDER_ENV: &[&str] = &[
    "ENVIRONMENT",
    "BOARDS_SUPABASE_URL",
    "SUPABASE_URL",
    "BOARDS_SUPABASE_JWT_SECRET",
    "SUPABASE_JWT_SECRET",
    "CLERK_ISSUER",
    "CLERK_JWKS_URL",
    "CLERK_SECRET_KEY",
    "CLERK_AUTHORIZED_PARTIES",
    "AUTH0_DOMAIN",
    "AUTH0_AUDIENCE",
    "OIDC_ISSUER",
    "OIDC_CLIENT_ID",
    "OIDC_AUDIENCE",
    "OIDC_JWKS_URL",
];

/// Memory for remembered verifications (per API process): about 30,000 typical 1 KiB tokens,
/// or 1,300 tokens at the 8 KiB size cap.
const VERIFIED_TOKEN_CACHE_BYTES: u64 = 32 << 20;

/// Builds the provider `auth.provider` names, once at startup. Building checks every option but
/// makes no network call: keys are fetched on first use.
pub fn build_provider(
    config: &Config,
    logger: &slog::Logger,
) -> Result<Arc<dyn AuthProvider>, options::OptionError> {
    let auth = &config.auth;
    let name = auth.provider.as_str();
    let provider_name = PROVIDERS
        .iter()
        .copied()
        .find(|p| *p == name)
        .ok_or_else(|| {
            options::error_at(
                "auth.provider",
                format!(
                    "unknown provider `{name}` (expected one of {})",
                    PROVIDERS.join(", ")
                ),
            )
        })?;
    if !auth.config.is_object() {
        return Err(options::error_at("auth.config", "must be a JSON object"));
    }
    let ctx = token::BuildContext {
        options: options::Options {
            provider: provider_name,
            json: &auth.config,
            env: &auth.env,
        },
        leeway_seconds: auth.leeway_seconds,
        jwt_secret: auth.jwt_secret.as_ref().map(|s| s.expose()),
        client: http_client()?,
        logger: logger.new(slog::o!("component" => "auth", "provider" => provider_name)),
    };
    let provider: Arc<dyn AuthProvider> = match provider_name {
        "none" => {
            return Ok(Arc::new(NoneProvider::build(
                &ctx.options,
                &config.environment,
            )?))
        }
        "jwt" => Arc::new(jwt::build(&ctx)?),
        "supabase" => Arc::new(supabase::build(&ctx)?),
        "clerk" => Arc::new(clerk::build(&ctx)?),
        "auth0" => Arc::new(auth0::build(&ctx)?),
        "oidc" => Arc::new(oidc::build(&ctx)?),
        _ => unreachable!("PROVIDERS lists every provider built here"),
    };
    Ok(Arc::new(CachedProvider::new(
        provider,
        VERIFIED_TOKEN_CACHE_BYTES,
    )))
}

/// The client that fetches discovery documents and key sets: short timeouts, no redirects to
/// other hosts' keys. Failing to build it (no TLS backend) fails startup rather than falling
/// back to a client without those limits.
fn http_client() -> Result<reqwest::Client, options::OptionError> {
    reqwest::Client::builder()
        .connect_timeout(std::time::Duration::from_secs(3))
        .timeout(std::time::Duration::from_secs(5))
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("boards-rs/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| {
            options::error_at(
                "auth",
                format!("cannot build the HTTP client for key sets: {e}"),
            )
        })
}
