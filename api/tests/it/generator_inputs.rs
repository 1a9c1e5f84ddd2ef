//! Generator inputs as the real UI sends them: unknown top-level fields are accepted, kept and
//! ignored (the UI sends `prompt` to every generator); known fields are checked exactly as the
//! generator reads them, so what the API accepts also runs.

use std::time::Duration;

use boards_shared::generators::Registry;
use serde_json::{json, Value};

use crate::{
    generations::CREATE_GEN,
    pipeline::{board, generate, wait_for, worker},
    util::{error_of, TestApp},
};

async fn create(app: &TestApp, token: &str, board: &str, generator: &str, params: Value) -> Value {
    app.gql(
        Some(token),
        CREATE_GEN,
        json!({"input": {"boardId": board, "generatorName": generator, "artifactType": "IMAGE",
            "inputParams": params}}),
    )
    .await
}

#[tokio::test]
async fn the_uis_extra_prompt_is_kept_and_ignored_by_image_to_image() {
    let app = TestApp::spawn().await;
    let w = worker(&app, Registry::builtin()).await;
    let alice = app.user("alice").await;
    let b = board(&app, &alice).await;
    let source = generate(
        &app,
        &alice,
        &b,
        "local-image",
        "IMAGE",
        json!({"prompt": "source", "width": 32, "height": 32}),
    )
    .await;
    wait_for(
        &app,
        &alice,
        &source,
        &["completed"],
        Duration::from_secs(20),
    )
    .await;
    let params = json!({"prompt": "make it moody", "image": source, "filter": "sepia"});
    let res = create(&app, &alice.token, &b, "local-image-filter", params.clone()).await;
    assert!(res.get("errors").is_none(), "{res}");
    let id = res["data"]["createGeneration"]["id"].as_str().unwrap();
    let g = wait_for(
        &app,
        &alice,
        id,
        &["completed", "failed"],
        Duration::from_secs(20),
    )
    .await;
    assert_eq!(g["status"], "COMPLETED", "{g}");
    let stored = app
        .ok(
            Some(&alice.token),
            "query($id: UUID!) { generation(id: $id) { inputParams } }",
            json!({"id": id}),
        )
        .await;
    // Kept as sent, so a retry sends the same thing.
    assert_eq!(stored["generation"]["inputParams"], params);
    // Bad values of known fields are still refused and named.
    let res = create(
        &app,
        &alice.token,
        &b,
        "local-image-filter",
        json!({"prompt": "x", "image": source, "filter": "blurry"}),
    )
    .await;
    let (message, code) = error_of(&res);
    assert_eq!(code, "BAD_USER_INPUT");
    assert!(message.contains("filter: must be one of"), "{message}");
    w.stop().await;
}

#[tokio::test]
async fn what_the_api_accepts_the_worker_runs_and_the_rest_is_refused_up_front() {
    let app = TestApp::spawn().await;
    let w = worker(&app, Registry::builtin()).await;
    let alice = app.user("alice").await;
    let b = board(&app, &alice).await;
    // A whole number written with a fraction part is a whole number (JSON Schema's integer).
    let res = create(
        &app,
        &alice.token,
        &b,
        "local-image",
        json!({"prompt": "x", "width": 48.0, "height": 16, "seed": 4294967295u64}),
    )
    .await;
    assert!(res.get("errors").is_none(), "{res}");
    let id = res["data"]["createGeneration"]["id"].as_str().unwrap();
    let g = wait_for(
        &app,
        &alice,
        id,
        &["completed", "failed"],
        Duration::from_secs(20),
    )
    .await;
    assert_eq!(g["status"], "COMPLETED", "{g}");
    assert_eq!(g["outputMetadata"]["width"], 48);

    // What the generator could not read is refused by the API, naming the field.
    for (params, field) in [
        (json!({"prompt": "x", "seed": 4294967296u64}), "seed"),
        (json!({"prompt": "x", "width": 48.5}), "width"),
        (json!({"prompt": "x", "width": "48"}), "width"),
        (json!({"prompt": "x", "seed": -1}), "seed"),
    ] {
        let res = create(&app, &alice.token, &b, "local-image", params.clone()).await;
        let (message, code) = error_of(&res);
        assert_eq!(code, "BAD_USER_INPUT", "{params}: {res}");
        assert!(
            message.starts_with("Invalid input parameters: ") && message.contains(field),
            "{params}: {message}"
        );
    }
    w.stop().await;
}

#[tokio::test]
async fn the_published_schema_bounds_integers_to_what_the_generator_holds() {
    let app = TestApp::spawn().await;
    let data = app
        .ok(None, "{ generators { name inputSchema } }", json!({}))
        .await;
    let image = data["generators"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["name"] == "local-image")
        .unwrap();
    let seed = &image["inputSchema"]["properties"]["seed"]["anyOf"][0];
    assert_eq!(seed["maximum"], 4294967295u64, "{seed}");
    assert!(image["inputSchema"].get("additionalProperties").is_none());
}
