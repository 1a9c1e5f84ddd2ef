//! Tenant isolation in multi-tenant mode: the token's tenant, `X-Tenant` honoured for members
//! only, no implicit tenants, anonymous callers, and membership changes taking effect at once.

use reqwest::Method;
use serde_json::{json, Value};

use crate::util::{error_of, Options, TestApp};

pub const ADMIN_TOKEN: &str = "operator-secret-token-0123456789";

const ME: &str = "{ me { id tenantId } }";

/// A multi-tenant app with an admin token.
pub async fn multi_tenant(options: Options) -> TestApp {
    TestApp::spawn_with(
        options
            .env("BOARDS_MULTI_TENANT_MODE", "true")
            .env("BOARDS_ADMIN_TOKEN", ADMIN_TOKEN),
    )
    .await
}

/// A REST call: status and JSON body (`null` when the body is not JSON).
pub async fn rest(
    app: &TestApp,
    method: Method,
    path: &str,
    token: Option<&str>,
    tenant: Option<&str>,
    body: Option<Value>,
) -> (u16, Value) {
    let mut req = app.client.request(method, app.url(path));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    if let Some(t) = tenant {
        req = req.header("X-Tenant", t);
    }
    if let Some(b) = body {
        req = req.json(&b);
    }
    let res = req.send().await.unwrap();
    let status = res.status().as_u16();
    let text = res.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// Creates a tenant with the admin token; returns its id.
pub async fn create_tenant(app: &TestApp, slug: &str) -> String {
    let (status, body) = rest(
        app,
        Method::POST,
        "/api/setup/tenant",
        Some(ADMIN_TOKEN),
        None,
        Some(json!({"name": format!("Tenant {slug}"), "slug": slug})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    body["tenant_id"].as_str().unwrap().to_string()
}

/// Makes `sub` (of the jwt provider) a member of the tenant, with the admin token.
pub async fn add_member(app: &TestApp, tenant_id: &str, sub: &str, role: &str) {
    let (status, body) = rest(
        app,
        Method::POST,
        &format!("/api/tenants/{tenant_id}/members"),
        Some(ADMIN_TOKEN),
        None,
        Some(json!({"auth_subject": sub, "role": role})),
    )
    .await;
    assert_eq!(status, 201, "{body}");
}

async fn tenant_count(app: &TestApp, slug: &str) -> i64 {
    crate::util::fixtures::count(
        app,
        &format!("SELECT count(*) AS n FROM boards.tenants WHERE slug = '{slug}'"),
    )
    .await
}

#[tokio::test]
async fn x_tenant_is_honoured_for_members_and_refused_to_others() {
    let app = multi_tenant(Options::default()).await;
    let acme = create_tenant(&app, "acme").await;
    add_member(&app, &acme, "bob", "member").await;
    let bob = app.token("bob");
    let carol = app.token("carol");

    // A member gets a user of that tenant.
    let res = app.gql_full(Some(&bob), Some("acme"), ME, json!({})).await;
    assert_eq!(res["data"]["me"]["tenantId"], acme.as_str(), "{res}");
    // A stranger is refused, on GraphQL and on REST, rather than silently moved elsewhere.
    let res = app
        .gql_full(Some(&carol), Some("acme"), ME, json!({}))
        .await;
    assert_eq!(
        error_of(&res),
        (
            "You are not a member of tenant 'acme'".into(),
            "FORBIDDEN".into()
        )
    );
    let (status, body) = rest(
        &app,
        Method::GET,
        &format!("/api/sse/generations/{}/progress", uuid::Uuid::nil()),
        Some(&carol),
        Some("acme"),
        None,
    )
    .await;
    assert_eq!(status, 403);
    assert_eq!(
        body,
        json!({"detail": "You are not a member of tenant 'acme'", "code": "FORBIDDEN"})
    );
    // Everyone may use the default tenant without a membership.
    let res = app
        .gql_full(Some(&carol), Some("default"), ME, json!({}))
        .await;
    assert!(res["data"]["me"]["id"].is_string(), "{res}");

    // Removing the membership takes effect at once (the cached role is forgotten).
    let (status, _) = rest(
        &app,
        Method::DELETE,
        &format!("/api/tenants/{acme}/members/bob"),
        Some(ADMIN_TOKEN),
        None,
        None,
    )
    .await;
    assert_eq!(status, 200);
    let res = app.gql_full(Some(&bob), Some("acme"), ME, json!({})).await;
    assert_eq!(error_of(&res).1, "FORBIDDEN", "{res}");
}

#[tokio::test]
async fn the_token_claim_names_the_callers_own_tenant() {
    let app = multi_tenant(Options::default()).await;
    let acme = create_tenant(&app, "acme").await;
    let default = app.state.auth.tenant_id("default").await.unwrap();
    let claimed = app.token_with("dave", json!({"tenant": "acme"}));

    // The identity provider's claim needs no membership.
    let res = app
        .gql_full(Some(&claimed), Some("acme"), ME, json!({}))
        .await;
    assert_eq!(res["data"]["me"]["tenantId"], acme.as_str(), "{res}");
    // Naming another tenant is a switch, allowed to members only.
    let res = app
        .gql_full(Some(&claimed), Some("default"), ME, json!({}))
        .await;
    assert_eq!(
        error_of(&res),
        (
            "You are not a member of tenant 'default'".into(),
            "FORBIDDEN".into()
        )
    );
    add_member(&app, &default.to_string(), "dave", "member").await;
    let res = app
        .gql_full(Some(&claimed), Some("default"), ME, json!({}))
        .await;
    assert_eq!(res["data"]["me"]["tenantId"], default.to_string(), "{res}");
}

#[tokio::test]
async fn a_claim_does_not_put_its_users_into_a_tenant_someone_registered_under_that_slug() {
    let app = multi_tenant(Options::default()).await;
    // Mallory registers `big-co` before the operator creates it for Big Co's identity provider.
    let mallory = app.token("mallory");
    let (status, res) = rest(
        &app,
        Method::POST,
        "/api/tenants/register",
        Some(&mallory),
        Some("default"),
        Some(json!({"organization_name": "Big Co", "organization_slug": "big-co", "admin_email": "m@example.com"})),
    )
    .await;
    assert_eq!(status, 200, "{res}");
    let big_co = res["tenant_id"].as_str().unwrap().to_string();
    let claimed = app.token_with("victim", json!({"tenant": "big-co"}));
    let res = app
        .gql_full(Some(&claimed), Some("big-co"), ME, json!({}))
        .await;
    assert_eq!(
        error_of(&res),
        (
            "You are not a member of tenant 'big-co'".into(),
            "FORBIDDEN".into()
        )
    );
    // Its members (added by its admin) do get in with the claim.
    add_member(&app, &big_co, "victim", "member").await;
    let res = app
        .gql_full(Some(&claimed), Some("big-co"), ME, json!({}))
        .await;
    assert_eq!(res["data"]["me"]["tenantId"], big_co.as_str(), "{res}");
}

#[tokio::test]
async fn unknown_tenants_are_never_created() {
    let app = multi_tenant(Options::default()).await;
    let token = app.token("erin");
    for (token, tenant) in [(Some(token.as_str()), "nosuch"), (None, "nosuch")] {
        let res = app.gql_full(token, Some(tenant), ME, json!({})).await;
        assert_eq!(
            error_of(&res),
            ("Unknown tenant 'nosuch'".into(), "BAD_USER_INPUT".into())
        );
    }
    // A claim naming a tenant nobody created is refused too.
    let claimed = app.token_with("erin", json!({"tenant": "ghost"}));
    let res = app
        .gql_full(Some(&claimed), Some("ghost"), ME, json!({}))
        .await;
    assert_eq!(
        error_of(&res),
        ("Unknown tenant 'ghost'".into(), "BAD_USER_INPUT".into())
    );
    assert_eq!(tenant_count(&app, "nosuch").await, 0);
    assert_eq!(tenant_count(&app, "ghost").await, 0);
}

#[tokio::test]
async fn anonymous_callers_may_name_any_existing_tenant() {
    let app = multi_tenant(Options::default()).await;
    create_tenant(&app, "acme").await;
    // An acme member's public board is readable by an anonymous caller in acme.
    let acme = app.state.auth.tenant_id("acme").await.unwrap();
    add_member(&app, &acme.to_string(), "frank", "member").await;
    let frank = app.token("frank");
    let board = app
        .gql_full(
            Some(&frank),
            Some("acme"),
            "mutation { createBoard(input: {title: \"Open\", isPublic: true}) { id tenantId } }",
            json!({}),
        )
        .await;
    assert_eq!(board["data"]["createBoard"]["tenantId"], acme.to_string());
    let id = board["data"]["createBoard"]["id"].as_str().unwrap();
    let res = app
        .gql_full(
            None,
            Some("acme"),
            "query($id: UUID!) { me { id } board(id: $id) { title } }",
            json!({"id": id}),
        )
        .await;
    assert!(res.get("errors").is_none(), "{res}");
    assert!(res["data"]["me"].is_null());
    assert_eq!(res["data"]["board"]["title"], "Open");
}
