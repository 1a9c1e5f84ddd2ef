//! Token verification by every provider against a local identity provider on 127.0.0.1 that
//! serves discovery and a JWKS of keys generated here: the good token, and every way a token
//! can be wrong.

use std::{collections::BTreeMap, sync::OnceLock};

use biscuit::{jwa::SignatureAlgorithm, jws::Secret};
use boards_shared::{
    auth::{build_provider, AuthError, AuthProvider},
    testing::fake_idp::{forged, sign_with, unsigned, FakeIdp, SigningKey},
    Config,
};
use serde_json::{json, Value};

/// RSA generation takes a moment: two keys per test process, shared.
fn rsa_keys() -> &'static (SigningKey, SigningKey) {
    static KEYS: OnceLock<(SigningKey, SigningKey)> = OnceLock::new();
    KEYS.get_or_init(|| (SigningKey::rsa("rsa-1"), SigningKey::rsa("rsa-2")))
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

fn logger() -> slog::Logger {
    slog::Logger::root(slog::Discard, slog::o!())
}

fn provider(
    name: &str,
    options: Value,
    extra_env: &[(&str, &str)],
) -> std::sync::Arc<dyn AuthProvider> {
    let mut env = BTreeMap::from([
        ("BOARDS_AUTH_PROVIDER".to_string(), name.to_string()),
        ("BOARDS_AUTH_CONFIG".to_string(), options.to_string()),
        ("BOARDS_AUTH_LEEWAY_SECONDS".to_string(), "5".to_string()),
    ]);
    for (k, v) in extra_env {
        env.insert(k.to_string(), v.to_string());
    }
    let config = Config::load_from(&env).unwrap_or_else(|e| panic!("{name}: {e}"));
    build_provider(&config, &logger()).unwrap()
}

fn oidc(idp: &FakeIdp, extra: Value) -> std::sync::Arc<dyn AuthProvider> {
    let mut options = json!({"issuer": idp.issuer(), "client_id": "boards-web"});
    options
        .as_object_mut()
        .unwrap()
        .extend(extra.as_object().cloned().unwrap_or_default());
    provider("oidc", options, &[])
}

fn claims(idp: &FakeIdp) -> Value {
    json!({
        "iss": idp.issuer(), "aud": "boards-web", "sub": "user-1",
        "exp": now() + 600, "iat": now(), "email": "ann@example.com",
        "given_name": "Ann", "family_name": "Lee", "picture": "https://example.com/ann.png",
    })
}

fn with(mut base: Value, changes: Value) -> Value {
    for (k, v) in changes.as_object().unwrap() {
        if v.is_null() {
            base.as_object_mut().unwrap().remove(k);
        } else {
            base[k] = v.clone();
        }
    }
    base
}

async fn refused(p: &dyn AuthProvider, token: &str) -> String {
    match p.verify(token).await {
        Err(AuthError::Unauthenticated(m)) => m,
        other => panic!("expected a refusal for {token}, got {other:?}"),
    }
}

#[tokio::test]
async fn oidc_discovery_verifies_rsa_and_ec_tokens_and_maps_the_profile() {
    let idp = FakeIdp::start().await;
    let (rsa, _) = rsa_keys();
    let ec = SigningKey::ec256("ec-1");
    let ec384 = SigningKey::ec384("ec-2");
    idp.publish(&[rsa, &ec, &ec384]);
    let p = oidc(&idp, json!({}));

    for key in [rsa, &ec, &ec384] {
        let principal = p.verify(&key.sign(&claims(&idp))).await.unwrap();
        assert_eq!(principal.provider, "oidc");
        assert_eq!(principal.subject, "user-1");
        assert_eq!(principal.email.as_deref(), Some("ann@example.com"));
        assert_eq!(principal.display_name.as_deref(), Some("Ann Lee"));
        assert_eq!(
            principal.avatar_url.as_deref(),
            Some("https://example.com/ann.png")
        );
    }
    // RS384, RS512 and PS256 with the same RSA key.
    for alg in [
        SignatureAlgorithm::RS384,
        SignatureAlgorithm::RS512,
        SignatureAlgorithm::PS256,
    ] {
        let token = rsa.sign_as(alg, Some("rsa-1"), &claims(&idp));
        assert!(p.verify(&token).await.is_ok(), "{alg:?}");
    }
    assert_eq!(idp.discovery_fetches(), 1);
    assert_eq!(
        idp.jwks_fetches(),
        1,
        "the key set is fetched once and cached"
    );
}

