//! A JSON Web Key Set fetched from an identity provider and kept in memory.
//!
//! - Keys are cached for a TTL (`jwks_cache_seconds`, default 600 s). When it has passed, the
//!   next request refetches; if the provider is down, the cached keys stay in use, so requests
//!   whose key is known keep working.
//! - A token naming an unknown `kid` triggers **one** refetch (key rotation works without a
//!   restart), at most once per `jwks_min_refresh_seconds` (default 30 s): a flood of tokens
//!   with made-up `kid`s costs the provider one request per interval, not one per token.
//! - Fetches are single-flight: concurrent requests wait for the one fetch in progress.
//! - With OIDC discovery, `jwks_uri` comes from `{issuer}/.well-known/openid-configuration`,
//!   whose `issuer` must equal the configured one.

use std::{
    sync::{Arc, RwLock},
    time::{Duration, Instant},
};

use biscuit::{
    jwa::SignatureAlgorithm,
    jwk::{AlgorithmParameters, EllipticCurve, PublicKeyUse, JWK},
    jws::Secret,
    Empty,
};
use futures::StreamExt;
use serde_json::Value;

use super::AuthError;

/// Where the key set comes from.
#[derive(Clone, Debug)]
pub enum JwksSource {
    /// A fixed JWKS URL.
    Url(String),
    /// OIDC discovery under this issuer.
    Discovery { issuer: String },
}

/// Largest discovery document or key set accepted.
const MAX_DOCUMENT_BYTES: usize = 512 * 1024;

/// One verification key.
#[derive(Clone)]
struct Key {
    kid: Option<String>,
    kind: KeyKind,
    /// The `alg` the JWK pins, if any.
    alg: Option<SignatureAlgorithm>,
    secret: Arc<Secret>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum KeyKind {
    Rsa,
    P256,
    P384,
}

impl KeyKind {
    fn fits(self, alg: SignatureAlgorithm) -> bool {
        use SignatureAlgorithm::*;
        match self {
            KeyKind::Rsa => matches!(alg, RS256 | RS384 | RS512 | PS256 | PS384 | PS512),
            KeyKind::P256 => alg == ES256,
            KeyKind::P384 => alg == ES384,
        }
    }
}

#[derive(Default)]
struct State {
    keys: Vec<Key>,
    /// When the keys were last fetched successfully.
    fetched_at: Option<Instant>,
    /// When a fetch was last attempted (successful or not).
    attempted_at: Option<Instant>,
    /// Bumped on every successful fetch, so a waiter can tell that someone else refreshed.
    generation: u64,
    jwks_uri: Option<String>,
}

fn keys_unavailable() -> AuthError {
    AuthError::Unavailable(
        "Authentication is temporarily unavailable (the identity provider's keys could not be fetched)".into(),
    )
}

pub struct Jwks {
    source: JwksSource,
    client: reqwest::Client,
    /// Sent as `Authorization: Bearer` when fetching (Clerk's backend API needs it).
    bearer: Option<String>,
    ttl: Duration,
    min_refresh: Duration,
    state: RwLock<State>,
    refresh: tokio::sync::Mutex<()>,
    fetches: std::sync::atomic::AtomicU64,
    logger: slog::Logger,
}

impl Jwks {
    pub fn new(
        source: JwksSource,
        client: reqwest::Client,
        bearer: Option<String>,
        ttl: Duration,
        min_refresh: Duration,
        logger: slog::Logger,
    ) -> Self {
        Self {
            source,
            client,
            bearer,
            ttl,
            min_refresh,
            state: RwLock::new(State::default()),
            refresh: tokio::sync::Mutex::new(()),
            fetches: Default::default(),
            logger,
        }
    }

