//! Self-service tenant registration (contract §3.8) without the original's takeover: the caller
//! becomes the new tenant's admin, existing slugs are refused, the per-user limit and approval
//! are enforced.

use reqwest::Method;
use serde_json::{json, Value};

use crate::{
    tenants::{multi_tenant, rest, ADMIN_TOKEN},
    util::{error_of, Options, TestApp},
};

async fn register(app: &TestApp, token: Option<&str>, body: Value) -> (u16, Value) {
    rest(
        app,
        Method::POST,
        "/api/tenants/register",
        token,
        Some("default"),
        Some(body),
    )
    .await
}

fn org(name: &str, slug: &str) -> Value {
    json!({"organization_name": name, "organization_slug": slug, "admin_email": "Boss@Acme.io"})
}

#[tokio::test]
async fn registration_needs_multi_tenant_mode_and_a_signed_in_caller() {
    let single = TestApp::spawn().await;
    let token = single.token("alice");
    let (status, res) = register(&single, Some(&token), org("Acme", "acme")).await;
    assert_eq!(
        (status, res["detail"].clone()),
        (
            400,
            json!("Tenant registration is only available in multi-tenant mode")
        )
    );
    let (_, status_body) = rest(
        &single,
        Method::GET,
        "/api/tenants/registration/status",
        None,
        None,
        None,
    )
    .await;
    assert_eq!(
        status_body,
        json!({"enabled": false, "requires_approval": false, "max_tenants_per_user": null, "allowed_domains": null})
    );

    let app = multi_tenant(Options::default()).await;
    let (status, res) = register(&app, None, org("Acme", "acme")).await;
    assert_eq!(
        (status, res["detail"].clone()),
        (
            401,
            json!("Authentication required for tenant registration")
        )
    );
    let token = app.token("alice");
    let (status, _) = register(&app, Some(&token), json!({"organization_name": "Acme"})).await;
    assert_eq!(status, 422, "admin_email is required");
    let (status, _) = register(
        &app,
        Some(&token),
        json!({"organization_name": "Acme", "admin_email": "not-an-email"}),
    )
    .await;
    assert_eq!(status, 422);
}

