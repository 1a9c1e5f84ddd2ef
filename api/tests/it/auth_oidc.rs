//! The API with a real OIDC provider (a local identity provider on 127.0.0.1 with keys generated
//! here): sign-in, refusals on REST and GraphQL, key rotation without a restart, and the
//! identity provider going down.

use std::sync::OnceLock;

use biscuit::jwa::SignatureAlgorithm;
use boards_shared::testing::fake_idp::{unsigned, FakeIdp, SigningKey};
use serde_json::{json, Value};

use crate::util::{error_of, Options, TestApp};

const ME: &str = "{ me { id email displayName authProvider authSubject } }";

fn keys() -> &'static (SigningKey, SigningKey) {
    static KEYS: OnceLock<(SigningKey, SigningKey)> = OnceLock::new();
    KEYS.get_or_init(|| (SigningKey::rsa("api-1"), SigningKey::rsa("api-2")))
}

fn claims(idp: &FakeIdp, sub: &str) -> Value {
    let now = chrono::Utc::now().timestamp();
    json!({"iss": idp.issuer(), "aud": "boards-web", "sub": sub, "exp": now + 600,
        "email": format!("{sub}@example.com"), "name": format!("User {sub}")})
}

async fn app_with(idp: &FakeIdp) -> TestApp {
    let options = json!({"issuer": idp.issuer(), "client_id": "boards-web",
        "jwks_cache_seconds": 1, "jwks_min_refresh_seconds": 1});
    TestApp::spawn_with(
        Options::default()
            .env("BOARDS_AUTH_PROVIDER", "oidc")
            .env("BOARDS_AUTH_CONFIG", options.to_string()),
    )
    .await
}

async fn sse_status(app: &TestApp, token: &str) -> (u16, Option<String>) {
    let res = app
        .client
        .get(app.url(&format!(
            "/api/sse/generations/{}/progress",
            uuid::Uuid::new_v4()
        )))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    let challenge = res
        .headers()
        .get("www-authenticate")
        .map(|v| v.to_str().unwrap().to_string());
    (res.status().as_u16(), challenge)
}

#[tokio::test]
async fn oidc_users_sign_in_and_bad_tokens_are_refused_on_rest_and_graphql() {
    let idp = FakeIdp::start().await;
    let (key, stranger) = keys();
    idp.publish(&[key]);
    let app = app_with(&idp).await;

    let token = key.sign(&claims(&idp, "oidc-ann"));
    let me = app.ok(Some(&token), ME, json!({})).await;
    assert_eq!(me["me"]["authProvider"], "oidc");
    assert_eq!(me["me"]["authSubject"], "oidc-ann");
    assert_eq!(me["me"]["email"], "oidc-ann@example.com");
    assert_eq!(me["me"]["displayName"], "User oidc-ann");
    // A good token passes authentication on REST (the generation does not exist: 404).
    assert_eq!(sse_status(&app, &token).await.0, 404);

    let now = chrono::Utc::now().timestamp();
    let bad = [
        key.sign(&json!({"iss": idp.issuer(), "aud": "boards-web", "sub": "x", "exp": now - 120})),
        key.sign(&json!({"iss": "https://evil", "aud": "boards-web", "sub": "x", "exp": now + 60})),
        key.sign(&json!({"iss": idp.issuer(), "aud": "other", "sub": "x", "exp": now + 60})),
        stranger.sign_as(SignatureAlgorithm::RS256, Some("api-1"), &claims(&idp, "x")),
        unsigned(&claims(&idp, "x")),
        "not.a.token".to_string(),
    ];
    for token in &bad {
        let res = app.gql(Some(token), ME, json!({})).await;
        assert_eq!(error_of(&res).1, "UNAUTHENTICATED", "{token}: {res}");
        let (status, challenge) = sse_status(&app, token).await;
        assert_eq!(status, 401, "{token}");
        assert_eq!(challenge.as_deref(), Some("Bearer"));
    }
    // No token at all: anonymous on GraphQL.
    assert!(app.ok(None, ME, json!({})).await["me"].is_null());
}

#[tokio::test]
async fn a_rotated_key_works_without_a_restart_and_a_cached_key_survives_the_idp_going_down() {
    let idp = FakeIdp::start().await;
    let (old, new) = keys();
    idp.publish(&[old]);
    let app = app_with(&idp).await;
    app.ok(Some(&old.sign(&claims(&idp, "rot-1"))), ME, json!({}))
        .await;

    // The provider rotates to a new key; the running API picks it up on first sight.
    idp.publish(&[new]);
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let me = app
        .ok(Some(&new.sign(&claims(&idp, "rot-2"))), ME, json!({}))
        .await;
    assert_eq!(me["me"]["authSubject"], "rot-2");

    // Down: tokens signed with the cached key still work (a stale key set is kept).
    idp.set_down(true);
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let me = app
        .ok(Some(&new.sign(&claims(&idp, "rot-3"))), ME, json!({}))
        .await;
    assert_eq!(me["me"]["authSubject"], "rot-3");
}
