//! The `clerk` provider: Clerk session tokens (RS256) verified with the instance's JWKS.
//! `issuer` (the Frontend API URL, e.g. `https://clerk.example.com`, or `CLERK_ISSUER`) is
//! required and checked; the JWKS is `{issuer}/.well-known/jwks.json` unless `jwks_url` says
//! otherwise (with `secret_key` / `CLERK_SECRET_KEY` sent as a bearer token, as Clerk's backend
//! API `https://api.clerk.com/v1/jwks` needs). `authorized_parties` restricts `azp`; `audience`
//! is checked when configured (session tokens carry none by default).

use biscuit::jwa::SignatureAlgorithm;
use serde_json::{Map, Value};

use super::{
    jwks::JwksSource,
    options::{check_url, OptionResult},
    token::{full_name, text, BuildContext, Profile, TokenProvider},
    verifier::Verifier,
};

pub fn build(ctx: &BuildContext) -> OptionResult<TokenProvider> {
    let o = &ctx.options;
    // Kept exactly as configured: `iss` is compared byte for byte.
    let issuer = o.required("issuer", &["CLERK_ISSUER"])?;
    check_url("issuer", &issuer)?;
    let jwks_url = o
        .url("jwks_url", &["CLERK_JWKS_URL"])?
        .unwrap_or_else(|| format!("{}/.well-known/jwks.json", issuer.trim_end_matches('/')));
    // The secret key authenticates to Clerk's backend API only; it is never sent elsewhere.
    let bearer = o
        .text("secret_key", &["CLERK_SECRET_KEY"])?
        .filter(|_| is_backend_api(&jwks_url));
    let keys = ctx.jwks(JwksSource::Url(jwks_url), bearer)?;
    let mut verifier = Verifier::common(o, keys, &[SignatureAlgorithm::RS256], ctx.leeway_seconds)?;
    verifier.issuer = issuer;
    verifier.audiences = o.list("audience", &[])?;
    verifier.authorized_parties = o.list("authorized_parties", &["CLERK_AUTHORIZED_PARTIES"])?;
    Ok(TokenProvider {
        name: "clerk",
        verifier,
        profile,
    })
}

/// Whether `url` is Clerk's backend API (`https://api.clerk.com/v1/jwks`, or the older
/// `api.clerk.dev`), the one JWKS endpoint that wants the secret key.
fn is_backend_api(url: &str) -> bool {
    reqwest::Url::parse(url).is_ok_and(|u| {
        u.scheme() == "https" && matches!(u.host_str(), Some("api.clerk.com" | "api.clerk.dev"))
    })
}

fn profile(claims: &Map<String, Value>) -> Profile {
    let email = text(claims, "email").or_else(|| {
        claims
            .get("email_addresses")
            .and_then(Value::as_array)
            .and_then(|list| list.first())
            .and_then(Value::as_object)
            .and_then(|first| text(first, "email_address"))
    });
    Profile {
        email,
        display_name: full_name(claims, "given_name", "family_name")
            .or_else(|| full_name(claims, "first_name", "last_name"))
            .or_else(|| text(claims, "name")),
        avatar_url: text(claims, "picture").or_else(|| text(claims, "image_url")),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_secret_key_goes_to_clerks_backend_api_only() {
        assert!(super::is_backend_api("https://api.clerk.com/v1/jwks"));
        assert!(super::is_backend_api("https://api.clerk.dev/v1/jwks"));
        for other in [
            "https://clerk.example.com/.well-known/jwks.json",
            "https://api.clerk.com.evil.example/v1/jwks",
            "http://api.clerk.com/v1/jwks",
            "https://evil.example/?api.clerk.com",
            "not a url",
        ] {
            assert!(!super::is_backend_api(other), "{other}");
        }
    }
}