#[tokio::test]
async fn every_kind_of_bad_token_is_refused() {
    let idp = FakeIdp::start().await;
    let (rsa, other) = rsa_keys();
    idp.publish(&[rsa]);
    let p = oidc(&idp, json!({}));
    let good = claims(&idp);

    let cases: Vec<(&str, String, &str)> = vec![
        (
            "expired",
            rsa.sign(&with(good.clone(), json!({"exp": now() - 60}))),
            "expired",
        ),
        (
            "not yet valid",
            rsa.sign(&with(good.clone(), json!({"nbf": now() + 600}))),
            "not valid yet",
        ),
        (
            "wrong issuer",
            rsa.sign(&with(good.clone(), json!({"iss": "https://evil.example"}))),
            "wrong issuer",
        ),
        (
            "no issuer",
            rsa.sign(&with(good.clone(), json!({"iss": null}))),
            "wrong issuer",
        ),
        (
            "wrong audience",
            rsa.sign(&with(good.clone(), json!({"aud": "someone-else"}))),
            "wrong audience",
        ),
        (
            "no audience",
            rsa.sign(&with(good.clone(), json!({"aud": null}))),
            "wrong audience",
        ),
        (
            "no exp",
            rsa.sign(&with(good.clone(), json!({"exp": null}))),
            "Missing 'exp'",
        ),
        (
            "no sub",
            rsa.sign(&with(good.clone(), json!({"sub": null}))),
            "Missing 'sub'",
        ),
        // Signed by a key the provider never published, under a published kid.
        (
            "wrong key",
            other.sign_as(SignatureAlgorithm::RS256, Some("rsa-1"), &good),
            "Invalid token",
        ),
        ("unknown kid", other.sign(&good), "unknown signing key"),
        ("alg none", unsigned(&good), "Invalid token"),
        // The classic confusion: HMAC keyed with the RSA public key.
        (
            "HS256 with the public key",
            sign_with(
                &Secret::Bytes(rsa.public_bytes.clone()),
                SignatureAlgorithm::HS256,
                Some("rsa-1"),
                &good,
            ),
            "algorithm HS256 is not accepted",
        ),
        (
            "malformed base64",
            "eyJhbGciOiJSUzI1NiJ9.!!!.abc".into(),
            "Invalid token",
        ),
        ("not a JWT", "garbage".into(), "Invalid token"),
        ("two parts", "a.b".into(), "Invalid token"),
        (
            "oversized",
            rsa.sign(&with(good.clone(), json!({"pad": "x".repeat(9000)}))),
            "larger than 8192 bytes",
        ),
        (
            "absurd exp",
            forged(
                &json!({"alg": "RS256", "kid": "rsa-1"}),
                &with(good.clone(), json!({"exp": i64::MAX})),
            ),
            "not a valid timestamp",
        ),
    ];
    for (what, token, expected) in &cases {
        let message = refused(p.as_ref(), token).await;
        assert!(message.contains(expected), "{what}: {message}");
    }
    // An RS256 key cannot verify an ES256 header and vice versa.
    let ec = SigningKey::ec256("rsa-1");
    let message = refused(p.as_ref(), &ec.sign(&good)).await;
    assert!(message.contains("Invalid token"), "{message}");
    // Tokens with unknown kids refetch at most once per interval.
    assert!(idp.jwks_fetches() <= 2, "fetches: {}", idp.jwks_fetches());
}

