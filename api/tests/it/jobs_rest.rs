//! `POST /api/jobs/generations` (contract §3.6) with the checks of GraphQL `createGeneration`:
//! board access, generator, artifact type and inputs, then the same outbox path to the worker.

use std::time::Duration;

use boards_shared::generators::Registry;
use reqwest::Method;
use serde_json::{json, Value};

use crate::{
    boards::create,
    members::ADD,
    pipeline::{wait_for, worker},
    tenants::rest,
    util::{fixtures, Options, TestApp, TestUser},
};

const NIL: &str = "00000000-0000-0000-0000-000000000000";

/// A request body of `POST /api/jobs/generations` (the ignored ids are the nil UUID).
pub fn body(board: &str, generator: &str, kind: &str, params: Value) -> Value {
    json!({
        "tenant_id": NIL, "user_id": NIL, "board_id": board,
        "generator_name": generator, "artifact_type": kind, "input_params": params,
    })
}

async fn submit(app: &TestApp, token: Option<&str>, body: Value) -> (u16, Value) {
    rest(
        app,
        Method::POST,
        "/api/jobs/generations",
        token,
        None,
        Some(body),
    )
    .await
}

async fn board(app: &TestApp, user: &TestUser, public: bool) -> String {
    create(
        app,
        &user.token,
        json!({"title": "jobs", "isPublic": public}),
    )
    .await["id"]
        .as_str()
        .unwrap()
        .to_string()
}

#[tokio::test]
async fn a_submitted_generation_is_queued_and_completes() {
    let app = TestApp::spawn().await;
    let w = worker(&app, Registry::builtin()).await;
    let alice = app.user("alice").await;
    let b = board(&app, &alice, false).await;

    let (status, res) = submit(
        &app,
        Some(&alice.token),
        body(
            &b,
            "local-echo",
            "text",
            json!({"prompt": "hello from REST"}),
        ),
    )
    .await;
    assert_eq!(status, 200, "{res}");
    let id = res["generation_id"].as_str().unwrap();
    let g = wait_for(&app, &alice, id, &["completed"], Duration::from_secs(20)).await;
    assert_eq!(g["outputMetadata"]["content"], "hello from REST");
    w.stop().await;
}

#[tokio::test]
async fn the_generation_is_pending_with_its_job_in_the_outbox_and_belongs_to_the_caller() {
    let app = TestApp::spawn_with(Options::default().no_broker()).await;
    let alice = app.user("alice").await;
    let b = board(&app, &alice, false).await;
    let (status, res) = submit(
        &app,
        Some(&alice.token),
        body(&b, "local-echo", "TEXT", json!({"prompt": "x"})),
    )
    .await;
    assert_eq!(status, 200, "{res}");
    let id = res["generation_id"].as_str().unwrap();
    assert_eq!(fixtures::outbox_count(&app, id).await, 1);
    let g = app
        .ok(
            Some(&alice.token),
            "query($id: UUID!) { generation(id: $id) { status userId tenantId artifactType } }",
            json!({"id": id}),
        )
        .await["generation"]
        .clone();
    let default = app.state.auth.tenant_id("default").await.unwrap();
    assert_eq!(g["status"], "PENDING");
    assert_eq!(g["artifactType"], "TEXT");
    // tenant_id and user_id of the body are ignored: the caller's own are used.
    assert_eq!(g["userId"], alice.id.as_str());
    assert_eq!(g["tenantId"], default.to_string());
}

#[tokio::test]
async fn only_callers_who_can_edit_the_board_may_submit() {
    let app = TestApp::spawn_with(Options::default().no_broker()).await;
    let alice = app.user("alice").await;
    let viewer = app.user("victor").await;
    let stranger = app.user("sam").await;
    let private = board(&app, &alice, false).await;
    let public = board(&app, &alice, true).await;
    app.ok(
        Some(&alice.token),
        ADD,
        json!({"b": private, "e": viewer.email, "r": "VIEWER"}),
    )
    .await;
    let echo = |b: &str| body(b, "local-echo", "text", json!({"prompt": "x"}));

    let (status, res) = submit(&app, None, echo(&private)).await;
    assert_eq!(
        (status, res),
        (
            401,
            json!({"detail": "Authentication required", "code": "UNAUTHENTICATED"})
        )
    );
    let forbidden = json!({
        "detail": "Permission denied: only board owner or editor can create generations",
        "code": "FORBIDDEN",
    });
    let (status, res) = submit(&app, Some(&viewer.token), echo(&private)).await;
    assert_eq!((status, res), (403, forbidden.clone()));
    let (status, res) = submit(&app, Some(&stranger.token), echo(&public)).await;
    assert_eq!((status, res), (403, forbidden));
    // A private board the caller cannot read does not exist for them; nor does an unknown one.
    for b in [private.as_str(), NIL] {
        let (status, res) = submit(&app, Some(&stranger.token), echo(b)).await;
        assert_eq!(
            (status, res),
            (
                404,
                json!({"detail": "Board not found", "code": "NOT_FOUND"})
            )
        );
    }
    assert_eq!(fixtures::count_generations(&app, &private).await, 0);
    assert_eq!(fixtures::count_generations(&app, &public).await, 0);
}

#[tokio::test]
async fn bad_generators_types_inputs_and_bodies_are_refused() {
    let app = TestApp::spawn_with(Options::default().no_broker()).await;
    let alice = app.user("alice").await;
    let b = board(&app, &alice, false).await;
    let token = Some(alice.token.as_str());

    let (status, res) = submit(
        &app,
        token,
        body(&b, "nope", "text", json!({"prompt": "x"})),
    )
    .await;
    assert_eq!(
        (status, res),
        (
            400,
            json!({"detail": "Unknown generator: nope", "code": "BAD_USER_INPUT"})
        )
    );
    let (status, res) = submit(
        &app,
        token,
        body(&b, "local-echo", "image", json!({"prompt": "x"})),
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(
        res["detail"],
        "Generator 'local-echo' produces text artifacts, not image"
    );
    let (status, res) = submit(&app, token, body(&b, "local-echo", "text", json!({}))).await;
    assert_eq!(status, 400);
    assert!(
        res["detail"]
            .as_str()
            .unwrap()
            .starts_with("Invalid input parameters:"),
        "{res}"
    );
    // Shapes: 422 with a description.
    let mut missing = body(&b, "local-echo", "text", json!({"prompt": "x"}));
    missing.as_object_mut().unwrap().remove("user_id");
    let (status, res) = submit(&app, token, missing).await;
    assert_eq!(status, 422);
    assert!(res["detail"].as_str().unwrap().contains("user_id"), "{res}");
    for bad in [
        body(&b, "local-echo", "hologram", json!({"prompt": "x"})),
        body(&b, "local-echo", "text", json!("prompt")),
        body("not-a-uuid", "local-echo", "text", json!({"prompt": "x"})),
    ] {
        let (status, res) = submit(&app, token, bad).await;
        assert_eq!(
            (status, res["code"].clone()),
            (422, json!("BAD_USER_INPUT")),
            "{res}"
        );
    }
    assert_eq!(fixtures::count_generations(&app, &b).await, 0);
}
