//! The `jwt` provider: the deployment's own tokens. HS256/384/512 with a shared secret
//! (`secret_key` or `BOARDS_JWT_SECRET`), or RS/PS/ES with keys from `jwks_url`; `iss`
//! (default `boards`) and `aud` (default `boards-api`) always checked. `exp` is required unless
//! `{"require_exp": false}`: a token that never expires cannot be revoked.

use std::sync::Arc;

use biscuit::{jwa::SignatureAlgorithm, jws::Secret, JWT};
use serde_json::{Map, Value};

use super::{
    jwks::JwksSource,
    options::OptionResult,
    token::{text, BuildContext, Profile, TokenProvider},
    verifier::{Keys, Verifier},
    AuthError, AuthProvider, Principal,
};
use crate::config::AuthConfig;

pub fn build(ctx: &BuildContext) -> OptionResult<TokenProvider> {
    let o = &ctx.options;
    let (keys, default_alg) = match o.url("jwks_url", &[])? {
        Some(url) => (
            ctx.jwks(JwksSource::Url(url), None)?,
            SignatureAlgorithm::RS256,
        ),
        None => {
            let secret = o
                .text("secret_key", &[])?
                .or_else(|| ctx.jwt_secret.map(str::to_string))
                .filter(|s| !s.is_empty())
                .ok_or_else(|| {
                    super::options::error(
                        "secret_key",
                        "the `jwt` provider needs a secret (BOARDS_JWT_SECRET or auth.config.secret_key) or a `jwks_url`",
                    )
                })?;
            (
                Keys::Shared(Arc::new(Secret::Bytes(secret.into_bytes()))),
                SignatureAlgorithm::HS256,
            )
        }
    };
    let mut verifier = Verifier::common(o, keys, &[default_alg], ctx.leeway_seconds)?;
    verifier.issuer = o.text("issuer", &[])?.unwrap_or_else(|| "boards".into());
    verifier.audiences = vec![o
        .text("audience", &[])?
        .unwrap_or_else(|| "boards-api".into())];
    Ok(TokenProvider {
        name: "jwt",
        verifier,
        profile,
    })
}

fn profile(claims: &Map<String, Value>) -> Profile {
    Profile {
        email: text(claims, "email"),
        display_name: text(claims, "name"),
        avatar_url: text(claims, "picture"),
    }
}

/// The `jwt` provider built from an [`AuthConfig`] alone, with a signer for the same secret
/// (tests, the benchmark and tooling issue tokens with it).
pub struct JwtProvider {
    inner: TokenProvider,
    secret: Option<Secret>,
    algorithm: SignatureAlgorithm,
}

impl JwtProvider {
    pub fn from_config(auth: &AuthConfig) -> anyhow::Result<Self> {
        let ctx = BuildContext {
            options: super::options::Options {
                provider: "jwt",
                json: &auth.config,
                env: &auth.env,
            },
            leeway_seconds: auth.leeway_seconds,
            jwt_secret: auth.jwt_secret.as_ref().map(|s| s.expose()),
            client: reqwest::Client::new(),
            logger: slog::Logger::root(slog::Discard, slog::o!()),
        };
        let inner = build(&ctx)?;
        let algorithm = inner.verifier.algorithms[0];
        let secret = match &inner.verifier.keys {
            Keys::Shared(s) => match s.as_ref() {
                Secret::Bytes(b) => Some(Secret::Bytes(b.clone())),
                _ => None,
            },
            Keys::Jwks(_) => None,
        };
        Ok(Self {
            inner,
            secret,
            algorithm,
        })
    }

    /// Signs `claims` with the configured secret and first algorithm.
    pub fn sign(&self, claims: &Value) -> anyhow::Result<String> {
        let secret = self.secret.as_ref().ok_or_else(|| {
            anyhow::anyhow!("this jwt provider has no shared secret to sign with")
        })?;
        let claims: biscuit::ClaimsSet<Map<String, Value>> =
            serde_json::from_value(claims.clone())?;
        let jwt = JWT::new_decoded(
            biscuit::jws::RegisteredHeader {
                algorithm: self.algorithm,
                ..Default::default()
            }
            .into(),
            claims,
        );
        Ok(jwt.into_encoded(secret)?.unwrap_encoded().to_string())
    }
}

#[async_trait::async_trait]
impl AuthProvider for JwtProvider {
    fn name(&self) -> &'static str {
        "jwt"
    }

    async fn verify(&self, token: &str) -> Result<Principal, AuthError> {
        self.inner.verify(token).await
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
            env: Default::default(),
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
            env: Default::default(),
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
            let got = p.verify(&token).await;
            assert!(
                matches!(&got, Err(AuthError::Unauthenticated(m)) if m.starts_with("Invalid token")),
                "{token}: {got:?}"
            );
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
            env: Default::default(),
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
