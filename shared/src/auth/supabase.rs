//! The `supabase` provider: Supabase Auth access tokens verified locally, either with the
//! project's JWT secret (HS256; `jwt_secret` or `BOARDS_SUPABASE_JWT_SECRET`) or with the
//! project's asymmetric signing keys from `{url}/auth/v1/.well-known/jwks.json` (ES256/RS256).
//! `iss` must be `{url}/auth/v1` and `aud` `authenticated` (both configurable). The original
//! called Supabase's "get user" API on every request instead (see docs/compat.md).

use std::sync::Arc;

use biscuit::{jwa::SignatureAlgorithm, jws::Secret};
use serde_json::{Map, Value};

use super::{
    jwks::JwksSource,
    options::OptionResult,
    token::{text, BuildContext, Profile, TokenProvider},
    verifier::{Keys, Verifier},
};

pub fn build(ctx: &BuildContext) -> OptionResult<TokenProvider> {
    let o = &ctx.options;
    let url = o
        .url("url", &["BOARDS_SUPABASE_URL", "SUPABASE_URL"])?
        .ok_or_else(|| {
            super::options::error(
                "url",
                "the `supabase` provider needs the project URL (or BOARDS_SUPABASE_URL)",
            )
        })?;
    let secret = o.text(
        "jwt_secret",
        &["BOARDS_SUPABASE_JWT_SECRET", "SUPABASE_JWT_SECRET"],
    )?;
    let (keys, default_algs) = match secret {
        Some(secret) => (
            Keys::Shared(Arc::new(Secret::Bytes(secret.into_bytes()))),
            vec![SignatureAlgorithm::HS256],
        ),
        None => {
            let jwks_url = o
                .url("jwks_url", &[])?
                .unwrap_or_else(|| format!("{url}/auth/v1/.well-known/jwks.json"));
            (
                ctx.jwks(JwksSource::Url(jwks_url), None)?,
                vec![SignatureAlgorithm::ES256, SignatureAlgorithm::RS256],
            )
        }
    };
    let mut verifier = Verifier::common(o, keys, &default_algs, ctx.leeway_seconds)?;
    verifier.issuer = o
        .text("issuer", &[])?
        .unwrap_or_else(|| format!("{url}/auth/v1"));
    verifier.audiences = o.list("audience", &[])?;
    if verifier.audiences.is_empty() {
        verifier.audiences = vec!["authenticated".into()];
    }
    Ok(TokenProvider {
        name: "supabase",
        verifier,
        profile,
    })
}

fn profile(claims: &Map<String, Value>) -> Profile {
    let meta = claims
        .get("user_metadata")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    Profile {
        email: text(claims, "email"),
        display_name: ["display_name", "full_name", "name"]
            .iter()
            .find_map(|k| text(&meta, k)),
        avatar_url: ["avatar_url", "picture"]
            .iter()
            .find_map(|k| text(&meta, k)),
    }
}
