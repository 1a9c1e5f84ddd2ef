//! A local identity provider on 127.0.0.1 for tests: OIDC discovery
//! (`/.well-known/openid-configuration`) and a JWKS (`/jwks.json`) serving the public halves of
//! keys generated in the test (RSA 2048, P-256, P-384). It counts fetches, can rotate keys and
//! can go down (503).
#![allow(clippy::unwrap_used, clippy::expect_used)] // Test support: a key that cannot be made fails the test at once.

use std::sync::{
    atomic::{AtomicBool, AtomicU32, Ordering},
    Arc, Mutex,
};

use base64::Engine as _;
use biscuit::{jwa::SignatureAlgorithm, jws::Secret, JWT};
use serde_json::{json, Map, Value};
use wiremock::{matchers::path, Mock, MockServer, Request, ResponseTemplate};

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// A private signing key with its public JWK.
pub struct SigningKey {
    pub kid: String,
    pub alg: SignatureAlgorithm,
    secret: Secret,
    jwk: Value,
    /// The public key's raw bytes (RSA: DER `RSAPublicKey`; EC: the SEC1 point).
    pub public_bytes: Vec<u8>,
}

impl SigningKey {
    /// A fresh 2048-bit RSA key for RS256 (also usable with RS384/512 and PS*).
    pub fn rsa(kid: &str) -> Self {
        use rsa::{pkcs1::EncodeRsaPublicKey, pkcs8::EncodePrivateKey, traits::PublicKeyParts};
        let key =
            rsa::RsaPrivateKey::new(&mut rand::thread_rng(), 2048).expect("generating an RSA key");
        let der = key.to_pkcs8_der().expect("PKCS#8 encoding");
        let pair = ring::signature::RsaKeyPair::from_pkcs8(der.as_bytes()).expect("ring RSA key");
        let public = key.to_public_key();
        Self {
            kid: kid.into(),
            alg: SignatureAlgorithm::RS256,
            secret: Secret::RsaKeyPair(Arc::new(pair)),
            jwk: json!({
                "kty": "RSA", "kid": kid, "use": "sig",
                "n": b64(&public.n().to_bytes_be()), "e": b64(&public.e().to_bytes_be()),
            }),
            public_bytes: public
                .to_pkcs1_der()
                .expect("PKCS#1 encoding")
                .as_bytes()
                .to_vec(),
        }
    }

    /// A fresh P-256 key for ES256.
    pub fn ec256(kid: &str) -> Self {
        Self::ec(
            kid,
            SignatureAlgorithm::ES256,
            &ring::signature::ECDSA_P256_SHA256_FIXED_SIGNING,
            "P-256",
        )
    }

    /// A fresh P-384 key for ES384.
    pub fn ec384(kid: &str) -> Self {
        Self::ec(
            kid,
            SignatureAlgorithm::ES384,
            &ring::signature::ECDSA_P384_SHA384_FIXED_SIGNING,
            "P-384",
        )
    }

    fn ec(
        kid: &str,
        alg: SignatureAlgorithm,
        signing: &'static ring::signature::EcdsaSigningAlgorithm,
        curve: &str,
    ) -> Self {
        use ring::signature::KeyPair as _;
        let rng = ring::rand::SystemRandom::new();
        let pkcs8 = ring::signature::EcdsaKeyPair::generate_pkcs8(signing, &rng).expect("EC key");
        let pair = ring::signature::EcdsaKeyPair::from_pkcs8(signing, pkcs8.as_ref(), &rng)
            .expect("ring EC key");
        let point = pair.public_key().as_ref().to_vec();
        let half = (point.len() - 1) / 2;
        Self {
            kid: kid.into(),
            alg,
            jwk: json!({
                "kty": "EC", "kid": kid, "use": "sig", "crv": curve,
                "x": b64(&point[1..1 + half]), "y": b64(&point[1 + half..]),
            }),
            secret: Secret::EcdsaKeyPair(Arc::new(pair)),
            public_bytes: point,
        }
    }

    /// The public JWK (with `alg` pinned when `pin_alg`).
    pub fn jwk(&self, pin_alg: bool) -> Value {
        let mut jwk = self.jwk.clone();
        if pin_alg {
            jwk["alg"] = json!(crate::auth::options::alg_name(self.alg));
        }
        jwk
    }

    /// Signs `claims` with this key, its algorithm and its `kid`.
    pub fn sign(&self, claims: &Value) -> String {
        self.sign_as(self.alg, Some(&self.kid), claims)
    }

    /// Signs with another algorithm of the same key family, or another (or no) `kid`.
    pub fn sign_as(&self, alg: SignatureAlgorithm, kid: Option<&str>, claims: &Value) -> String {
        sign_with(&self.secret, alg, kid, claims)
    }
}

