//! Lineage inputs obey board access: nobody gets another board's private pixels by naming its
//! generation as the input of an image-to-image generator — refused when the job is created,
//! and again by the worker for rows written by any other path.

use std::time::Duration;

use boards_shared::generators::Registry;
use serde_json::json;

use crate::{
    generations::CREATE_GEN,
    pipeline::{board, generate, wait_for, worker},
    util::{error_of, fixtures, fixtures::GenerationFixture, TestApp},
};

#[tokio::test]
async fn a_private_generation_of_another_board_cannot_be_an_input() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice").await;
    let bob = app.user("bob").await;
    let private = board(&app, &alice).await;
    let secret = GenerationFixture::completed_image(&private, &alice.id)
        .insert(&app)
        .await;
    let own = board(&app, &bob).await;

    let filter = |image: &str| {
        json!({"input": {"boardId": own, "generatorName": "local-image-filter", "artifactType": "IMAGE",
            "inputParams": {"image": image, "filter": "invert"}}})
    };
    let res = app.gql(Some(&bob.token), CREATE_GEN, filter(&secret)).await;
    let (message, code) = error_of(&res);
    assert_eq!(code, "BAD_USER_INPUT", "{res}");
    assert_eq!(
        message,
        format!("Invalid input parameters: image: generation {secret} not found")
    );
    // The same answer as for an id that does not exist: nothing is revealed.
    let unknown = uuid::Uuid::new_v4().to_string();
    let res = app
        .gql(Some(&bob.token), CREATE_GEN, filter(&unknown))
        .await;
    assert_eq!(
        error_of(&res).0,
        format!("Invalid input parameters: image: generation {unknown} not found")
    );
    // A public board's generation is fine; so is one of a board Bob is a member of.
    let public = crate::boards::create(
        &app,
        &alice.token,
        json!({"title": "open", "isPublic": true}),
    )
    .await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let shown = GenerationFixture::completed_image(&public, &alice.id)
        .insert(&app)
        .await;
    let res = app.gql(Some(&bob.token), CREATE_GEN, filter(&shown)).await;
    assert!(res.get("errors").is_none(), "{res}");
}

#[tokio::test]
async fn regenerating_checks_the_inputs_against_whoever_asks() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice").await;
    let bob = app.user("bob").await;
    let private = board(&app, &alice).await;
    let secret = GenerationFixture::completed_image(&private, &alice.id)
        .insert(&app)
        .await;
    // A generation on a board Bob edits whose input is Alice's private image (written by
    // another path), which Bob then asks to run again.
    let shared = board(&app, &alice).await;
    app.ok(
        Some(&alice.token),
        crate::members::ADD,
        json!({"b": shared, "e": bob.email, "r": "EDITOR"}),
    )
    .await;
    let mut original = GenerationFixture::completed_image(&shared, &alice.id);
    original.generator = "local-image-filter";
    original.input_params = json!({"image": secret});
    let original = original.insert(&app).await;
    let res = app
        .gql(
            Some(&bob.token),
            "mutation($id: UUID!) { regenerate(id: $id) { id } }",
            json!({"id": original}),
        )
        .await;
    assert_eq!(error_of(&res).1, "BAD_USER_INPUT", "{res}");
}

#[tokio::test]
async fn the_worker_refuses_inputs_the_creator_cannot_read() {
    let app = TestApp::spawn().await;
    let w = worker(&app, Registry::builtin()).await;
    let alice = app.user("alice").await;
    let bob = app.user("bob").await;
    let private = board(&app, &alice).await;
    let secret = generate(
        &app,
        &alice,
        &private,
        "local-image",
        "IMAGE",
        json!({"prompt": "secret", "width": 32, "height": 32}),
    )
    .await;
    wait_for(
        &app,
        &alice,
        &secret,
        &["completed"],
        Duration::from_secs(20),
    )
    .await;
    // A job row naming the private input, as a direct write would leave it.
    let own = board(&app, &bob).await;
    let mut job = GenerationFixture::completed_image(&own, &bob.id);
    job.generator = "local-image-filter";
    job.status = "pending";
    job.progress = 0.0;
    job.storage_url = None;
    job.output_metadata = json!({});
    job.input_params = json!({"image": secret, "filter": "invert"});
    let id = job.insert(&app).await;
    fixtures::sql(
        &app,
        &format!(
            "INSERT INTO boards.job_outbox (generation_id, message) VALUES ('{id}',
             jsonb_build_object('v', 1, 'generation_id', '{id}', 'generator', 'local-image-filter',
                                'attempt', 1, 'request_id', null, 'enqueued_at', now()))"
        ),
    )
    .await;
    app.state.relay.wake();
    let g = wait_for(
        &app,
        &bob,
        &id,
        &["completed", "failed"],
        Duration::from_secs(20),
    )
    .await;
    assert_eq!(g["status"], "FAILED", "{g}");
    assert!(g["storageUrl"].is_null());
    assert_eq!(
        g["errorMessage"],
        format!("Invalid input parameters: image: generation {secret} not found")
    );
    w.stop().await;
}
