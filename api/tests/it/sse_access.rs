//! Progress streams follow the caller's access: a stream ends when its caller loses read access
//! to the generation's board (member removed, board made private or deleted), in this API
//! process and in others (through Redis), with a periodic re-check as a safety net; a user may
//! hold only so many streams at once.

use std::{pin::Pin, time::Duration};

use boards_api::Application;
use bytes::Bytes;
use futures::{Stream, StreamExt as _};
use serde_json::{json, Value};

use crate::{
    boards::create,
    members::{ADD, REMOVE},
    pipeline::generate,
    util::{fixtures, test_logger, Options, TestApp, TestUser},
};

/// Liveness deadline for a stream to end once it should.
const WITHIN: Duration = Duration::from_secs(10);

type Body = Pin<Box<dyn Stream<Item = reqwest::Result<Bytes>> + Send>>;

/// An open progress stream and the text read from it so far.
struct Sse {
    body: Body,
    text: String,
}

impl Sse {
    /// Reads until the snapshot (the first event) has arrived.
    async fn open(base: &str, token: &str, id: &str) -> Self {
        let res = reqwest::Client::new()
            .get(format!("{base}/api/sse/generations/{id}/progress"))
            .bearer_auth(token)
            .header("Accept", "text/event-stream")
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        let mut sse = Self {
            body: Box::pin(res.bytes_stream()),
            text: String::new(),
        };
        let deadline = tokio::time::Instant::now() + WITHIN;
        while !sse.text.contains("data: ") {
            match tokio::time::timeout_at(deadline, sse.body.next()).await {
                Ok(Some(chunk)) => sse.text.push_str(&String::from_utf8_lossy(&chunk.unwrap())),
                other => panic!("no snapshot: {other:?} {}", sse.text),
            }
        }
        sse
    }

    /// Reads until the server ends the stream; panics if it is still open after `within`.
    async fn ended(mut self, within: Duration) -> String {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            match tokio::time::timeout_at(deadline, self.body.next()).await {
                Ok(Some(Ok(chunk))) => self.text.push_str(&String::from_utf8_lossy(&chunk)),
                Ok(Some(Err(_)) | None) => return self.text,
                Err(_) => panic!("the stream is still open: {}", self.text),
            }
        }
    }

    /// Whether the stream is still open after `wait` (nothing but keep-alives may arrive).
    async fn still_open(&mut self, wait: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            match tokio::time::timeout_at(deadline, self.body.next()).await {
                Ok(Some(Ok(chunk))) => self.text.push_str(&String::from_utf8_lossy(&chunk)),
                Ok(Some(Err(_)) | None) => return false,
                Err(_) => return true,
            }
        }
    }
}

async fn status_of(app: &TestApp, token: &str, id: &str) -> (u16, Value) {
    let res = app
        .client
        .get(app.url(&format!("/api/sse/generations/{id}/progress")))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    let status = res.status().as_u16();
    let body = if status == 200 {
        Value::Null
    } else {
        res.json().await.unwrap()
    };
    (status, body)
}

/// Alice's private board with a pending generation, and Bob a viewer of it.
async fn shared_board(app: &TestApp) -> (TestUser, TestUser, String, String, Value) {
    let alice = app.user("alice").await;
    let bob = app.user("bob").await;
    let board = create(app, &alice.token, json!({"title": "shared"})).await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let membership = app
        .ok(
            Some(&alice.token),
            ADD,
            json!({"b": board, "e": bob.email, "r": "VIEWER"}),
        )
        .await["addBoardMember"]["id"]
        .clone();
    let id = generate(
        app,
        &alice,
        &board,
        "local-echo",
        "TEXT",
        json!({"prompt": "x"}),
    )
    .await;
    (alice, bob, board, id, membership)
}

fn no_broker() -> Options {
    // Jobs stay pending in the outbox: the streams stay open until the test ends them.
    Options::default().no_broker()
}

#[tokio::test]
async fn removing_a_member_ends_their_open_progress_stream_at_once() {
    let app = TestApp::spawn_with(no_broker()).await;
    let (alice, bob, _board, id, membership) = shared_board(&app).await;
    let bobs = Sse::open(&app.base, &bob.token, &id).await;
    let mut alices = Sse::open(&app.base, &alice.token, &id).await;

    app.ok(Some(&alice.token), REMOVE, json!({"id": membership}))
        .await;

    let text = bobs.ended(WITHIN).await;
    assert!(text.ends_with(": access revoked\n\n"), "{text}");
    assert_eq!(
        status_of(&app, &bob.token, &id).await,
        (
            404,
            json!({"detail": "Generation not found", "code": "NOT_FOUND"})
        )
    );
    assert!(
        alices.still_open(Duration::from_secs(1)).await,
        "the owner's stream ended too: {}",
        alices.text
    );
}