#[tokio::test]
async fn the_registrant_becomes_the_admin_and_can_use_the_tenant() {
    let app = multi_tenant(
        Options::default().env("BOARDS_FRONTEND_BASE_URL", "https://boards.example.com/"),
    )
    .await;
    let alice = app.token("alice");
    let (status, res) = register(
        &app,
        Some(&alice),
        json!({"organization_name": "Acme Corp!", "admin_email": "Boss@Acme.io", "organization_size": "Large"}),
    )
    .await;
    assert_eq!(status, 200, "{res}");
    assert_eq!(res["tenant_slug"], "acme-corp");
    assert_eq!(res["status"], "active");
    assert_eq!(res["organization_name"], "Acme Corp!");
    assert_eq!(
        res["dashboard_url"],
        "https://boards.example.com/?tenant=acme-corp"
    );
    assert_eq!(res["api_access"]["tenant_header"], "X-Tenant: acme-corp");
    let id = res["tenant_id"].as_str().unwrap().to_string();

    // The caller can now use the tenant, and administers it.
    let me = app
        .gql_full(
            Some(&alice),
            Some("acme-corp"),
            "{ me { id tenantId } }",
            json!({}),
        )
        .await;
    assert_eq!(me["data"]["me"]["tenantId"], id.as_str(), "{me}");
    let (status, members) = rest(
        &app,
        Method::GET,
        &format!("/api/tenants/{id}/members"),
        Some(&alice),
        None,
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(members["members"][0]["auth_subject"], "alice");
    assert_eq!(members["members"][0]["role"], "admin");
    let (_, tenant) = rest(
        &app,
        Method::GET,
        &format!("/api/setup/tenant/{id}"),
        Some(&alice),
        None,
        None,
    )
    .await;
    assert_eq!(tenant["settings"]["admin_email"], "boss@acme.io");
    assert_eq!(tenant["settings"]["organization_size"], "large");
    assert!(tenant["settings"]["registered_by"].is_string());

    // An existing slug is refused, not handed over (the original returned its id).
    let bob = app.token("bob");
    let (status, res) = register(&app, Some(&bob), org("Acme again", "acme-corp")).await;
    assert_eq!(
        (status, res["detail"].clone()),
        (409, json!("A tenant with slug 'acme-corp' already exists"))
    );
    let res = app
        .gql_full(Some(&bob), Some("acme-corp"), "{ me { id } }", json!({}))
        .await;
    assert_eq!(error_of(&res).1, "FORBIDDEN");
}

#[tokio::test]
async fn allowed_domains_and_the_per_user_limit_are_enforced() {
    let app = multi_tenant(
        Options::default()
            .env(
                "BOARDS_TENANT_REGISTRATION_ALLOWED_DOMAINS",
                r#"["acme.io"]"#,
            )
            .env("BOARDS_TENANT_REGISTRATION_MAX_PER_USER", "1"),
    )
    .await;
    let (_, status_body) = rest(
        &app,
        Method::GET,
        "/api/tenants/registration/status",
        None,
        Some("default"),
        None,
    )
    .await;
    assert_eq!(
        status_body,
        json!({"enabled": true, "requires_approval": false, "max_tenants_per_user": 1, "allowed_domains": ["acme.io"]})
    );
    let alice = app.token("alice");
    let mut body = org("Elsewhere", "elsewhere");
    body["admin_email"] = json!("boss@other.org");
    let (status, res) = register(&app, Some(&alice), body).await;
    assert_eq!(
        (status, res["detail"].clone()),
        (
            400,
            json!("Email domain 'other.org' is not allowed for registration")
        )
    );
    let (status, first) = register(&app, Some(&alice), org("First", "first")).await;
    assert_eq!(status, 200);
    let limited = |res: &Value| {
        assert_eq!(
            res["detail"], "You have already registered 1 tenant(s); the limit per user is 1",
            "{res}"
        );
    };
    let (status, res) = register(&app, Some(&alice), org("Second", "second")).await;
    assert_eq!(status, 403, "{res}");
    limited(&res);
    // Handing the tenant to another admin and stepping down does not free the quota.
    let members = format!(
        "/api/tenants/{}/members",
        first["tenant_id"].as_str().unwrap()
    );
    let (status, _) = rest(
        &app,
        Method::POST,
        &members,
        Some(&alice),
        None,
        Some(json!({"auth_subject": "ghost", "role": "admin"})),
    )
    .await;
    assert_eq!(status, 201);
    let (status, _) = rest(
        &app,
        Method::DELETE,
        &format!("{members}/alice"),
        Some(&alice),
        None,
        None,
    )
    .await;
    assert_eq!(status, 200);
    let (status, res) = register(&app, Some(&alice), org("Second", "second")).await;
    assert_eq!(status, 403, "{res}");
    limited(&res);
    // Someone else still may.
    let bob = app.token("bob");
    let (status, _) = register(&app, Some(&bob), org("Second", "second")).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn a_registration_pending_approval_is_unusable_until_the_operator_approves_it() {
    let app = multi_tenant(
        Options::default().env("BOARDS_TENANT_REGISTRATION_REQUIRES_APPROVAL", "true"),
    )
    .await;
    let alice = app.token("alice");
    let (status, res) = register(&app, Some(&alice), org("Acme", "acme")).await;
    assert_eq!(status, 200, "{res}");
    assert_eq!(res["status"], "pending_approval");
    let id = res["tenant_id"].as_str().unwrap().to_string();

    // Not even its admin can use it yet; anonymous callers cannot either.
    let me = app
        .gql_full(Some(&alice), Some("acme"), "{ me { id } }", json!({}))
        .await;
    assert_eq!(
        error_of(&me),
        (
            "Tenant 'acme' is pending approval and cannot be used yet".into(),
            "FORBIDDEN".into()
        )
    );
    let anon = app
        .gql_full(None, Some("acme"), "{ me { id } }", json!({}))
        .await;
    assert_eq!(error_of(&anon).1, "FORBIDDEN");
    // Its admin cannot approve it; the operator can.
    let approve = format!("/api/setup/tenant/{id}/approve");
    let (status, _) = rest(&app, Method::POST, &approve, Some(&alice), None, None).await;
    assert_eq!(status, 403);
    let (status, res) = rest(&app, Method::POST, &approve, Some(ADMIN_TOKEN), None, None).await;
    assert_eq!((status, res["status"].clone()), (200, json!("active")));
    let me = app
        .gql_full(Some(&alice), Some("acme"), "{ me { tenantId } }", json!({}))
        .await;
    assert_eq!(me["data"]["me"]["tenantId"], id.as_str(), "{me}");
}
