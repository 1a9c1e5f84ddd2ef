//! The caller of a request: its address (behind trusted proxies) and its identity, resolved
//! once per request with the failed-authentication limit in front of token verification.

use std::net::IpAddr;

use actix_web::HttpRequest;
use boards_shared::{
    auth::{AuthContext, AuthError},
    ratelimit::{ip_bucket, Limit, TrustedProxies},
    AppError,
};

use crate::state::AppState;

/// The client's address: the peer, or what trusted proxies say the client was. `None` when the
/// connection has no IP peer.
pub fn client_ip(req: &HttpRequest, trusted: &TrustedProxies) -> Option<IpAddr> {
    let peer = req.peer_addr()?.ip();
    // Every header line counts, readable or not: dropping a line with a non-ASCII byte would
    // drop the address a proxy appended to it and let the client's own header speak instead.
    // Unreadable bytes become U+FFFD, which is no address and ends the walk there.
    let values = |name: &str| -> Vec<String> {
        req.headers()
            .get_all(name)
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
            .collect()
    };
    let (forwarded_for, forwarded) = (values("x-forwarded-for"), values("forwarded"));
    fn refs(v: &[String]) -> Vec<&str> {
        v.iter().map(String::as_str).collect()
    }
    Some(trusted.client_ip(peer, &refs(&forwarded_for), &refs(&forwarded)))
}

/// Resolves the caller from `Authorization` and `X-Tenant`, behind the failed-authentication
/// limit ([`guarded`]).
pub async fn authenticate(state: &AppState, req: &HttpRequest) -> Result<AuthContext, AppError> {
    let header = |name: &str| req.headers().get(name).and_then(|v| v.to_str().ok());
    guarded(
        state,
        req,
        state
            .auth
            .resolve(header("authorization"), header("x-tenant")),
    )
    .await
}

/// Runs `verify` (any check of the request's credentials) behind the failed-authentication
/// limit: a request that carries credentials from an address with too many refused ones is
/// refused (`RATE_LIMITED`) before they are verified, and a refusal counts against its address.
pub async fn guarded<T>(
    state: &AppState,
    req: &HttpRequest,
    verify: impl std::future::Future<Output = Result<T, AuthError>>,
) -> Result<T, AppError> {
    let carries_credentials = req
        .headers()
        .get("authorization")
        .is_some_and(|v| !v.is_empty());
    // Anonymous requests cannot fail authentication: only those with credentials are limited.
    let address = if carries_credentials && state.limits.is_enabled() {
        client_ip(req, &state.config.api.trusted_proxies).map(ip_bucket)
    } else {
        None
    };
    if let Some(address) = &address {
        state.limits.guard(Limit::AuthFailure, address).await?;
    }
    match verify.await {
        Ok(verified) => Ok(verified),
        Err(e) => {
            if let (AuthError::Unauthenticated(_), Some(address)) = (&e, &address) {
                state.limits.record(Limit::AuthFailure, address).await;
            }
            Err(e.into())
        }
    }
}
