//! `/api/setup` (contract §3.7) behind the admin credential: the operator administers every
//! tenant, a tenant admin only their own, anyone else nothing; `/status` stays public and
//! creates nothing.

use reqwest::Method;
use serde_json::{json, Value};

use crate::{
    tenants::{add_member, create_tenant, multi_tenant, rest, ADMIN_TOKEN},
    util::{error_of, fixtures, Options, TestApp},
};

const NIL: &str = "00000000-0000-0000-0000-000000000000";

async fn call(
    app: &TestApp,
    method: Method,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> (u16, Value) {
    rest(app, method, path, token, None, body).await
}

#[tokio::test]
async fn setup_status_is_public_and_creates_nothing() {
    let app = TestApp::spawn().await;
    let (status, body) = call(&app, Method::GET, "/api/setup/status", None, None).await;
    assert_eq!(status, 200);
    assert_eq!(body["has_default_tenant"], true);
    assert_eq!(body["setup_needed"], false);
    assert_eq!(body["default_tenant_slug"], "default");
    assert_eq!(body["multi_tenant_mode"], false);
    assert_eq!(body["auth_provider"], "jwt");
    assert!(body["default_tenant_id"].is_string());

    fixtures::sql(&app, "DELETE FROM boards.tenants WHERE slug = 'default'").await;
    let (status, body) = call(&app, Method::GET, "/api/setup/status", None, None).await;
    assert_eq!(status, 200);
    assert_eq!(body["has_default_tenant"], false);
    assert_eq!(body["setup_needed"], true);
    assert!(body["default_tenant_id"].is_null());
    let n = fixtures::count(&app, "SELECT count(*) AS n FROM boards.tenants").await;
    assert_eq!(
        n, 0,
        "the status endpoint must not create the default tenant"
    );
}

#[tokio::test]
async fn setup_routes_refuse_missing_wrong_and_insufficient_credentials() {
    let app = multi_tenant(Options::default()).await;
    let acme = create_tenant(&app, "acme").await;
    let tenant = format!("/api/setup/tenant/{acme}");
    let routes: Vec<(Method, &str, Option<Value>)> = vec![
        (
            Method::POST,
            "/api/setup/tenant",
            Some(json!({"name": "X", "slug": "x"})),
        ),
        (Method::GET, "/api/setup/tenants", None),
        (Method::GET, &tenant, None),
        (Method::PUT, &tenant, Some(json!({"name": "Renamed"}))),
        (Method::DELETE, &tenant, None),
    ];
    let stranger = app.token("mallory");
    for (method, path, body) in &routes {
        // No credentials.
        let (status, res) = call(&app, method.clone(), path, None, body.clone()).await;
        assert_eq!(
            (status, res.clone()),
            (
                401,
                json!({"detail": "Authentication required", "code": "UNAUTHENTICATED"})
            ),
            "{method} {path}"
        );
        // A wrong admin token is a bad credential, not an identity.
        let (status, _) = call(
            &app,
            method.clone(),
            path,
            Some("operator-secret-token-012345678X"),
            body.clone(),
        )
        .await;
        assert_eq!(status, 401, "{method} {path}");
    }
    // A valid identity that administers nothing.
    for (method, path, body) in &routes {
        let (status, res) = call(&app, method.clone(), path, Some(&stranger), body.clone()).await;
        if path == &"/api/setup/tenants" {
            assert_eq!((status, res["total_count"].clone()), (200, json!(0)));
        } else {
            assert_eq!(status, 403, "{method} {path}: {res}");
            assert_eq!(res["code"], "FORBIDDEN");
        }
    }
    // Nothing changed.
    let (status, res) = call(&app, Method::GET, &tenant, Some(ADMIN_TOKEN), None).await;
    assert_eq!((status, res["name"].clone()), (200, json!("Tenant acme")));
    assert_eq!(
        fixtures::count(
            &app,
            "SELECT count(*) AS n FROM boards.tenants WHERE slug = 'x'"
        )
        .await,
        0
    );
}

#[tokio::test]
async fn the_admin_token_administers_every_tenant() {
    let app = TestApp::spawn_with(Options::default().env("BOARDS_ADMIN_TOKEN", ADMIN_TOKEN)).await;
    let admin = Some(ADMIN_TOKEN);
    // Create, then ensure again (returned unchanged).
    let (status, created) = call(
        &app,
        Method::POST,
        "/api/setup/tenant",
        admin,
        Some(json!({"name": "Acme", "slug": "acme", "settings": {"plan": "pro"}})),
    )
    .await;
    assert_eq!(status, 200, "{created}");
    assert_eq!(created["message"], "Tenant created successfully");
    assert_eq!(created["existing"], false);
    let id = created["tenant_id"].as_str().unwrap().to_string();
    let (_, again) = call(
        &app,
        Method::POST,
        "/api/setup/tenant",
        admin,
        Some(json!({"name": "Other name", "slug": "acme"})),
    )
    .await;
    assert_eq!(again["tenant_id"], id.as_str());
    assert_eq!(again["existing"], true);
    assert_eq!(again["name"], "Acme");
    // Validation: 422.
    for body in [
        json!({"slug": "no-name"}),
        json!({"name": "", "slug": "empty-name"}),
        json!({"name": "Bad", "slug": "Bad Slug"}),
        json!({"name": "Bad", "slug": "ok", "settings": [1]}),
    ] {
        let (status, res) = call(&app, Method::POST, "/api/setup/tenant", admin, Some(body)).await;
        assert_eq!(status, 422, "{res}");
        assert_eq!(res["code"], "BAD_USER_INPUT");
    }
    // Read and list.
    let path = format!("/api/setup/tenant/{id}");
    let (status, tenant) = call(&app, Method::GET, &path, admin, None).await;
    assert_eq!(status, 200);
    assert_eq!(tenant["slug"], "acme");
    assert_eq!(tenant["settings"], json!({"plan": "pro"}));
    assert_eq!(tenant["status"], "active");
    assert!(tenant["created_at"].as_str().unwrap().ends_with("+00:00"));
    let (_, list) = call(&app, Method::GET, "/api/setup/tenants", admin, None).await;
    assert_eq!(list["total_count"], 2);
    assert_eq!(list["tenants"][0]["slug"], "acme", "newest first");
    // Unknown and malformed ids.
    let (status, res) = call(
        &app,
        Method::GET,
        &format!("/api/setup/tenant/{NIL}"),
        admin,
        None,
    )
    .await;
    assert_eq!(
        (status, res["detail"].clone()),
        (404, json!(format!("Tenant with ID {NIL} not found")))
    );
    let (status, _) = call(
        &app,
        Method::GET,
        "/api/setup/tenant/not-a-uuid",
        admin,
        None,
    )
    .await;
    assert_eq!(status, 422);
    // Update: a taken slug is 409; provided fields change, settings are replaced.
    let (status, res) = call(
        &app,
        Method::PUT,
        &path,
        admin,
        Some(json!({"slug": "default"})),
    )
    .await;
    assert_eq!(
        (status, res["detail"].clone()),
        (409, json!("A tenant with slug 'default' already exists"))
    );
    let (status, res) = call(
        &app,
        Method::PUT,
        &path,
        admin,
        Some(json!({"name": "Acme Inc", "settings": {"plan": "free"}})),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        (
            res["name"].clone(),
            res["slug"].clone(),
            res["settings"].clone()
        ),
        (json!("Acme Inc"), json!("acme"), json!({"plan": "free"}))
    );
    // The default tenant cannot be deleted in single-tenant mode, nor renamed (in any mode).
    let default = app.state.auth.tenant_id("default").await.unwrap();
    let (status, res) = call(
        &app,
        Method::PUT,
        &format!("/api/setup/tenant/{default}"),
        admin,
        Some(json!({"slug": "renamed-default"})),
    )
    .await;
    assert_eq!(
        (status, res["detail"].clone()),
        (
            400,
            json!("The default tenant's slug 'default' cannot be changed (BOARDS_DEFAULT_TENANT_SLUG names it)")
        )
    );
    let (status, res) = call(
        &app,
        Method::DELETE,
        &format!("/api/setup/tenant/{default}"),
        admin,
        None,
    )
    .await;
    assert_eq!(status, 400, "{res}");
    // Delete cascades.
    let alice = app.user("alice").await;
    fixtures::sql(
        &app,
        &format!(
            "UPDATE boards.users SET tenant_id = '{id}' WHERE id = '{}'",
            alice.id
        ),
    )
    .await;
    let (status, res) = call(&app, Method::DELETE, &path, admin, None).await;
    assert_eq!(status, 200, "{res}");
    assert_eq!(
        res["message"],
        "Tenant 'Acme Inc' (acme) deleted successfully"
    );
    assert_eq!(res["tenant_id"], id.as_str());
    let (status, _) = call(&app, Method::GET, &path, admin, None).await;
    assert_eq!(status, 404);
    let users = fixtures::count(
        &app,
        &format!(
            "SELECT count(*) AS n FROM boards.users WHERE id = '{}'",
            alice.id
        ),
    )
    .await;
    assert_eq!(users, 0);
}

#[tokio::test]
async fn a_tenant_admin_administers_only_their_own_tenant() {
    let app = multi_tenant(Options::default()).await;
    let acme = create_tenant(&app, "acme").await;
    let beta = create_tenant(&app, "beta").await;
    add_member(&app, &acme, "alice", "admin").await;
    add_member(&app, &beta, "alice", "member").await;
    let alice = app.token("alice");
    let me = Some(alice.as_str());

    let (status, list) = call(&app, Method::GET, "/api/setup/tenants", me, None).await;
    assert_eq!(status, 200);
    assert_eq!(list["total_count"], 1);
    assert_eq!(list["tenants"][0]["tenant_id"], acme.as_str());
    let (status, _) = call(
        &app,
        Method::GET,
        &format!("/api/setup/tenant/{acme}"),
        me,
        None,
    )
    .await;
    assert_eq!(status, 200);
    // A plain member of beta does not administer it.
    for (method, body) in [
        (Method::GET, None),
        (Method::PUT, Some(json!({"name": "Mine"}))),
        (Method::DELETE, None),
    ] {
        let (status, res) =
            call(&app, method, &format!("/api/setup/tenant/{beta}"), me, body).await;
        assert_eq!(
            (status, res["detail"].clone()),
            (403, json!("You are not an admin of this tenant"))
        );
    }
    // Creating and approving tenants is the operator's.
    let (status, res) = call(
        &app,
        Method::POST,
        "/api/setup/tenant",
        me,
        Some(json!({"name": "Mine", "slug": "mine"})),
    )
    .await;
    assert_eq!(
        (status, res["detail"].clone()),
        (403, json!("Creating tenants requires the admin token"))
    );
    let (status, _) = call(
        &app,
        Method::POST,
        &format!("/api/setup/tenant/{acme}/approve"),
        me,
        None,
    )
    .await;
    assert_eq!(status, 403);
    // Slugs are the operator's too (a slug can be what an identity provider's claims name);
    // renaming takes effect at once for tenant resolution.
    let res = app
        .gql_full(me, Some("acme"), "{ me { tenantId } }", json!({}))
        .await;
    assert_eq!(res["data"]["me"]["tenantId"], acme.as_str());
    let rename = Some(json!({"slug": "acme-two"}));
    let path = format!("/api/setup/tenant/{acme}");
    let (status, res) = call(&app, Method::PUT, &path, me, rename.clone()).await;
    assert_eq!(
        (status, res["detail"].clone()),
        (
            403,
            json!("Changing a tenant's slug requires the admin token")
        )
    );
    let (status, _) = call(&app, Method::PUT, &path, Some(ADMIN_TOKEN), rename).await;
    assert_eq!(status, 200);
    let res = app
        .gql_full(me, Some("acme"), "{ me { tenantId } }", json!({}))
        .await;
    assert_eq!(error_of(&res).0, "Unknown tenant 'acme'");
    let res = app
        .gql_full(me, Some("acme-two"), "{ me { tenantId } }", json!({}))
        .await;
    assert_eq!(res["data"]["me"]["tenantId"], acme.as_str());
    // And they may delete their own tenant.
    let (status, _) = call(
        &app,
        Method::DELETE,
        &format!("/api/setup/tenant/{acme}"),
        me,
        None,
    )
    .await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn without_an_admin_token_nobody_is_the_operator() {
    let app = TestApp::spawn_with(Options::default().env("BOARDS_MULTI_TENANT_MODE", "true")).await;
    let (status, res) = call(
        &app,
        Method::POST,
        "/api/setup/tenant",
        Some(ADMIN_TOKEN),
        Some(json!({"name": "X", "slug": "x"})),
    )
    .await;
    assert_eq!(status, 401, "{res}");
    let (status, _) = call(&app, Method::GET, "/api/setup/status", None, None).await;
    assert_eq!(status, 200);
}
