//! The `auth0` provider: Auth0 access tokens verified with
//! `https://{domain}/.well-known/jwks.json`; `iss` must be `https://{domain}/` and `aud` must
//! contain `audience` (both required: `domain`/`AUTH0_DOMAIN`, `audience`/`AUTH0_AUDIENCE`).
//! `issuer` and `jwks_url` override the derived URLs (custom domains, tests).

use biscuit::jwa::SignatureAlgorithm;
use serde_json::{Map, Value};

use super::{
    jwks::JwksSource,
    options::{check_url, OptionResult},
    token::{standard_profile, BuildContext, Profile, TokenProvider},
    verifier::Verifier,
};

pub fn build(ctx: &BuildContext) -> OptionResult<TokenProvider> {
    let o = &ctx.options;
    let domain = o.required("domain", &["AUTH0_DOMAIN"])?;
    let domain = domain
        .trim_start_matches("https://")
        .trim_end_matches('/')
        .to_string();
    check_url("domain", &format!("https://{domain}/"))?;
    let audience = o.required("audience", &["AUTH0_AUDIENCE"])?;
    let issuer = match o.text("issuer", &[])? {
        Some(issuer) => {
            check_url("issuer", &issuer)?;
            issuer
        }
        None => format!("https://{domain}/"),
    };
    let jwks_url = o
        .url("jwks_url", &[])?
        .unwrap_or_else(|| format!("https://{domain}/.well-known/jwks.json"));
    let keys = ctx.jwks(JwksSource::Url(jwks_url), None)?;
    let mut verifier = Verifier::common(o, keys, &[SignatureAlgorithm::RS256], ctx.leeway_seconds)?;
    verifier.issuer = issuer;
    verifier.audiences = vec![audience];
    Ok(TokenProvider {
        name: "auth0",
        verifier,
        profile,
    })
}

fn profile(claims: &Map<String, Value>) -> Profile {
    standard_profile(claims, "nickname")
}
