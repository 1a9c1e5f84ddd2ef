//! The `jwt` provider: HS256 tokens verified with biscuit; `iss`, `aud`, `exp`, `nbf` checked.
//! `exp` is required unless `BOARDS_AUTH_CONFIG` says `{"require_exp": false}`: a token that
//! never expires cannot be revoked.

use biscuit::{
    jwa::SignatureAlgorithm, jws::Secret, ClaimPresenceOptions, Empty, Presence, TemporalOptions,
    Validation, ValidationOptions, JWT,
};
use serde_json::{Map, Value};

use super::{AuthError, AuthProvider, Principal};
use crate::config::AuthConfig;

pub struct JwtProvider {
    secret: Secret,
    issuer: String,
    audience: String,
    leeway: chrono::Duration,
    require_exp: bool,
}

impl JwtProvider {
    pub fn from_config(auth: &AuthConfig) -> anyhow::Result<Self> {
        let options = &auth.config;
        let get = |key: &str| {
            options
                .get(key)
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
        };
        let algorithm = get("algorithm").unwrap_or("HS256");
        anyhow::ensure!(
            algorithm == "HS256",
            "jwt provider: algorithm `{algorithm}` is not supported (HS256 only)"
        );
        let require_exp = match options.get("require_exp") {
            None | Some(Value::Null) => true,
            Some(Value::Bool(b)) => *b,
            Some(other) => {
                anyhow::bail!("jwt provider: `require_exp` must be true or false, not {other}")
            }
        };
        let secret = get("secret_key")
            .map(str::to_string)
            .or_else(|| auth.jwt_secret.as_ref().map(|s| s.expose().to_string()))
            .filter(|s| !s.is_empty())
            .ok_or_else(|| anyhow::anyhow!("jwt provider: no secret configured"))?;
        Ok(Self {
            secret: Secret::Bytes(secret.into_bytes()),
            issuer: get("issuer").unwrap_or("boards").to_string(),
            audience: get("audience").unwrap_or("boards-api").to_string(),
            leeway: chrono::Duration::seconds(auth.leeway_seconds.max(0)),
            require_exp,
        })
    }

    /// Signs `claims` with the configured secret (used by tests and tooling).
    pub fn sign(&self, claims: &Value) -> anyhow::Result<String> {
        let claims: biscuit::ClaimsSet<Map<String, Value>> =
            serde_json::from_value(claims.clone())?;
        let jwt = JWT::new_decoded(
            biscuit::jws::RegisteredHeader {
                algorithm: SignatureAlgorithm::HS256,
                ..Default::default()
            }
            .into(),
            claims,
        );
        Ok(jwt.into_encoded(&self.secret)?.unwrap_encoded().to_string())
    }
}

fn invalid() -> AuthError {
    AuthError::Unauthenticated("Invalid token".into())
}

