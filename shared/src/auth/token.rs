//! [`TokenProvider`]: a JWT provider made of a [`Verifier`] and the provider's rule for
//! turning claims into a user profile. Every provider except `none` is one of these.

use std::{sync::Arc, time::Duration};

use serde_json::{Map, Value};

use super::{
    jwks::{Jwks, JwksSource},
    options::{OptionResult, Options},
    verifier::{Keys, Verified, Verifier},
    AuthError, AuthProvider, Principal,
};

/// The profile fields a provider reads from the claims (`sub` is always the subject).
#[derive(Default)]
pub struct Profile {
    pub email: Option<String>,
    pub display_name: Option<String>,
    pub avatar_url: Option<String>,
}

/// Everything a provider needs to build itself.
pub struct BuildContext<'a> {
    pub options: Options<'a>,
    pub leeway_seconds: i64,
    /// `BOARDS_JWT_SECRET`.
    pub jwt_secret: Option<&'a str>,
    pub client: reqwest::Client,
    pub logger: slog::Logger,
}

impl BuildContext<'_> {
    /// A JWKS cache with the common options (`jwks_cache_seconds`, `jwks_min_refresh_seconds`).
    pub fn jwks(&self, source: JwksSource, bearer: Option<String>) -> OptionResult<Keys> {
        let o = &self.options;
        let ttl = o.seconds("jwks_cache_seconds", 600, 1, 86_400)?;
        let min_refresh = o.seconds("jwks_min_refresh_seconds", 30, 1, 3_600)?;
        Ok(Keys::Jwks(Arc::new(Jwks::new(
            source,
            self.client.clone(),
            bearer,
            Duration::from_secs(ttl),
            Duration::from_secs(min_refresh),
            self.logger.clone(),
        ))))
    }
}

pub struct TokenProvider {
    pub name: &'static str,
    pub verifier: Verifier,
    pub profile: fn(&Map<String, Value>) -> Profile,
}

impl TokenProvider {
    /// Verifies `token` and returns its principal and expiry (unix seconds).
    pub async fn verify_with_expiry(
        &self,
        token: &str,
    ) -> Result<(Principal, Option<i64>), AuthError> {
        let Verified { claims, expires_at } = self.verifier.verify(token).await?;
        let subject = text(&claims, "sub")
            .ok_or_else(|| AuthError::Unauthenticated("Missing 'sub' claim in token".into()))?;
        let profile = (self.profile)(&claims);
        Ok((
            Principal {
                provider: self.name.to_string(),
                subject,
                email: profile.email,
                display_name: profile.display_name,
                avatar_url: profile.avatar_url,
                claims: Value::Object(claims),
            },
            expires_at,
        ))
    }

    /// The key set's fetch count (tests), if keys come from a JWKS.
    pub fn jwks(&self) -> Option<&Jwks> {
        match &self.verifier.keys {
            Keys::Jwks(j) => Some(j),
            Keys::Shared(_) => None,
        }
    }
}

#[async_trait::async_trait]
impl AuthProvider for TokenProvider {
    fn name(&self) -> &'static str {
        self.name
    }

    async fn verify(&self, token: &str) -> Result<Principal, AuthError> {
        Ok(self.verify_with_expiry(token).await?.0)
    }

    async fn verify_until(&self, token: &str) -> Result<(Principal, Option<i64>), AuthError> {
        self.verify_with_expiry(token).await
    }
}

/// A non-empty string claim.
pub fn text(claims: &Map<String, Value>, key: &str) -> Option<String> {
    claims
        .get(key)
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

/// `first last` from two optional name claims.
pub fn full_name(claims: &Map<String, Value>, first: &str, last: &str) -> Option<String> {
    let parts: Vec<String> = [text(claims, first), text(claims, last)]
        .into_iter()
        .flatten()
        .collect();
    (!parts.is_empty()).then(|| parts.join(" "))
}

/// The OpenID Connect standard claims: `email`; `name`, else `given_name family_name`, else
/// `fallback_name` (Auth0's `nickname`, OIDC's `preferred_username`); `picture`.
pub fn standard_profile(claims: &Map<String, Value>, fallback_name: &str) -> Profile {
    Profile {
        email: text(claims, "email"),
        display_name: text(claims, "name")
            .or_else(|| full_name(claims, "given_name", "family_name"))
            .or_else(|| text(claims, fallback_name)),
        avatar_url: text(claims, "picture"),
    }
}
