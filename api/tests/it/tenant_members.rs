//! `/api/tenants/{tenant_id}/members`: the operator or the tenant's admins list, add, re-role and
//! remove members; the last admin stays.

use reqwest::Method;
use serde_json::{json, Value};

use crate::{
    tenants::{add_member, create_tenant, multi_tenant, rest, ADMIN_TOKEN},
    util::{Options, TestApp},
};

/// A request to `path` with `token` and no `X-Tenant` (the tenant is in the path).
async fn as_(
    app: &TestApp,
    method: Method,
    path: &str,
    token: &str,
    body: Option<Value>,
) -> (u16, Value) {
    rest(app, method, path, Some(token), None, body).await
}

#[tokio::test]
async fn members_are_administered_by_the_operator_and_tenant_admins() {
    let app = multi_tenant(Options::default()).await;
    let acme = create_tenant(&app, "acme").await;
    let members = format!("/api/tenants/{acme}/members");
    add_member(&app, &acme, "alice", "admin").await;
    let alice = app.token("alice");
    let bob = app.token("bob");

    // Without credentials, or as a non-member: refused. No X-Tenant is needed (the tenant is in
    // the path).
    let (status, _) = rest(&app, Method::GET, &members, None, None, None).await;
    assert_eq!(status, 401);
    let (status, res) = as_(&app, Method::GET, &members, &bob, None).await;
    assert_eq!((status, res["code"].clone()), (403, json!("FORBIDDEN")));

    // The tenant admin adds bob as a member.
    let (status, added) = as_(
        &app,
        Method::POST,
        &members,
        &alice,
        Some(json!({"auth_subject": "bob", "role": "member"})),
    )
    .await;
    assert_eq!(status, 201, "{added}");
    assert_eq!(
        (
            added["auth_provider"].clone(),
            added["auth_subject"].clone(),
            added["role"].clone()
        ),
        (json!("jwt"), json!("bob"), json!("member"))
    );
    // Twice is a conflict; a bad role or a missing field is 422.
    let (status, res) = as_(
        &app,
        Method::POST,
        &members,
        &alice,
        Some(json!({"auth_subject": "bob", "role": "member"})),
    )
    .await;
    assert_eq!(
        (status, res["detail"].clone()),
        (409, json!("'bob' is already a member of this tenant"))
    );
    for body in [
        json!({"auth_subject": "zed", "role": "owner"}),
        json!({"role": "member"}),
        json!({"auth_subject": "", "role": "member"}),
    ] {
        let (status, _) = as_(&app, Method::POST, &members, &alice, Some(body)).await;
        assert_eq!(status, 422);
    }

    // A plain member may use the tenant but not administer it.
    let res = app
        .gql_full(Some(&bob), Some("acme"), "{ me { tenantId } }", json!({}))
        .await;
    assert_eq!(res["data"]["me"]["tenantId"], acme.as_str());
    let (status, _) = as_(&app, Method::GET, &members, &bob, None).await;
    assert_eq!(status, 403);

    // Promoted, bob administers it.
    let (status, res) = as_(
        &app,
        Method::PUT,
        &format!("{members}/bob"),
        &alice,
        Some(json!({"role": "admin"})),
    )
    .await;
    assert_eq!((status, res["role"].clone()), (200, json!("admin")));
    let (status, list) = as_(&app, Method::GET, &members, &bob, None).await;
    assert_eq!(status, 200);
    assert_eq!(list["total_count"], 2);
    let subjects: Vec<&str> = list["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["auth_subject"].as_str().unwrap())
        .collect();
    assert_eq!(subjects, ["alice", "bob"]);

    // Unknown members are 404; bad tenant ids 422.
    let (status, _) = as_(
        &app,
        Method::DELETE,
        &format!("{members}/nobody"),
        ADMIN_TOKEN,
        None,
    )
    .await;
    assert_eq!(status, 404);
    let (status, _) = as_(
        &app,
        Method::GET,
        "/api/tenants/not-a-uuid/members",
        ADMIN_TOKEN,
        None,
    )
    .await;
    assert_eq!(status, 422);
}

#[tokio::test]
async fn the_last_admin_can_be_neither_removed_nor_demoted() {
    let app = multi_tenant(Options::default()).await;
    let acme = create_tenant(&app, "acme").await;
    let members = format!("/api/tenants/{acme}/members");
    add_member(&app, &acme, "alice", "admin").await;
    add_member(&app, &acme, "bob", "member").await;
    let alice = app.token("alice");

    let (status, res) = as_(
        &app,
        Method::PUT,
        &format!("{members}/alice"),
        &alice,
        Some(json!({"role": "member"})),
    )
    .await;
    assert_eq!(
        (status, res["detail"].clone()),
        (409, json!("Cannot demote the last admin of the tenant"))
    );
    let (status, res) = as_(
        &app,
        Method::DELETE,
        &format!("{members}/alice"),
        ADMIN_TOKEN,
        None,
    )
    .await;
    assert_eq!(
        (status, res["detail"].clone()),
        (409, json!("Cannot remove the last admin of the tenant"))
    );
    // With a second admin, the first may step down.
    add_member(&app, &acme, "carol", "admin").await;
    let (status, _) = as_(
        &app,
        Method::PUT,
        &format!("{members}/alice"),
        &alice,
        Some(json!({"role": "member"})),
    )
    .await;
    assert_eq!(status, 200);
    // Members can always be removed.
    let (status, _) = as_(
        &app,
        Method::DELETE,
        &format!("{members}/bob"),
        ADMIN_TOKEN,
        None,
    )
    .await;
    assert_eq!(status, 200);
}