/// Signs `claims` under a header `{alg, kid}` with any biscuit secret.
pub fn sign_with(
    secret: &Secret,
    alg: SignatureAlgorithm,
    kid: Option<&str>,
    claims: &Value,
) -> String {
    let claims: biscuit::ClaimsSet<Map<String, Value>> =
        serde_json::from_value(claims.clone()).expect("claims");
    let header = biscuit::jws::RegisteredHeader {
        algorithm: alg,
        key_id: kid.map(str::to_string),
        ..Default::default()
    };
    JWT::new_decoded(header.into(), claims)
        .into_encoded(secret)
        .expect("signing")
        .unwrap_encoded()
        .to_string()
}

/// A token with the given header and claims and a made-up signature (for claims biscuit cannot
/// even sign, such as timestamps out of range).
pub fn forged(header: &Value, claims: &Value) -> String {
    format!(
        "{}.{}.{}",
        b64(header.to_string().as_bytes()),
        b64(claims.to_string().as_bytes()),
        b64(b"not a signature")
    )
}

/// A token with the header `{"alg":"none"}` and no signature.
pub fn unsigned(claims: &Value) -> String {
    format!(
        "{}.{}.",
        b64(br#"{"alg":"none","typ":"JWT"}"#),
        b64(claims.to_string().as_bytes())
    )
}

struct State {
    keys: Mutex<Vec<Value>>,
    down: AtomicBool,
    jwks_fetches: AtomicU32,
    discovery_fetches: AtomicU32,
}

pub struct FakeIdp {
    server: MockServer,
    state: Arc<State>,
}

impl FakeIdp {
    /// Starts the provider with no keys published.
    pub async fn start() -> Self {
        let server = MockServer::builder()
            .listener(std::net::TcpListener::bind("127.0.0.1:0").expect("binding the fake IdP"))
            .start()
            .await;
        let state = Arc::new(State {
            keys: Mutex::new(vec![]),
            down: AtomicBool::new(false),
            jwks_fetches: AtomicU32::new(0),
            discovery_fetches: AtomicU32::new(0),
        });
        let issuer = server.uri();
        let s = state.clone();
        Mock::given(path("/.well-known/openid-configuration"))
            .respond_with(move |_: &Request| {
                s.discovery_fetches.fetch_add(1, Ordering::SeqCst);
                if s.down.load(Ordering::SeqCst) {
                    return ResponseTemplate::new(503);
                }
                ResponseTemplate::new(200).set_body_json(json!({
                    "issuer": issuer,
                    "jwks_uri": format!("{issuer}/jwks.json"),
                    "authorization_endpoint": format!("{issuer}/authorize"),
                    "id_token_signing_alg_values_supported": ["RS256", "ES256"],
                }))
            })
            .mount(&server)
            .await;
        // `/jwks.json` (the discovery document's), and `/.well-known/jwks.json` (where Auth0
        // and Clerk publish theirs).
        for jwks_path in ["/jwks.json", "/.well-known/jwks.json"] {
            let s = state.clone();
            Mock::given(path(jwks_path))
                .respond_with(move |_: &Request| {
                    s.jwks_fetches.fetch_add(1, Ordering::SeqCst);
                    if s.down.load(Ordering::SeqCst) {
                        return ResponseTemplate::new(503);
                    }
                    let keys = s.keys.lock().unwrap().clone();
                    ResponseTemplate::new(200).set_body_json(json!({ "keys": keys }))
                })
                .mount(&server)
                .await;
        }
        Self { server, state }
    }

    /// The issuer (`http://127.0.0.1:<port>`), also the discovery base.
    pub fn issuer(&self) -> String {
        self.server.uri()
    }

    pub fn jwks_url(&self) -> String {
        format!("{}/jwks.json", self.server.uri())
    }

    /// Replaces the published key set.
    pub fn publish(&self, keys: &[&SigningKey]) {
        *self.state.keys.lock().unwrap() = keys.iter().map(|k| k.jwk(false)).collect();
    }

    /// Replaces the published key set with raw JWKs.
    pub fn publish_raw(&self, keys: Vec<Value>) {
        *self.state.keys.lock().unwrap() = keys;
    }

    /// Every request answers 503 while down.
    pub fn set_down(&self, down: bool) {
        self.state.down.store(down, Ordering::SeqCst);
    }

    pub fn jwks_fetches(&self) -> u32 {
        self.state.jwks_fetches.load(Ordering::SeqCst)
    }

    pub fn discovery_fetches(&self) -> u32 {
        self.state.discovery_fetches.load(Ordering::SeqCst)
    }
}
