//! JWT verification shared by every token provider: size cap, algorithm allow-list, signature
//! (a shared secret or a key from a JWKS), then `exp`/`nbf`/`iat`, `iss`, `aud` and `azp`.

use std::sync::Arc;

use biscuit::{
    jwa::SignatureAlgorithm, jws::Secret, ClaimPresenceOptions, Empty, Presence, TemporalOptions,
    Validation, ValidationOptions, JWT,
};
use serde_json::{Map, Value};

use super::{
    jwks::Jwks,
    options::{OptionResult, Options, ASYMMETRIC, HMAC},
    AuthError,
};

/// Where signature keys come from.
pub enum Keys {
    /// An HMAC secret (HS256/384/512 only).
    Shared(Arc<Secret>),
    /// Public keys from a JWKS (RS/PS/ES only).
    Jwks(Arc<Jwks>),
}

/// Default cap on a bearer token's length (bytes).
pub const DEFAULT_MAX_TOKEN_BYTES: u64 = 8 * 1024;

pub struct Verifier {
    pub keys: Keys,
    pub algorithms: Vec<SignatureAlgorithm>,
    /// `iss` must equal this.
    pub issuer: String,
    /// `aud` must contain one of these; empty: a token must carry no `aud`... never: empty
    /// means the provider does not use audiences (Clerk session tokens), and `aud` is ignored.
    pub audiences: Vec<String>,
    /// `azp` must be one of these when non-empty (Clerk's authorized parties).
    pub authorized_parties: Vec<String>,
    pub leeway: chrono::Duration,
    pub max_token_bytes: usize,
    pub require_exp: bool,
}

/// The verified claims of a token, and when it stops being valid.
pub struct Verified {
    pub claims: Map<String, Value>,
    pub expires_at: Option<i64>,
}

pub fn invalid() -> AuthError {
    AuthError::Unauthenticated("Invalid token".into())
}

fn refused(why: &str) -> AuthError {
    AuthError::Unauthenticated(format!("Invalid token: {why}"))
}

impl Verifier {
    /// The options every provider shares (`max_token_bytes`, `require_exp`, `algorithms`).
    pub fn common(
        options: &Options,
        keys: Keys,
        default_algorithms: &[SignatureAlgorithm],
        leeway_seconds: i64,
    ) -> OptionResult<Self> {
        let allowed = match keys {
            Keys::Shared(_) => HMAC,
            Keys::Jwks(_) => ASYMMETRIC,
        };
        Ok(Self {
            algorithms: options.algorithms(default_algorithms, allowed)?,
            keys,
            issuer: String::new(),
            audiences: vec![],
            authorized_parties: vec![],
            leeway: chrono::Duration::seconds(leeway_seconds.max(0)),
            max_token_bytes: options.seconds(
                "max_token_bytes",
                DEFAULT_MAX_TOKEN_BYTES,
                512,
                65_536,
            )? as usize,
            require_exp: options.bool("require_exp", true)?,
        })
    }

    pub async fn verify(&self, token: &str) -> Result<Verified, AuthError> {
        if token.len() > self.max_token_bytes {
            return Err(refused(&format!(
                "larger than {} bytes",
                self.max_token_bytes
            )));
        }
        check_times(token)?;
        let encoded: JWT<Map<String, Value>, Empty> = JWT::new_encoded(token);
        let header = encoded.unverified_header().map_err(|_| invalid())?;
        let alg = header.registered.algorithm;
        if !self.algorithms.contains(&alg) {
            return Err(refused(&format!(
                "algorithm {} is not accepted",
                super::options::alg_name(alg)
            )));
        }
        let secret = match &self.keys {
            Keys::Shared(secret) => secret.clone(),
            Keys::Jwks(jwks) => jwks.key(header.registered.key_id.as_deref(), alg).await?,
        };
        let decoded = encoded.into_decoded(&secret, alg).map_err(|_| invalid())?;
        let claims = decoded.payload().map_err(|_| invalid())?;
        self.check_claims(claims)?;
        let expires_at = claims.registered.expiry.map(|t| t.timestamp());
        let all = match serde_json::to_value(claims).map_err(|_| invalid())? {
            Value::Object(map) => map,
            _ => return Err(invalid()),
        };
        Ok(Verified {
            claims: all,
            expires_at,
        })
    }

