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
    let values = |name: &str| -> Vec<&str> {
        req.headers()
            .get_all(name)
            .filter_map(|v| v.to_str().ok())
            .collect()
    };
    Some(trusted.client_ip(peer, &values("x-forwarded-for"), &values("forwarded")))
}

/// Resolves the caller from `Authorization` and `X-Tenant`. A request that carries credentials
/// from an address with too many refused credentials is refused (`RATE_LIMITED`) before its
/// token is verified; a refused token counts against its address.
pub async fn authenticate(state: &AppState, req: &HttpRequest) -> Result<AuthContext, AppError> {
    let header = |name: &str| req.headers().get(name).and_then(|v| v.to_str().ok());
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
    match state
        .auth
        .resolve(header("authorization"), header("x-tenant"))
        .await
    {
        Ok(auth) => Ok(auth),
        Err(e) => {
            if let (AuthError::Unauthenticated(_), Some(address)) = (&e, &address) {
                state.limits.record(Limit::AuthFailure, address).await;
            }
            Err(e.into())
        }
    }
}
