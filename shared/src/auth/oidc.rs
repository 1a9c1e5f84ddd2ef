//! The `oidc` provider: any OpenID Connect provider. Keys come from the `jwks_uri` of
//! `{issuer}/.well-known/openid-configuration` (discovery; the original asked for
//! `openid_configuration`, which compliant providers do not serve), or from `jwks_url` directly.
//! `iss` must equal `issuer`; `aud` must contain `audience` (default: `client_id`).

use serde_json::{Map, Value};

use super::{
    jwks::JwksSource,
    options::{check_url, OptionResult, ASYMMETRIC},
    token::{standard_profile, BuildContext, Profile, TokenProvider},
    verifier::Verifier,
};

pub fn build(ctx: &BuildContext) -> OptionResult<TokenProvider> {
    let o = &ctx.options;
    // Kept exactly as configured: `iss` is compared byte for byte (a trailing `/` matters).
    let issuer = o.required("issuer", &["OIDC_ISSUER"])?;
    check_url("issuer", &issuer)?;
    let client_id = o.required("client_id", &["OIDC_CLIENT_ID"])?;
    let mut audiences = o.list("audience", &["OIDC_AUDIENCE"])?;
    if audiences.is_empty() {
        audiences = vec![client_id];
    }
    let source = match o.url("jwks_url", &["OIDC_JWKS_URL"])? {
        Some(url) => JwksSource::Url(url),
        None => JwksSource::Discovery {
            issuer: issuer.clone(),
        },
    };
    let keys = ctx.jwks(source, None)?;
    let mut verifier = Verifier::common(o, keys, ASYMMETRIC, ctx.leeway_seconds)?;
    verifier.issuer = issuer;
    verifier.audiences = audiences;
    Ok(TokenProvider {
        name: "oidc",
        verifier,
        profile,
    })
}

fn profile(claims: &Map<String, Value>) -> Profile {
    standard_profile(claims, "preferred_username")
}
