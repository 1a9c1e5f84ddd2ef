//! Identity: providers, verification failures, tenants and just-in-time provisioning.

use boards_shared::db::models::tenants;
use serde_json::json;

use crate::util::{error_of, Options, TestApp};

const ME: &str = "{ me { id email displayName avatarUrl tenantId authProvider authSubject } }";

#[tokio::test]
async fn no_token_means_anonymous() {
    let app = TestApp::spawn().await;
    let data = app.ok(None, ME, json!({})).await;
    assert!(data["me"].is_null());
}

#[tokio::test]
async fn a_valid_token_provisions_the_user_once() {
    let app = TestApp::spawn().await;
    let token = app.token_with("alice", json!({"picture": "https://img/alice.png"}));
    let first = app.ok(Some(&token), ME, json!({})).await;
    let second = app.ok(Some(&token), ME, json!({})).await;
    assert_eq!(first["me"]["id"], second["me"]["id"]);
    assert_eq!(first["me"]["email"], "alice@example.com");
    assert_eq!(first["me"]["displayName"], "User alice");
    assert_eq!(first["me"]["avatarUrl"], "https://img/alice.png");
    assert_eq!(first["me"]["authProvider"], "jwt");
    assert_eq!(first["me"]["authSubject"], "alice");
}

#[tokio::test]
async fn concurrent_first_requests_provision_one_user() {
    let app = TestApp::spawn().await;
    let token = app.token("racer");
    let requests = (0..16).map(|_| app.ok(Some(&token), "{ me { id } }", json!({})));
    let results = futures::future::join_all(requests).await;
    let ids: std::collections::HashSet<String> = results
        .iter()
        .map(|d| d["me"]["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(ids.len(), 1, "{results:?}");
}

#[tokio::test]
async fn blank_profile_fields_are_filled_but_never_overwritten() {
    let app = TestApp::spawn().await;
    let bare = app.token_with("bob", json!({"email": null, "name": null}));
    let data = app.ok(Some(&bare), ME, json!({})).await;
    assert!(data["me"]["email"].is_null());
    let full = app.token_with("bob", json!({"email": "bob@x.io", "name": "Bob"}));
    let data = app.ok(Some(&full), ME, json!({})).await;
    assert_eq!(data["me"]["email"], "bob@x.io");
    let other = app.token_with("bob", json!({"email": "changed@x.io", "name": "Robert"}));
    let data = app.ok(Some(&other), ME, json!({})).await;
    assert_eq!(data["me"]["email"], "bob@x.io");
    assert_eq!(data["me"]["displayName"], "Bob");
}

#[tokio::test]
async fn tokens_that_fail_verification_are_refused_not_anonymous() {
    let app = TestApp::spawn().await;
    let expired = {
        let mut claims = json!({"iss": "boards", "aud": "boards-api", "sub": "x", "exp": 1});
        claims["exp"] = json!(chrono::Utc::now().timestamp() - 3600);
        app.token_with("x", claims)
    };
    for (header, message) in [
        ("Bearer garbage".to_string(), "Invalid token"),
        (format!("Bearer {expired}"), "Invalid token: expired"),
        (
            "Token abc".to_string(),
            "Invalid authorization format. Expected: Bearer <token>",
        ),
        ("Bearer ".to_string(), "Empty token"),
    ] {
        let res: serde_json::Value = app
            .client
            .post(app.url("/graphql"))
            .header("Authorization", header.clone())
            .json(&json!({"query": "{ publicBoards { id } }"}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(
            error_of(&res),
            (message.to_string(), "UNAUTHENTICATED".to_string()),
            "{header}: {res}"
        );
        assert!(res["data"].is_null());
    }
}

#[tokio::test]
async fn a_token_without_sub_is_refused() {
    let app = TestApp::spawn().await;
    let token = app.token_with("x", json!({"sub": null}));
    let res = app.gql(Some(&token), ME, json!({})).await;
    assert_eq!(
        error_of(&res),
        (
            "Missing 'sub' claim in token".into(),
            "UNAUTHENTICATED".into()
        )
    );
}

#[tokio::test]
async fn the_none_provider_makes_everyone_the_development_user() {
    let app = TestApp::spawn_with(Options {
        no_auth: true,
        ..Default::default()
    })
    .await;
    let anonymous = app.ok(None, ME, json!({})).await;
    let with_token = app.ok(Some("anything"), ME, json!({})).await;
    assert_eq!(anonymous["me"]["id"], with_token["me"]["id"]);
    assert_eq!(anonymous["me"]["authSubject"], "dev-user");
    assert_eq!(anonymous["me"]["email"], "dev@example.com");
    assert_eq!(anonymous["me"]["displayName"], "Development User");
}

#[tokio::test]
async fn single_tenant_mode_ignores_x_tenant() {
    let app = TestApp::spawn().await;
    let token = app.token("alice");
    let a = app.gql_full(Some(&token), None, ME, json!({})).await;
    let b = app
        .gql_full(Some(&token), Some("elsewhere"), ME, json!({}))
        .await;
    assert_eq!(a["data"]["me"]["id"], b["data"]["me"]["id"]);
}

#[tokio::test]
async fn multi_tenant_mode_requires_and_checks_the_tenant() {
    let app = TestApp::spawn_with(Options::default().env("BOARDS_MULTI_TENANT_MODE", "true")).await;
    let mut conn = app.db.connect().await.unwrap();
    let acme = tenants::ensure(&mut conn, "acme", "Acme").await.unwrap();

    // Missing header: 400 from the tenant middleware.
    let res = app
        .client
        .post(app.url("/graphql"))
        .json(&json!({"query": "{ me { id } }"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["error"], "Missing X-Tenant header");
    // Malformed header.
    let res = app
        .client
        .post(app.url("/graphql"))
        .header("X-Tenant", "Not Valid")
        .json(&json!({"query": "{ me { id } }"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    // Unknown tenants are not created implicitly.
    let token = app.token("alice");
    let res = app
        .gql_full(Some(&token), Some("nosuch"), ME, json!({}))
        .await;
    assert_eq!(
        error_of(&res),
        ("Unknown tenant 'nosuch'".into(), "BAD_USER_INPUT".into())
    );
    // A known tenant provisions a member there (tests/it/tenants.rs covers non-members).
    crate::util::fixtures::sql(
        &app,
        &format!(
            "INSERT INTO boards.tenant_members (tenant_id, auth_provider, auth_subject, role)
             VALUES ('{}', 'jwt', 'alice', 'member')",
            acme.id
        ),
    )
    .await;
    let data = app
        .gql_full(Some(&token), Some("acme"), ME, json!({}))
        .await;
    assert_eq!(data["data"]["me"]["tenantId"], acme.id.to_string());
    // A token's tenant claim names the caller's tenant; naming another one in the header needs
    // a membership there.
    let claimed = app.token_with("bob", json!({"tenant": "acme"}));
    let data = app
        .gql_full(Some(&claimed), Some("acme"), ME, json!({}))
        .await;
    assert_eq!(data["data"]["me"]["tenantId"], acme.id.to_string());
    let res = app
        .gql_full(Some(&claimed), Some("default"), ME, json!({}))
        .await;
    assert_eq!(error_of(&res).1, "FORBIDDEN");
    // An invalid tenant claim fails authentication.
    let bad = app.token_with("carol", json!({"tenant": "Bad Claim"}));
    let res = app
        .gql_full(Some(&bad), Some("default"), ME, json!({}))
        .await;
    assert_eq!(error_of(&res).1, "UNAUTHENTICATED");
    // Health stays outside the tenant rules.
    let res = app.client.get(app.url("/health")).send().await.unwrap();
    assert_eq!(res.status(), 200);
}

#[tokio::test]
async fn auto_created_tenants_can_be_enabled_for_compatibility() {
    let app = TestApp::spawn_with(
        Options::default()
            .env("BOARDS_MULTI_TENANT_MODE", "true")
            .env("BOARDS_AUTO_CREATE_TENANTS", "true"),
    )
    .await;
    let token = app.token("alice");
    let res = app
        .gql_full(Some(&token), Some("fresh"), ME, json!({}))
        .await;
    assert!(res["data"]["me"]["id"].is_string(), "{res}");
}

#[tokio::test]
async fn a_signed_token_whose_claims_the_users_table_cannot_hold_is_unauthenticated() {
    let app = TestApp::spawn().await;
    let long = "x".repeat(300);
    for (claims, why) in [
        (
            json!({"sub": long}),
            "the subject is longer than 255 characters",
        ),
        (
            json!({"email": format!("{long}@example.com")}),
            "the e-mail address is longer than 255 characters",
        ),
        (
            json!({"name": long}),
            "the display name is longer than 255 characters",
        ),
        (
            json!({"sub": "nul\u{0}sub"}),
            "claims must not contain NUL characters",
        ),
        (
            json!({"email": "a\u{0}@example.com"}),
            "claims must not contain NUL characters",
        ),
        (
            json!({"team": {"name": "x\u{0}"}}),
            "claims must not contain NUL characters",
        ),
    ] {
        let token = app.token_with("claimant", claims.clone());
        let res = app.gql(Some(&token), ME, json!({})).await;
        assert_eq!(
            error_of(&res),
            (format!("Invalid token: {why}"), "UNAUTHENTICATED".into()),
            "{claims}: {res}"
        );
        // REST answers 401 with the same message.
        let res = app
            .client
            .get(app.url(&format!(
                "/api/sse/generations/{}/progress",
                uuid::Uuid::new_v4()
            )))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 401, "{claims}");
        let body: serde_json::Value = res.json().await.unwrap();
        assert_eq!(body["detail"], format!("Invalid token: {why}"), "{claims}");
    }
    // Nothing was provisioned.
    let token = app.token("claimant");
    let data = app.ok(Some(&token), ME, json!({})).await;
    assert_eq!(data["me"]["authSubject"], "claimant");
}

#[tokio::test]
async fn a_token_without_exp_is_refused_unless_the_provider_allows_it() {
    let app = TestApp::spawn().await;
    let token = app.token_with("forever", json!({"exp": null}));
    let res = app.gql(Some(&token), ME, json!({})).await;
    assert_eq!(
        error_of(&res),
        (
            "Missing 'exp' claim in token".into(),
            "UNAUTHENTICATED".into()
        ),
        "{res}"
    );

    let lenient = TestApp::spawn_with(
        Options::default().env("BOARDS_AUTH_CONFIG", r#"{"require_exp": false}"#),
    )
    .await;
    let token = lenient.token_with("forever", json!({"exp": null}));
    let data = lenient.ok(Some(&token), ME, json!({})).await;
    assert_eq!(data["me"]["authSubject"], "forever");
}