#[tokio::test]
async fn a_rotated_key_is_picked_up_without_a_restart_and_floods_do_not_hammer_the_idp() {
    let idp = FakeIdp::start().await;
    let (old, new) = rsa_keys();
    idp.publish(&[old]);
    let p = oidc(&idp, json!({"jwks_min_refresh_seconds": 1}));
    p.verify(&old.sign(&claims(&idp))).await.unwrap();
    assert_eq!(idp.jwks_fetches(), 1);

    // A flood of tokens with made-up kids: at most one refetch in the interval, and concurrent
    // refetches are single-flight.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let bogus: Vec<String> = (0..50)
        .map(|i| {
            new.sign_as(
                SignatureAlgorithm::RS256,
                Some(&format!("made-up-{i}")),
                &claims(&idp),
            )
        })
        .collect();
    let results = futures::future::join_all(bogus.iter().map(|t| p.verify(t))).await;
    assert!(results.iter().all(|r| r.is_err()));
    assert_eq!(idp.jwks_fetches(), 2, "one refetch for 50 unknown kids");

    // The provider rotates: the new kid is fetched on first sight, the old one still works
    // while published.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    idp.publish(&[old, new]);
    let principal = p.verify(&new.sign(&claims(&idp))).await.unwrap();
    assert_eq!(principal.subject, "user-1");
    assert_eq!(idp.jwks_fetches(), 3);
    p.verify(&old.sign(&with(claims(&idp), json!({"sub": "user-2"}))))
        .await
        .unwrap();
    assert_eq!(idp.jwks_fetches(), 3);
}

#[tokio::test]
async fn the_idp_being_down_does_not_fail_tokens_whose_key_is_cached() {
    let idp = FakeIdp::start().await;
    let (rsa, other) = rsa_keys();
    idp.publish(&[rsa]);
    // A short TTL so that the key set is stale while the provider is down.
    let p = oidc(
        &idp,
        json!({"jwks_cache_seconds": 1, "jwks_min_refresh_seconds": 1}),
    );
    p.verify(&rsa.sign(&claims(&idp))).await.unwrap();
    idp.set_down(true);
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    // A new token (not in the verification cache) with the stale cached key works, after one
    // failed refetch.
    let token = rsa.sign(&with(claims(&idp), json!({"sub": "user-3"})));
    assert_eq!(p.verify(&token).await.unwrap().subject, "user-3");
    assert_eq!(idp.jwks_fetches(), 2);
    // An unknown key cannot be fetched: refused, not an outage.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let message = refused(p.as_ref(), &other.sign(&claims(&idp))).await;
    assert!(message.contains("unknown signing key"), "{message}");

    // With nothing cached, a down IdP is "temporarily unavailable" (503), not "bad token".
    let fresh = FakeIdp::start().await;
    fresh.set_down(true);
    let p = oidc(&fresh, json!({}));
    match p.verify(&rsa.sign(&claims(&fresh))).await {
        Err(AuthError::Unavailable(m)) => assert!(m.contains("temporarily unavailable"), "{m}"),
        other => panic!("expected Unavailable, got {other:?}"),
    }
    // ...and stays so until the next attempt is due: a burst of tokens during the outage is
    // neither refused as bad tokens nor sent one by one to the provider.
    let burst = (0..20).map(|i| {
        let token = rsa.sign(&with(claims(&fresh), json!({"sub": format!("burst-{i}")})));
        let p = p.clone();
        async move { p.verify(&token).await }
    });
    for result in futures::future::join_all(burst).await {
        assert!(
            matches!(result, Err(AuthError::Unavailable(_))),
            "{result:?}"
        );
    }
    assert_eq!(fresh.discovery_fetches(), 1);
}