    /// How many key-set fetches were attempted (for tests and metrics).
    pub fn fetches(&self) -> u64 {
        self.fetches.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The verification key for a token signed with `alg` under `kid`.
    pub async fn key(
        &self,
        kid: Option<&str>,
        alg: SignatureAlgorithm,
    ) -> Result<Arc<Secret>, AuthError> {
        let (found, generation, fresh, may_refetch, never_fetched) = {
            let state = self.state.read().unwrap_or_else(|e| e.into_inner());
            let now = Instant::now();
            let fresh = state
                .fetched_at
                .is_some_and(|t| now.duration_since(t) < self.ttl);
            let may_refetch = state
                .attempted_at
                .is_none_or(|t| now.duration_since(t) >= self.min_refresh);
            (
                find(&state.keys, kid, alg),
                state.generation,
                fresh,
                may_refetch,
                state.fetched_at.is_none(),
            )
        };
        match found {
            Ok(key) if fresh => return Ok(key),
            // Stale but usable: refresh when allowed, and keep the old key if that fails.
            Ok(key) if !may_refetch => return Ok(key),
            Ok(_) => {}
            // No key set yet and the last attempt failed moments ago: the provider is down,
            // which is not the token's fault (503, not 401), and it is not asked again yet.
            Err(_) if never_fetched && !may_refetch => return Err(keys_unavailable()),
            // Unknown kid with fresh keys: refetch at most once per interval.
            Err(e) if !may_refetch => return Err(e),
            Err(_) => {}
        }
        self.refresh(generation).await?;
        let state = self.state.read().unwrap_or_else(|e| e.into_inner());
        find(&state.keys, kid, alg)
    }

    /// Fetches the key set unless another task did since `seen` (single-flight). A failed
    /// fetch keeps the old keys; it is an error only when there are none.
    async fn refresh(&self, seen: u64) -> Result<(), AuthError> {
        let _guard = self.refresh.lock().await;
        {
            let state = self.state.read().unwrap_or_else(|e| e.into_inner());
            let recently = state
                .attempted_at
                .is_some_and(|t| t.elapsed() < self.min_refresh);
            if state.generation != seen {
                return Ok(());
            }
            // Queued behind a fetch that just failed: do not ask the provider again at once.
            if recently {
                return match state.fetched_at {
                    None => Err(keys_unavailable()),
                    Some(_) => Ok(()),
                };
            }
        }
        self.fetches
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let result = self.fetch().await;
        let mut state = self.state.write().unwrap_or_else(|e| e.into_inner());
        state.attempted_at = Some(Instant::now());
        match result {
            Ok((uri, keys)) => {
                state.keys = keys;
                state.jwks_uri = Some(uri);
                state.fetched_at = state.attempted_at;
                state.generation += 1;
                Ok(())
            }
            Err(e) => {
                slog::warn!(self.logger, "fetching the identity provider's signing keys failed";
                    "error" => &e, "cached_keys" => state.keys.len());
                if state.keys.is_empty() {
                    Err(keys_unavailable())
                } else {
                    Ok(())
                }
            }
        }
    }

    async fn fetch(&self) -> Result<(String, Vec<Key>), String> {
        let known = self
            .state
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .jwks_uri
            .clone();
        let uri = match (known, &self.source) {
            (Some(uri), _) => uri,
            (None, JwksSource::Url(url)) => url.clone(),
            (None, JwksSource::Discovery { issuer }) => self.discover(issuer).await?,
        };
        let doc = self.get_json(&uri).await?;
        let keys = parse_keys(&doc)?;
        Ok((uri, keys))
    }

    async fn discover(&self, issuer: &str) -> Result<String, String> {
        let url = format!(
            "{}/.well-known/openid-configuration",
            issuer.trim_end_matches('/')
        );
        let doc = self.get_json(&url).await?;
        let stated = doc.get("issuer").and_then(Value::as_str).unwrap_or("");
        if stated.trim_end_matches('/') != issuer.trim_end_matches('/') {
            return Err(format!(
                "the discovery document names issuer `{stated}`, not `{issuer}`"
            ));
        }
        let uri = doc
            .get("jwks_uri")
            .and_then(Value::as_str)
            .ok_or("the discovery document has no `jwks_uri`")?;
        super::options::check_url("jwks_uri", uri).map_err(|e| e.why)?;
        Ok(uri.to_string())
    }

    async fn get_json(&self, url: &str) -> Result<Value, String> {
        let mut request = self
            .client
            .get(url)
            .header(reqwest::header::ACCEPT, "application/json");
        if let Some(bearer) = &self.bearer {
            request = request.bearer_auth(bearer);
        }
        let response = request.send().await.map_err(|e| format!("{url}: {e}"))?;
        let status = response.status();
        if !status.is_success() {
            return Err(format!("{url}: HTTP {}", status.as_u16()));
        }
        let mut body = Vec::new();
        let mut stream = response.bytes_stream();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| format!("{url}: {e}"))?;
            if body.len() + chunk.len() > MAX_DOCUMENT_BYTES {
                return Err(format!("{url}: larger than {MAX_DOCUMENT_BYTES} bytes"));
            }
            body.extend_from_slice(&chunk);
        }
        serde_json::from_slice(&body).map_err(|e| format!("{url}: not JSON ({e})"))
    }
}