#[async_trait::async_trait]
impl AuthProvider for JwtProvider {
    fn name(&self) -> &'static str {
        "jwt"
    }

    async fn verify(&self, token: &str) -> Result<Principal, AuthError> {
        let encoded: JWT<Map<String, Value>, Empty> = JWT::new_encoded(token);
        let decoded = encoded
            .into_decoded(&self.secret, SignatureAlgorithm::HS256)
            .map_err(|_| invalid())?;
        let claims = decoded.payload().map_err(|_| invalid())?;
        let options = ValidationOptions {
            claim_presence_options: ClaimPresenceOptions {
                issuer: Presence::Required,
                audience: Presence::Required,
                ..Default::default()
            },
            temporal_options: TemporalOptions {
                epsilon: self.leeway,
                now: None,
            },
            issuer: Validation::Validate(self.issuer.clone()),
            audience: Validation::Validate(self.audience.clone()),
            ..Default::default()
        };
        claims.registered.validate(options).map_err(|_| invalid())?;
        let subject = claims
            .registered
            .subject
            .clone()
            .filter(|s| !s.is_empty())
            .ok_or_else(|| AuthError::Unauthenticated("Missing 'sub' claim in token".into()))?;
        if self.require_exp && claims.registered.expiry.is_none() {
            return Err(AuthError::Unauthenticated(
                "Missing 'exp' claim in token".into(),
            ));
        }
        let all = serde_json::to_value(claims).map_err(|_| invalid())?;
        let text = |key: &str| {
            all.get(key)
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
        };
        Ok(Principal {
            provider: "jwt".into(),
            subject,
            email: text("email"),
            display_name: text("name"),
            avatar_url: text("picture"),
            claims: all,
        })
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::config::Secret as ConfigSecret;

    fn provider() -> JwtProvider {
        provider_with(json!({}))
    }

    fn provider_with(config: Value) -> JwtProvider {
        JwtProvider::from_config(&AuthConfig {
            provider: "jwt".into(),
            config,
            jwt_secret: Some(ConfigSecret::new("s3cret")),
            jwt_tenant_claim: None,
            leeway_seconds: 0,
        })
        .unwrap()
    }

    fn now() -> i64 {
        chrono::Utc::now().timestamp()
    }

    #[tokio::test]
    async fn a_valid_token_maps_to_a_principal() {
        let p = provider();
        let token = p
            .sign(
                &json!({"iss": "boards", "aud": "boards-api", "sub": "u1", "exp": now() + 60,
                "email": "a@b.c", "name": "Ann", "picture": "http://x/p.png", "org": "Acme"}),
            )
            .unwrap();
        let principal = p.verify(&token).await.unwrap();
        assert_eq!(principal.subject, "u1");
        assert_eq!(principal.email.as_deref(), Some("a@b.c"));
        assert_eq!(principal.display_name.as_deref(), Some("Ann"));
        assert_eq!(principal.avatar_url.as_deref(), Some("http://x/p.png"));
        assert_eq!(principal.claims["org"], "Acme");
    }

    #[tokio::test]
    async fn bad_tokens_are_invalid() {
        let p = provider();
        let expired = p
            .sign(&json!({"iss": "boards", "aud": "boards-api", "sub": "u", "exp": now() - 10}))
            .unwrap();
        let not_yet = p
            .sign(&json!({"iss": "boards", "aud": "boards-api", "sub": "u", "nbf": now() + 600}))
            .unwrap();
        let wrong_iss = p
            .sign(&json!({"iss": "x", "aud": "boards-api", "sub": "u"}))
            .unwrap();
        let wrong_aud = p
            .sign(&json!({"iss": "boards", "aud": "x", "sub": "u"}))
            .unwrap();
        let no_aud = p.sign(&json!({"iss": "boards", "sub": "u"})).unwrap();
        let other = JwtProvider::from_config(&AuthConfig {
            provider: "jwt".into(),
            config: json!({"secret_key": "other"}),
            jwt_secret: None,
            jwt_tenant_claim: None,
            leeway_seconds: 0,
        })
        .unwrap();
        let bad_sig = other
            .sign(&json!({"iss": "boards", "aud": "boards-api", "sub": "u"}))
            .unwrap();
        for token in [
            expired,
            not_yet,
            wrong_iss,
            wrong_aud,
            no_aud,
            bad_sig,
            "garbage".into(),
        ] {
            assert_eq!(p.verify(&token).await, Err(invalid()), "{token}");
        }
    }

    #[tokio::test]
    async fn a_token_without_exp_is_refused_unless_configured() {
        let claims = json!({"iss": "boards", "aud": "boards-api", "sub": "u"});
        let p = provider();
        let token = p.sign(&claims).unwrap();
        assert_eq!(
            p.verify(&token).await,
            Err(AuthError::Unauthenticated(
                "Missing 'exp' claim in token".into()
            ))
        );
        let lenient = provider_with(json!({"require_exp": false}));
        assert_eq!(lenient.verify(&token).await.unwrap().subject, "u");
        assert!(provider_with(json!({"require_exp": true}))
            .verify(&token)
            .await
            .is_err());
        assert!(JwtProvider::from_config(&AuthConfig {
            provider: "jwt".into(),
            config: json!({"require_exp": "no"}),
            jwt_secret: Some(ConfigSecret::new("s3cret")),
            jwt_tenant_claim: None,
            leeway_seconds: 0,
        })
        .is_err());
    }

    #[tokio::test]
    async fn a_token_without_sub_is_refused() {
        let p = provider();
        let token = p
            .sign(&json!({"iss": "boards", "aud": ["boards-api", "y"], "exp": now() + 60}))
            .unwrap();
        assert_eq!(
            p.verify(&token).await,
            Err(AuthError::Unauthenticated(
                "Missing 'sub' claim in token".into()
            ))
        );
    }
}