#[tokio::test]
async fn auth0_clerk_supabase_and_jwt_apply_their_own_rules() {
    let idp = FakeIdp::start().await;
    let (rsa, _) = rsa_keys();
    let ec = SigningKey::ec256("sb-1");
    idp.publish(&[rsa, &ec]);
    let iss = idp.issuer();

    // Auth0: issuer https://{domain}/ (overridden here for the local server), audience required.
    let auth0 = provider(
        "auth0",
        json!({"domain": "tenant.auth0.com", "audience": "https://api.boards", "issuer": format!("{iss}/"), "jwks_url": idp.jwks_url()}),
        &[],
    );
    let base = json!({"iss": format!("{iss}/"), "aud": ["https://api.boards", "https://tenant.auth0.com/userinfo"], "sub": "auth0|42", "exp": now() + 60, "nickname": "annie"});
    let principal = auth0.verify(&rsa.sign(&base)).await.unwrap();
    assert_eq!(
        (principal.provider.as_str(), principal.subject.as_str()),
        ("auth0", "auth0|42")
    );
    assert_eq!(principal.display_name.as_deref(), Some("annie"));
    assert!(refused(
        auth0.as_ref(),
        &rsa.sign(&with(base.clone(), json!({"iss": iss.clone()})))
    )
    .await
    .contains("wrong issuer"));
    assert!(refused(
        auth0.as_ref(),
        &rsa.sign(&with(base.clone(), json!({"aud": "other"})))
    )
    .await
    .contains("wrong audience"));
    // RS256 only by default: an ES256 token from the same JWKS is refused.
    assert!(refused(auth0.as_ref(), &ec.sign(&base))
        .await
        .contains("ES256 is not accepted"));

    // Clerk: issuer checked, azp checked when configured; no audience by default.
    let clerk = provider(
        "clerk",
        json!({"issuer": iss, "authorized_parties": ["https://app.example.com"]}),
        &[],
    );
    let base = json!({"iss": iss, "sub": "user_2abc", "exp": now() + 60, "azp": "https://app.example.com",
        "email_addresses": [{"email_address": "c@example.com"}], "first_name": "Cy", "last_name": "Ng", "image_url": "https://img/c.png"});
    let principal = clerk.verify(&rsa.sign(&base)).await.unwrap();
    assert_eq!(principal.provider, "clerk");
    assert_eq!(principal.email.as_deref(), Some("c@example.com"));
    assert_eq!(principal.display_name.as_deref(), Some("Cy Ng"));
    assert_eq!(principal.avatar_url.as_deref(), Some("https://img/c.png"));
    assert!(refused(
        clerk.as_ref(),
        &rsa.sign(&with(base.clone(), json!({"azp": "https://evil.example"})))
    )
    .await
    .contains("azp"));
    assert!(refused(
        clerk.as_ref(),
        &rsa.sign(&with(base.clone(), json!({"azp": null})))
    )
    .await
    .contains("azp"));
    assert!(refused(
        clerk.as_ref(),
        &rsa.sign(&with(base.clone(), json!({"iss": "https://other.clerk"})))
    )
    .await
    .contains("wrong issuer"));

    // Supabase with the project's JWKS (ES256), issuer {url}/auth/v1, audience `authenticated`.
    let supabase = provider(
        "supabase",
        json!({"url": iss, "jwks_url": idp.jwks_url()}),
        &[],
    );
    let base = json!({"iss": format!("{iss}/auth/v1"), "aud": "authenticated", "sub": "8d2c", "exp": now() + 60,
        "email": "s@example.com", "role": "authenticated", "user_metadata": {"full_name": "Sam", "avatar_url": "https://img/s.png"}});
    let principal = supabase.verify(&ec.sign(&base)).await.unwrap();
    assert_eq!(principal.provider, "supabase");
    assert_eq!(principal.display_name.as_deref(), Some("Sam"));
    assert_eq!(principal.avatar_url.as_deref(), Some("https://img/s.png"));
    assert!(refused(
        supabase.as_ref(),
        &ec.sign(&with(base.clone(), json!({"aud": "anon"})))
    )
    .await
    .contains("wrong audience"));

    // Supabase with the project's JWT secret (HS256), from the environment.
    let supabase = provider(
        "supabase",
        json!({}),
        &[
            ("BOARDS_SUPABASE_URL", "https://abc.supabase.co"),
            (
                "BOARDS_SUPABASE_JWT_SECRET",
                "super-secret-jwt-token-with-at-least-32-characters",
            ),
        ],
    );
    let secret = Secret::Bytes(b"super-secret-jwt-token-with-at-least-32-characters".to_vec());
    let base = with(base, json!({"iss": "https://abc.supabase.co/auth/v1"}));
    let token = sign_with(&secret, SignatureAlgorithm::HS256, None, &base);
    assert_eq!(supabase.verify(&token).await.unwrap().subject, "8d2c");
    // An RS256 token cannot be passed off to a shared-secret provider.
    assert!(refused(supabase.as_ref(), &rsa.sign(&base))
        .await
        .contains("RS256 is not accepted"));

    // jwt: HS384 when configured; HS256 tokens then refused.
    let jwt = provider(
        "jwt",
        json!({"secret_key": "k", "algorithms": ["HS384"]}),
        &[],
    );
    let base = json!({"iss": "boards", "aud": "boards-api", "sub": "u", "exp": now() + 60});
    let k = Secret::Bytes(b"k".to_vec());
    assert!(jwt
        .verify(&sign_with(&k, SignatureAlgorithm::HS384, None, &base))
        .await
        .is_ok());
    assert!(refused(
        jwt.as_ref(),
        &sign_with(&k, SignatureAlgorithm::HS256, None, &base)
    )
    .await
    .contains("HS256 is not accepted"));
    // jwt with a JWKS (the deployment's own asymmetric keys).
    let jwt = provider("jwt", json!({"jwks_url": idp.jwks_url()}), &[]);
    assert!(jwt.verify(&rsa.sign(&base)).await.is_ok());
}