/// The usable signature keys of a JWKS document; encryption keys and key types ring cannot
/// verify with (OKP, P-521, symmetric `oct`) are skipped, not errors.
fn parse_keys(doc: &Value) -> Result<Vec<Key>, String> {
    let list = doc
        .get("keys")
        .and_then(Value::as_array)
        .ok_or("the key set has no `keys` list")?;
    let mut keys = Vec::new();
    for raw in list {
        let Ok(jwk) = serde_json::from_value::<JWK<Empty>>(raw.clone()) else {
            continue;
        };
        if matches!(jwk.common.public_key_use, Some(PublicKeyUse::Encryption)) {
            continue;
        }
        let alg = match jwk.common.algorithm {
            Some(biscuit::jwa::Algorithm::Signature(a)) => Some(a),
            Some(_) => continue,
            None => None,
        };
        let (kind, secret) = match &jwk.algorithm {
            AlgorithmParameters::RSA(rsa) => (KeyKind::Rsa, rsa.jws_public_key_secret()),
            AlgorithmParameters::EllipticCurve(ec) => {
                let (kind, len) = match ec.curve {
                    EllipticCurve::P256 => (KeyKind::P256, 32),
                    EllipticCurve::P384 => (KeyKind::P384, 48),
                    _ => continue,
                };
                if ec.x.len() != len || ec.y.len() != len {
                    continue;
                }
                (kind, ec.jws_public_key_secret())
            }
            _ => continue,
        };
        if alg.is_some_and(|a| !kind.fits(a)) {
            continue;
        }
        keys.push(Key {
            kid: jwk.common.key_id.clone(),
            kind,
            alg,
            secret: Arc::new(secret),
        });
    }
    Ok(keys)
}

/// The key for `kid` that can verify `alg`. Without a `kid`, the one key of the set that fits.
fn find(
    keys: &[Key],
    kid: Option<&str>,
    alg: SignatureAlgorithm,
) -> Result<Arc<Secret>, AuthError> {
    let fits = |k: &&Key| k.kind.fits(alg) && k.alg.is_none_or(|a| a == alg);
    let candidates: Vec<&Key> = match kid {
        Some(kid) => keys
            .iter()
            .filter(|k| k.kid.as_deref() == Some(kid))
            .collect(),
        None => keys.iter().filter(fits).collect(),
    };
    match candidates.as_slice() {
        [] => Err(AuthError::Unauthenticated(
            "Invalid token: unknown signing key".into(),
        )),
        [key] if fits(key) => Ok(key.secret.clone()),
        [_] => Err(AuthError::Unauthenticated(
            "Invalid token: the signing key does not match the algorithm".into(),
        )),
        _ => Err(AuthError::Unauthenticated(
            "Invalid token: the signing key is ambiguous (no `kid`)".into(),
        )),
    }
}

/// Counts keys by kind, for tests.
#[cfg(test)]
fn kinds(keys: &[Key]) -> std::collections::HashMap<&'static str, usize> {
    let mut out = std::collections::HashMap::new();
    for k in keys {
        let name = match k.kind {
            KeyKind::Rsa => "rsa",
            KeyKind::P256 => "p256",
            KeyKind::P384 => "p384",
        };
        *out.entry(name).or_insert(0) += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn unusable_keys_are_skipped() {
        let b64 = |n: usize| {
            use base64::Engine as _;
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(vec![7u8; n])
        };
        let doc = json!({"keys": [
            {"kty": "RSA", "kid": "r", "n": b64(256), "e": "AQAB", "alg": "RS256", "use": "sig"},
            {"kty": "RSA", "kid": "enc", "n": b64(256), "e": "AQAB", "use": "enc"},
            {"kty": "EC", "kid": "e", "crv": "P-256", "x": b64(32), "y": b64(32)},
            {"kty": "EC", "kid": "e3", "crv": "P-384", "x": b64(48), "y": b64(48)},
            {"kty": "EC", "kid": "short", "crv": "P-256", "x": b64(31), "y": b64(32)},
            {"kty": "EC", "kid": "e5", "crv": "P-521", "x": b64(66), "y": b64(66)},
            {"kty": "oct", "kid": "h", "k": b64(32)},
            {"kty": "OKP", "kid": "ed", "crv": "Ed25519", "x": b64(32)},
            {"kty": "RSA", "kid": "mismatch", "n": b64(256), "e": "AQAB", "alg": "ES256"},
            "garbage"
        ]});
        let keys = parse_keys(&doc).unwrap();
        assert_eq!(
            kinds(&keys),
            std::collections::HashMap::from([("rsa", 1), ("p256", 1), ("p384", 1)])
        );
        assert!(find(&keys, Some("r"), SignatureAlgorithm::RS256).is_ok());
        assert!(find(&keys, Some("r"), SignatureAlgorithm::PS256).is_err());
        assert!(find(&keys, Some("e"), SignatureAlgorithm::RS256).is_err());
        assert!(find(&keys, Some("e"), SignatureAlgorithm::ES256).is_ok());
        assert!(find(&keys, Some("h"), SignatureAlgorithm::HS256).is_err());
        assert!(find(&keys, None, SignatureAlgorithm::ES384).is_ok());
        assert!(find(&keys, Some("nope"), SignatureAlgorithm::RS256).is_err());
        assert!(parse_keys(&json!({"nokeys": []})).is_err());
    }
}