    fn check_claims(
        &self,
        claims: &biscuit::ClaimsSet<Map<String, Value>>,
    ) -> Result<(), AuthError> {
        let registered = &claims.registered;
        let temporal = TemporalOptions {
            epsilon: self.leeway,
            now: None,
        };
        registered
            .validate_exp(Validation::Validate(temporal))
            .map_err(|_| refused("expired"))?;
        registered
            .validate_nbf(Validation::Validate(temporal))
            .map_err(|_| refused("not valid yet"))?;
        registered
            .validate_iat(Validation::Validate((chrono::Duration::MAX, temporal)))
            .map_err(|_| refused("issued in the future"))?;
        let options = ValidationOptions {
            claim_presence_options: ClaimPresenceOptions {
                issuer: Presence::Required,
                ..Default::default()
            },
            expiry: Validation::Ignored,
            not_before: Validation::Ignored,
            issued_at: Validation::Ignored,
            temporal_options: temporal,
            issuer: Validation::Validate(self.issuer.clone()),
            audience: Validation::Ignored,
        };
        registered
            .validate(options)
            .map_err(|_| refused("wrong issuer"))?;
        if !self.audiences.is_empty() {
            let ok = registered
                .audience
                .as_ref()
                .is_some_and(|aud| self.audiences.iter().any(|a| aud.contains(a)));
            if !ok {
                return Err(refused("wrong audience"));
            }
        }
        if !self.authorized_parties.is_empty() {
            let azp = claims.private.get("azp").and_then(Value::as_str);
            if !azp.is_some_and(|p| self.authorized_parties.iter().any(|a| a == p)) {
                return Err(refused("unauthorized party (azp)"));
            }
        }
        if self.require_exp && registered.expiry.is_none() {
            return Err(AuthError::Unauthenticated(
                "Missing 'exp' claim in token".into(),
            ));
        }
        Ok(())
    }
}

/// The members of a JSON object in order, duplicates included (serde_json's `Map` keeps only
/// the last of equal keys, while biscuit's claims parser reads the first).
struct Members(Vec<(String, Value)>);

impl<'de> serde::Deserialize<'de> for Members {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visit;
        impl<'de> serde::de::Visitor<'de> for Visit {
            type Value = Members;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<Members, A::Error> {
                let mut members = Vec::new();
                while let Some(member) = map.next_entry::<String, Value>()? {
                    members.push(member);
                }
                Ok(Members(members))
            }
        }
        d.deserialize_map(Visit)
    }
}

/// Checks the claims before biscuit parses them: duplicate claim names are refused (RFC 7519
/// §4; a duplicated `exp` would otherwise be checked here in one version and read by biscuit in
/// another), and so are `exp`/`nbf`/`iat` values chrono cannot represent, on which biscuit
/// panics.
fn check_times(token: &str) -> Result<(), AuthError> {
    use base64::Engine as _;
    const LIMIT: i64 = 1 << 40; // about 34,800 years either way
    let payload = token.split('.').nth(1).ok_or_else(invalid)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .map_err(|_| invalid())?;
    let Members(members) = serde_json::from_slice(&bytes).map_err(|_| invalid())?;
    let mut claims = Map::with_capacity(members.len());
    for (name, value) in members {
        if claims.insert(name, value).is_some() {
            return Err(refused("duplicate claim names"));
        }
    }
    for key in ["exp", "nbf", "iat"] {
        match claims.get(key) {
            None | Some(Value::Null) => {}
            Some(v) if v.as_i64().is_some_and(|n| (-LIMIT..=LIMIT).contains(&n)) => {}
            Some(_) => return Err(refused(&format!("`{key}` is not a valid timestamp"))),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn absurd_timestamps_are_refused_before_parsing() {
        use base64::Engine as _;
        let enc = |v: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v);
        let token = |claims: &str| format!("{}.{}.sig", enc(r#"{"alg":"HS256"}"#), enc(claims));
        assert!(check_times(&token(r#"{"exp": 1700000000}"#)).is_ok());
        assert!(check_times(&token(r#"{"sub": "x"}"#)).is_ok());
        for bad in [
            r#"{"exp": 9223372036854775807}"#,
            r#"{"nbf": -9223372036854775807}"#,
            r#"{"iat": 1.5}"#,
            r#"{"exp": "soon"}"#,
            r#"{"exp": 9000000000000000000, "exp": 1700000000}"#,
            r#"{"sub": "a", "sub": "b"}"#,
            "not json",
        ] {
            assert!(check_times(&token(bad)).is_err(), "{bad}");
        }
        assert!(check_times("nodots").is_err());
    }
}