#[test]
fn misconfigured_providers_are_refused_at_startup_naming_the_option() {
    let load = |provider: &str, options: Value, env: &[(&str, &str)]| {
        let mut map = BTreeMap::from([
            ("BOARDS_AUTH_PROVIDER".to_string(), provider.to_string()),
            ("BOARDS_AUTH_CONFIG".to_string(), options.to_string()),
        ]);
        for (k, v) in env {
            map.insert(k.to_string(), v.to_string());
        }
        Config::load_from(&map)
            .map(|_| ())
            .map_err(|e| e.to_string())
    };
    type Case<'a> = (&'a str, Value, Vec<(&'a str, &'a str)>, &'a str);
    let cases: Vec<Case> = vec![
        ("ldap", json!({}), vec![], "unknown provider `ldap`"),
        (
            "oidc",
            json!({"client_id": "x"}),
            vec![],
            "auth.config.issuer",
        ),
        (
            "oidc",
            json!({"issuer": "not a url", "client_id": "x"}),
            vec![],
            "auth.config.issuer",
        ),
        (
            "oidc",
            json!({"issuer": "https://id.example"}),
            vec![],
            "auth.config.client_id",
        ),
        (
            "oidc",
            json!({"issuer": "https://id.example", "client_id": "x", "algorithms": ["HS256"]}),
            vec![],
            "cannot be used",
        ),
        (
            "oidc",
            json!({"issuer": "https://id.example", "client_id": "x", "algorithms": ["none"]}),
            vec![],
            "not a JWS signature algorithm",
        ),
        (
            "auth0",
            json!({"domain": "x.auth0.com"}),
            vec![],
            "auth.config.audience",
        ),
        ("clerk", json!({}), vec![], "auth.config.issuer"),
        ("supabase", json!({}), vec![], "auth.config.url"),
        ("jwt", json!({}), vec![], "auth.config.secret_key"),
        (
            "jwt",
            json!({"secret_key": "k", "algorithm": "RS256"}),
            vec![],
            "cannot be used",
        ),
        (
            "none",
            json!({}),
            vec![("ENVIRONMENT", "production")],
            "auth.provider",
        ),
        (
            "none",
            json!({}),
            vec![("BOARDS_ENVIRONMENT", "prod")],
            "auth.provider",
        ),
    ];
    for (provider, options, env, expected) in cases {
        let e = load(provider, options.clone(), &env).unwrap_err();
        assert!(e.contains(expected), "{provider} {options}: {e}");
    }
    // The original's environment variables still work.
    assert!(load(
        "auth0",
        json!({}),
        &[("AUTH0_DOMAIN", "x.auth0.com"), ("AUTH0_AUDIENCE", "api")]
    )
    .is_ok());
    assert!(load(
        "oidc",
        json!({}),
        &[
            ("OIDC_ISSUER", "https://id.example"),
            ("OIDC_CLIENT_ID", "c")
        ]
    )
    .is_ok());
    assert!(load(
        "clerk",
        json!({}),
        &[("CLERK_ISSUER", "https://clerk.example.com")]
    )
    .is_ok());
}