#[tokio::test]
async fn making_a_board_private_ends_the_streams_of_non_members() {
    let app = TestApp::spawn_with(no_broker()).await;
    let alice = app.user("alice").await;
    let carol = app.user("carol").await;
    let board = create(
        &app,
        &alice.token,
        json!({"title": "public", "isPublic": true}),
    )
    .await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let id = generate(
        &app,
        &alice,
        &board,
        "local-echo",
        "TEXT",
        json!({"prompt": "x"}),
    )
    .await;
    let carols = Sse::open(&app.base, &carol.token, &id).await;

    app.ok(
        Some(&alice.token),
        "mutation($input: UpdateBoardInput!) { updateBoard(input: $input) { id } }",
        json!({"input": {"id": board, "isPublic": false}}),
    )
    .await;

    let text = carols.ended(WITHIN).await;
    assert!(text.ends_with(": access revoked\n\n"), "{text}");
}

#[tokio::test]
async fn deleting_a_board_ends_its_progress_streams() {
    let app = TestApp::spawn_with(no_broker()).await;
    let (alice, _bob, board, id, _membership) = shared_board(&app).await;
    let alices = Sse::open(&app.base, &alice.token, &id).await;

    app.ok(
        Some(&alice.token),
        "mutation($id: UUID!) { deleteBoard(id: $id) { success } }",
        json!({"id": board}),
    )
    .await;

    let text = alices.ended(WITHIN).await;
    assert!(text.ends_with(": access revoked\n\n"), "{text}");
}

#[tokio::test]
async fn streams_recheck_access_periodically_when_nobody_announces_a_change() {
    let app = TestApp::spawn_with(no_broker().env("BOARDS_SSE_ACCESS_RECHECK_SECONDS", "1")).await;
    let (_alice, bob, board, id, _membership) = shared_board(&app).await;
    let bobs = Sse::open(&app.base, &bob.token, &id).await;

    // Straight to the table: no mutation announces it.
    fixtures::sql(
        &app,
        &format!(
            "DELETE FROM boards.board_members WHERE board_id = '{board}' AND user_id = '{}'",
            bob.id
        ),
    )
    .await;

    let text = bobs.ended(WITHIN).await;
    assert!(text.ends_with(": access revoked\n\n"), "{text}");
}

#[tokio::test]
async fn another_api_process_ends_its_streams_when_told_through_redis() {
    let app = TestApp::spawn_with(no_broker()).await;
    let (alice, bob, _board, id, membership) = shared_board(&app).await;
    // A second replica on the same database and Redis; its periodic re-check (30 s) is far
    // beyond the deadline, so only the Redis message can end the stream in time.
    let mut config = app.config.clone();
    config.api.port = 0;
    let replica = Application::build(config, test_logger()).await.unwrap();
    let replica_base = format!("http://127.0.0.1:{}", replica.port());
    let replica_state = replica.state();
    let stop = replica.stop_handle();
    tokio::spawn(replica.run_until_stopped());
    let deadline = tokio::time::Instant::now() + WITHIN;
    while !replica_state.sse.redis_up() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the replica never subscribed"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let bobs = Sse::open(&replica_base, &bob.token, &id).await;

    app.ok(Some(&alice.token), REMOVE, json!({"id": membership}))
        .await;

    let text = bobs.ended(WITHIN).await;
    assert!(text.ends_with(": access revoked\n\n"), "{text}");
    stop.cancel();
}

#[tokio::test]
async fn a_user_may_hold_only_so_many_streams_at_once() {
    let app = TestApp::spawn_with(no_broker().env("BOARDS_SSE_MAX_STREAMS_PER_USER", "2")).await;
    let (alice, bob, _board, id, _membership) = shared_board(&app).await;
    let first = Sse::open(&app.base, &alice.token, &id).await;
    let _second = Sse::open(&app.base, &alice.token, &id).await;

    let (status, body) = status_of(&app, &alice.token, &id).await;
    assert_eq!(status, 429);
    assert_eq!(body["code"], "TOO_MANY_REQUESTS");
    assert_eq!(
        body["detail"],
        "Too many open progress streams: at most 2 per user. Close one and try again."
    );
    // Another user is not affected.
    let _bobs = Sse::open(&app.base, &bob.token, &id).await;

    // Closing a stream frees its place (once the server notices the disconnect).
    drop(first);
    let deadline = tokio::time::Instant::now() + WITHIN;
    loop {
        let res = app
            .client
            .get(app.url(&format!("/api/sse/generations/{id}/progress")))
            .bearer_auth(&alice.token)
            .send()
            .await
            .unwrap();
        if res.status() == 200 {
            break;
        }
        assert_eq!(res.status(), 429);
        assert!(
            tokio::time::Instant::now() < deadline,
            "the closed stream's place was never freed"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
