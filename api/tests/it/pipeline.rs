//! The job pipeline end to end with real PostgreSQL, RabbitMQ and Redis: outbox → relay →
//! RabbitMQ → worker → storage → Redis progress → SSE.

use std::{
    sync::{
        atomic::{AtomicU32, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};

use boards_shared::{
    events::StreamId,
    generators::{
        run::{Context, Execute, GenerateError, Output},
        ArtifactKind, Registered, Registry,
    },
};
use boards_worker::Worker;
use futures::StreamExt as _;
use serde_json::{json, Value};

use crate::{
    boards::create,
    generations::CREATE_GEN,
    util::{fixtures, Options, TestApp, TestUser},
};

pub async fn worker(app: &TestApp, registry: Registry) -> Worker {
    Worker::start(app.config.clone(), crate::util::test_logger(), registry)
        .await
        .expect("worker starts")
}

pub async fn board(app: &TestApp, user: &TestUser) -> String {
    create(app, &user.token, json!({"title": "pipeline"})).await["id"]
        .as_str()
        .unwrap()
        .to_string()
}

pub async fn generate(
    app: &TestApp,
    user: &TestUser,
    board: &str,
    generator: &str,
    kind: &str,
    params: Value,
) -> String {
    generate_traced(app, user, None, board, generator, kind, params).await
}

/// [`generate`], requested with `traceparent` when given.
pub async fn generate_traced(
    app: &TestApp,
    user: &TestUser,
    traceparent: Option<&str>,
    board: &str,
    generator: &str,
    kind: &str,
    params: Value,
) -> String {
    let data = app
        .ok_traced(
            Some(&user.token),
            traceparent,
            CREATE_GEN,
            json!({"input": {"boardId": board, "generatorName": generator, "artifactType": kind, "inputParams": params}}),
        )
        .await;
    data["createGeneration"]["id"].as_str().unwrap().to_string()
}

const GEN: &str = "query($id: UUID!) { generation(id: $id) { id status progress storageUrl outputMetadata errorMessage inputArtifacts { generationId role } startedAt completedAt } }";

pub async fn read(app: &TestApp, user: &TestUser, id: &str) -> Value {
    app.ok(Some(&user.token), GEN, json!({"id": id})).await["generation"].clone()
}

/// Polls until the generation's status is one of `statuses`.
pub async fn wait_for(
    app: &TestApp,
    user: &TestUser,
    id: &str,
    statuses: &[&str],
    within: Duration,
) -> Value {
    let deadline = Instant::now() + within;
    loop {
        let g = read(app, user, id).await;
        if statuses.iter().any(|s| g["status"] == s.to_uppercase()) {
            return g;
        }
        assert!(
            Instant::now() < deadline,
            "generation {id} never reached {statuses:?}: {g}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Reads an SSE stream to its end (or `within`); returns the `data:` payloads and each one's
/// `id:` (`None` for a snapshot, which has no place in the replay stream).
pub async fn sse(
    app: &TestApp,
    token: &str,
    id: &str,
    within: Duration,
) -> (Vec<Value>, Vec<Option<StreamId>>) {
    sse_after(app, token, id, None, within).await
}

/// [`sse`], reconnecting with `Last-Event-ID: last_event_id`.
pub async fn sse_after(
    app: &TestApp,
    token: &str,
    id: &str,
    last_event_id: Option<&str>,
    within: Duration,
) -> (Vec<Value>, Vec<Option<StreamId>>) {
    let mut req = app
        .client
        .get(app.url(&format!("/api/sse/generations/{id}/progress")))
        .bearer_auth(token)
        .header("Accept", "text/event-stream");
    if let Some(last) = last_event_id {
        req = req.header("Last-Event-ID", last);
    }
    let res = req.send().await.unwrap();
    assert_eq!(res.status(), 200, "{:?}", res.text().await);
    let mut body = res.bytes_stream();
    let mut buffer = String::new();
    let (mut events, mut ids) = (vec![], vec![]);
    let deadline = tokio::time::Instant::now() + within;
    while let Ok(Some(chunk)) = tokio::time::timeout_at(deadline, body.next()).await {
        buffer.push_str(&String::from_utf8_lossy(&chunk.unwrap()));
        while let Some(end) = buffer.find("\n\n") {
            let frame: String = buffer.drain(..end + 2).collect();
            let mut id = None;
            for line in frame.lines() {
                if let Some(data) = line.strip_prefix("data: ") {
                    events.push(serde_json::from_str(data).unwrap());
                    ids.push(id);
                } else if let Some(n) = line.strip_prefix("id: ") {
                    id = Some(n.parse().unwrap());
                }
            }
        }
    }
    (events, ids)
}

/// Requests a `local-echo` text on `board` and waits for it to complete: its id.
async fn echo_completed(app: &TestApp, user: &TestUser, board: &str, prompt: &str) -> String {
    let id = generate(
        app,
        user,
        board,
        "local-echo",
        "TEXT",
        json!({"prompt": prompt}),
    )
    .await;
    wait_for(app, user, &id, &["completed"], Duration::from_secs(20)).await;
    id
}

/// Requests an image on `board` and reads its progress stream to the end: the generation's id,
/// the events and their ids.
async fn streamed_image(
    app: &TestApp,
    user: &TestUser,
    board: &str,
) -> (String, Vec<Value>, Vec<Option<StreamId>>) {
    let params = json!({"prompt": "a red fox", "width": 96, "height": 64});
    let id = generate(app, user, board, "local-image", "IMAGE", params).await;
    let (events, ids) = sse(app, &user.token, &id, Duration::from_secs(20)).await;
    (id, events, ids)
}

#[tokio::test]
async fn an_image_generation_runs_streams_progress_and_serves_its_artifact() {
    let app = TestApp::spawn().await;
    let w = worker(&app, Registry::builtin()).await;
    let alice = app.user("alice").await;
    let b = board(&app, &alice).await;
    let (id, events, ids) = streamed_image(&app, &alice, &b).await;
    let last = events.last().unwrap();
    assert_eq!(last["status"], "completed", "{events:?}");
    assert_eq!(last["progress"], 100.0);
    assert_eq!(last["jobId"], id.as_str());
    assert_eq!(last["job_id"], id.as_str());
    // The snapshot comes first; progress never goes back; ids increase.
    assert!(matches!(
        events[0]["status"].as_str(),
        Some("pending" | "processing" | "completed")
    ));
    let progress: Vec<f64> = events
        .iter()
        .map(|e| e["progress"].as_f64().unwrap())
        .collect();
    assert!(progress.windows(2).all(|w| w[0] <= w[1]), "{progress:?}");
    assert_eq!(ids[0], None, "the snapshot has no replay id");
    let live: Vec<StreamId> = ids[1..]
        .iter()
        .map(|id| id.expect("live events carry an id"))
        .collect();
    assert!(live.windows(2).all(|w| w[0] < w[1]), "{ids:?}");

    let g = wait_for(&app, &alice, &id, &["completed"], Duration::from_secs(5)).await;
    assert_eq!(g["progress"], 100.0);
    let meta = &g["outputMetadata"];
    assert_eq!(meta["width"], 96);
    assert_eq!(meta["height"], 64);
    assert_eq!(meta["format"], "png");
    let url = g["storageUrl"].as_str().unwrap();
    let res = app.client.get(url).send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-type"], "image/png");
    assert!(res.headers().contains_key("etag"));
    let bytes = res.bytes().await.unwrap();
    assert_eq!(bytes.len() as u64, meta["size"].as_u64().unwrap());
    let img = image::load_from_memory(&bytes).unwrap();
    assert_eq!((img.width(), img.height()), (96, 64));

    // Range requests serve parts (video seeking).
    let res = app
        .client
        .get(url)
        .header("Range", "bytes=0-9")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 206);
    assert_eq!(res.bytes().await.unwrap().len(), 10);
    let res = app
        .client
        .get(format!("{url}?download=true"))
        .send()
        .await
        .unwrap();
    assert!(res.headers()["content-disposition"]
        .to_str()
        .unwrap()
        .starts_with("attachment"));
    w.stop().await;
}

#[tokio::test]
async fn audio_and_text_generations_produce_real_artifacts() {
    let app = TestApp::spawn().await;
    let w = worker(&app, Registry::builtin()).await;
    let alice = app.user("alice").await;
    let b = board(&app, &alice).await;
    let audio = generate(
        &app,
        &alice,
        &b,
        "local-audio",
        "AUDIO",
        json!({"prompt": "doremi", "duration": 0.5, "sample_rate": 8000}),
    )
    .await;
    let text = generate(
        &app,
        &alice,
        &b,
        "local-text",
        "TEXT",
        json!({"prompt": "hello world", "max_words": 12}),
    )
    .await;
    let a = wait_for(
        &app,
        &alice,
        &audio,
        &["completed"],
        Duration::from_secs(20),
    )
    .await;
    assert_eq!(a["outputMetadata"]["sample_rate"], 8000);
    assert_eq!(a["outputMetadata"]["channels"], 1);
    assert_eq!(a["outputMetadata"]["duration"], 0.5);
    let wav = app
        .client
        .get(a["storageUrl"].as_str().unwrap())
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(&wav[0..4], b"RIFF");
    assert_eq!(wav.len(), 44 + 4000 * 2);
    let t = wait_for(&app, &alice, &text, &["completed"], Duration::from_secs(20)).await;
    let content = t["outputMetadata"]["content"].as_str().unwrap();
    assert_eq!(content.split_whitespace().count(), 12);
    let served = app
        .client
        .get(t["storageUrl"].as_str().unwrap())
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(served, content);
    w.stop().await;
}

#[tokio::test]
async fn an_image_filter_records_lineage_to_its_input() {
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
        json!({"prompt": "source", "width": 40, "height": 20}),
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
    let filtered = generate(
        &app,
        &alice,
        &b,
        "local-image-filter",
        "IMAGE",
        json!({"image": source, "filter": "invert", "scale": 2.0}),
    )
    .await;
    let g = wait_for(
        &app,
        &alice,
        &filtered,
        &["completed", "failed"],
        Duration::from_secs(20),
    )
    .await;
    assert_eq!(g["status"], "COMPLETED", "{g}");
    assert_eq!(g["outputMetadata"]["width"], 80);
    assert_eq!(g["outputMetadata"]["height"], 40);
    assert_eq!(
        g["inputArtifacts"],
        json!([{"generationId": source, "role": "image"}])
    );
    let tree = app
        .ok(Some(&alice.token), "query($id: UUID!) { generation(id: $id) { ancestry { parents { generation { id } role } } } }", json!({"id": filtered}))
        .await;
    assert_eq!(
        tree["generation"]["ancestry"]["parents"][0]["generation"]["id"],
        source.as_str()
    );
    let down = app
        .ok(Some(&alice.token), "query($id: UUID!) { generation(id: $id) { descendants { children { generation { id } } } } }", json!({"id": source}))
        .await;
    assert_eq!(
        down["generation"]["descendants"]["children"][0]["generation"]["id"],
        filtered.as_str()
    );
    w.stop().await;
}

#[tokio::test]
async fn inputs_that_are_not_completed_fail_the_job_clearly() {
    let app = TestApp::spawn().await;
    let w = worker(&app, Registry::builtin()).await;
    let alice = app.user("alice").await;
    let b = board(&app, &alice).await;
    // An input of the wrong type is refused when the job is created.
    let text = generate(
        &app,
        &alice,
        &b,
        "local-echo",
        "TEXT",
        json!({"prompt": "x", "delay_ms": 3000}),
    )
    .await;
    let res = app
        .gql(
            Some(&alice.token),
            CREATE_GEN,
            json!({"input": {"boardId": b, "generatorName": "local-image-filter", "artifactType": "IMAGE",
                "inputParams": {"image": text}}}),
        )
        .await;
    assert_eq!(
        crate::util::error_of(&res).0,
        format!(
            "Invalid input parameters: image: generation {text} is a text artifact, expected image"
        )
    );
    // An image that is not finished when the job runs fails the job, clearly.
    let mut pending = fixtures::GenerationFixture::completed_image(&b, &alice.id);
    pending.status = "pending";
    pending.storage_url = None;
    let pending = pending.insert(&app).await;
    let bad = generate(
        &app,
        &alice,
        &b,
        "local-image-filter",
        "IMAGE",
        json!({"image": pending}),
    )
    .await;
    let g = wait_for(&app, &alice, &bad, &["failed"], Duration::from_secs(20)).await;
    let msg = g["errorMessage"].as_str().unwrap();
    assert_eq!(
        msg,
        format!("Invalid input parameters: image: generation {pending} is pending, not completed")
    );
    w.stop().await;
}

#[tokio::test]
async fn cancelling_a_running_job_stops_it_within_a_second() {
    let app = TestApp::spawn().await;
    let w = worker(&app, Registry::builtin()).await;
    let alice = app.user("alice").await;
    let b = board(&app, &alice).await;
    let id = generate(
        &app,
        &alice,
        &b,
        "local-echo",
        "TEXT",
        json!({"prompt": "slow", "delay_ms": 20000}),
    )
    .await;
    wait_for(&app, &alice, &id, &["processing"], Duration::from_secs(20)).await;
    let stream = {
        let (app, token, id) = (&app, alice.token.clone(), id.clone());
        async move { sse(app, &token, &id, Duration::from_secs(10)).await }
    };
    let cancel = async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        app.ok(
            Some(&alice.token),
            "mutation($id: UUID!) { cancelGeneration(id: $id) { status } }",
            json!({"id": id}),
        )
        .await
    };
    let ((events, _), cancelled) = tokio::join!(stream, cancel);
    assert_eq!(cancelled["cancelGeneration"]["status"], "CANCELLED");
    assert_eq!(events.last().unwrap()["status"], "cancelled", "{events:?}");
    let uuid = uuid::Uuid::parse_str(&id).unwrap();
    let deadline = Instant::now() + Duration::from_secs(1);
    while w.env.running.lock().unwrap().contains_key(&uuid) {
        assert!(
            Instant::now() < deadline,
            "the running job was not aborted within 1 s"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let g = read(&app, &alice, &id).await;
    assert_eq!(g["status"], "CANCELLED");
    assert_eq!(g["errorMessage"], "Cancelled by user");
    w.stop().await;
}

#[tokio::test]
async fn a_late_subscriber_gets_the_final_snapshot_and_the_stream_ends() {
    let app = TestApp::spawn().await;
    let w = worker(&app, Registry::builtin()).await;
    let alice = app.user("alice").await;
    let b = board(&app, &alice).await;
    let id = generate(
        &app,
        &alice,
        &b,
        "local-echo",
        "TEXT",
        json!({"prompt": "done"}),
    )
    .await;
    wait_for(&app, &alice, &id, &["completed"], Duration::from_secs(20)).await;
    let started = Instant::now();
    let (events, ids) = sse(&app, &alice.token, &id, Duration::from_secs(10)).await;
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "the stream did not end after the terminal snapshot"
    );
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["status"], "completed");
    assert_eq!(events[0]["progress"], 100.0);
    assert!(events[0]["artifacts"][0]["url"].as_str().is_some());
    assert_eq!(ids, vec![None]);
    w.stop().await;
}

#[tokio::test]
async fn a_reconnecting_progress_stream_replays_the_events_it_missed() {
    let app = TestApp::spawn().await;
    let w = worker(&app, Registry::builtin()).await;
    let alice = app.user("alice").await;
    let b = board(&app, &alice).await;
    let (id, events, ids) = streamed_image(&app, &alice, &b).await;
    assert_eq!(events.last().unwrap()["status"], "completed", "{events:?}");
    assert!(
        events.len() >= 3,
        "a snapshot and at least two live events: {events:?}"
    );
    let first_live = ids[1].unwrap().to_string();
    // Another generation on the board publishes events in between: not this stream's.
    echo_completed(&app, &alice, &b, "x").await;

    // Resuming after the first live event: the events after it, the same ids, no snapshot,
    // and the end after the terminal one.
    let (replayed, replayed_ids) = sse_after(
        &app,
        &alice.token,
        &id,
        Some(&first_live),
        Duration::from_secs(10),
    )
    .await;
    assert_eq!(replayed_ids, ids[2..], "{replayed:?}");
    assert_eq!(replayed, events[2..]);

    // An id older than what is kept, a counter from before replay existed, or an id from the
    // future (which would hide every live event): the snapshot.
    for stale in ["1-0", "3", "99999999999999-0"] {
        let (events, ids) = sse_after(
            &app,
            &alice.token,
            &id,
            Some(stale),
            Duration::from_secs(10),
        )
        .await;
        assert_eq!(ids, vec![None], "{stale}: {events:?}");
        assert_eq!(events[0]["status"], "completed");
        assert!(events[0]["artifacts"][0]["url"].as_str().is_some());
    }
    w.stop().await;
}

#[tokio::test]
async fn progress_streams_check_identity_and_access() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice").await;
    let bob = app.user("bob").await;
    let b = board(&app, &alice).await;
    let id = generate(
        &app,
        &alice,
        &b,
        "local-echo",
        "TEXT",
        json!({"prompt": "x"}),
    )
    .await;
    let url = app.url(&format!("/api/sse/generations/{id}/progress"));
    let res = app.client.get(&url).send().await.unwrap();
    assert_eq!(res.status(), 401);
    assert_eq!(res.headers()["www-authenticate"], "Bearer");
    let res = app
        .client
        .get(&url)
        .bearer_auth("garbage")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    let res = app
        .client
        .get(&url)
        .bearer_auth(&bob.token)
        .send()
        .await
        .unwrap();
    // Answered like an unknown id: the generation's existence is not revealed.
    assert_eq!(res.status(), 404);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["detail"], "Generation not found");
    let res = app
        .client
        .get(app.url("/api/sse/generations/not-a-uuid/progress"))
        .bearer_auth(&alice.token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
    let res = app
        .client
        .get(app.url(&format!(
            "/api/sse/generations/{}/progress",
            uuid::Uuid::new_v4()
        )))
        .bearer_auth(&alice.token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["detail"], "Generation not found");
}

#[tokio::test]
async fn a_counter_last_event_id_from_before_replay_gets_the_snapshot() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice").await;
    let b = board(&app, &alice).await;
    let id = generate(
        &app,
        &alice,
        &b,
        "local-echo",
        "TEXT",
        json!({"prompt": "x"}),
    )
    .await;
    fixtures::sql(&app, &format!("UPDATE boards.generations SET status = 'failed', error_message = 'boom' WHERE id = '{id}'")).await;
    let res = app
        .client
        .get(app.url(&format!("/api/sse/generations/{id}/progress")))
        .bearer_auth(&alice.token)
        .header("Last-Event-ID", "41")
        .send()
        .await
        .unwrap();
    assert_eq!(res.headers()["cache-control"], "no-cache");
    let text = res.text().await.unwrap();
    // Not a replay id: the row's state, which has no place in the replay stream (no `id:`).
    assert!(text.starts_with("data: "), "{text}");
    assert!(text.contains("\"message\":\"boom\""), "{text}");
}

#[tokio::test]
async fn storage_refuses_traversal_and_reports_missing_files() {
    let app = TestApp::spawn().await;
    let res = app
        .client
        .get(app.url("/api/storage/..%2F..%2Fetc%2Fpasswd"))
        .send()
        .await
        .unwrap();
    assert!(
        res.status() == 403 || res.status() == 404,
        "{}",
        res.status()
    );
    let res = app
        .client
        .get(app.url("/api/storage/a/b/missing.png"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
    let res = app
        .client
        .get(app.url("/api/storage/status"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
}

/// A generator whose failures the test controls.
struct Flaky {
    calls: Arc<AtomicU32>,
    transient_failures: u32,
    permanent: bool,
}

#[async_trait::async_trait]
impl Execute for Flaky {
    async fn generate(
        &self,
        _input: Value,
        _ctx: &Context<'_>,
    ) -> Result<Vec<Output>, GenerateError> {
        let n = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
        if self.permanent {
            return Err(GenerateError::Permanent(
                "the provider refused the request (HTTP 400)".into(),
            ));
        }
        if n <= self.transient_failures {
            return Err(GenerateError::Transient(format!(
                "provider timed out (call {n})"
            )));
        }
        Ok(vec![Output::bytes(
            b"ok".to_vec(),
            "txt",
            "text/plain",
            [
                ("format".to_string(), json!("plain")),
                ("content".to_string(), json!("ok")),
            ]
            .into_iter()
            .collect(),
        )])
    }
}

fn flaky_registry(calls: Arc<AtomicU32>, transient_failures: u32, permanent: bool) -> Registry {
    let mut r = Registry::builtin();
    r.register(Registered::custom(
        "test-flaky",
        "fails as told",
        ArtifactKind::Text,
        json!({"type": "object", "properties": {}}),
        Arc::new(Flaky {
            calls,
            transient_failures,
            permanent,
        }),
    ))
    .unwrap();
    r
}

async fn app_with_flaky(max_attempts: u32) -> TestApp {
    TestApp::spawn_with(Options::default().env("BOARDS_JOB_MAX_ATTEMPTS", max_attempts.to_string()))
        .await
}

/// The API's registry does not know the test generator, so the job is created through the
/// same domain function `createGeneration` uses, with a registry that does.
async fn create_flaky(app: &TestApp, user: &TestUser, board: &str) -> String {
    let mut conn = app.db.connect().await.unwrap();
    let actor = boards_shared::domain::Actor {
        user_id: uuid::Uuid::parse_str(&user.id).unwrap(),
        tenant_id: app.state.auth.tenant_id("default").await.unwrap(),
    };
    let registry = flaky_registry(Arc::new(AtomicU32::new(0)), 0, false);
    let g = boards_shared::domain::generations::create_generation(
        &mut conn,
        &actor,
        &registry,
        boards_shared::domain::generations::CreateGeneration {
            board_id: uuid::Uuid::parse_str(board).unwrap(),
            generator_name: "test-flaky".into(),
            artifact_type: "text".into(),
            input_params: json!({}),
        },
        Default::default(),
    )
    .await
    .unwrap();
    app.state.relay.wake();
    g.id.to_string()
}

#[tokio::test]
async fn a_transient_failure_is_retried_and_then_succeeds() {
    let app = app_with_flaky(3).await;
    let calls = Arc::new(AtomicU32::new(0));
    let w = worker(&app, flaky_registry(calls.clone(), 1, false)).await;
    let alice = app.user("alice").await;
    let b = board(&app, &alice).await;
    let id = create_flaky(&app, &alice, &b).await;
    let g = wait_for(
        &app,
        &alice,
        &id,
        &["completed", "failed"],
        Duration::from_secs(20),
    )
    .await;
    assert_eq!(g["status"], "COMPLETED", "{g}");
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    assert!(w
        .env
        .metrics
        .render()
        .contains("boards_job_retries_total{generator=\"test-flaky\"} 1"));
    w.stop().await;
}

#[tokio::test]
async fn a_permanent_failure_fails_at_once() {
    let app = app_with_flaky(3).await;
    let calls = Arc::new(AtomicU32::new(0));
    let w = worker(&app, flaky_registry(calls.clone(), 0, true)).await;
    let alice = app.user("alice").await;
    let b = board(&app, &alice).await;
    let id = create_flaky(&app, &alice, &b).await;
    let g = wait_for(&app, &alice, &id, &["failed"], Duration::from_secs(20)).await;
    assert_eq!(
        g["errorMessage"],
        "the provider refused the request (HTTP 400)"
    );
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    w.stop().await;
}

#[tokio::test]
async fn exhausted_jobs_are_dead_lettered_and_failed() {
    let app = app_with_flaky(2).await;
    let calls = Arc::new(AtomicU32::new(0));
    let w = worker(&app, flaky_registry(calls.clone(), 100, false)).await;
    let alice = app.user("alice").await;
    let b = board(&app, &alice).await;
    let id = create_flaky(&app, &alice, &b).await;
    let g = wait_for(&app, &alice, &id, &["failed"], Duration::from_secs(20)).await;
    assert!(
        g["errorMessage"]
            .as_str()
            .unwrap()
            .starts_with("Failed after 2 attempts: provider timed out"),
        "{g}"
    );
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    // The message waits in the dead-letter queue for an operator.
    let conn = boards_shared::queue::connect(app.config.amqp.url.expose(), "test", None)
        .await
        .unwrap();
    let ch = conn.create_channel().await.unwrap();
    let topology = boards_shared::queue::Topology::new(&app.config);
    let got = ch
        .basic_get(
            topology.dead_queue("default").as_str().into(),
            Default::default(),
        )
        .await
        .unwrap();
    let msg: Value =
        serde_json::from_slice(&got.expect("a dead-lettered message").delivery.data).unwrap();
    assert_eq!(msg["generation_id"], id.as_str());
    w.stop().await;
}

#[tokio::test]
async fn jobs_created_while_rabbitmq_is_unreachable_run_once_it_is_back() {
    // The API reaches RabbitMQ through a proxy the test switches on and off.
    let proxy = crate::util::proxy::Proxy::start("127.0.0.1:5672").await;
    proxy.set_enabled(false);
    let app = TestApp::spawn_with(Options::default().env(
        "BOARDS_AMQP_URL",
        format!("amqp://guest:guest@127.0.0.1:{}/%2f", proxy.port()),
    ))
    .await;
    let alice = app.user("alice").await;
    let b = board(&app, &alice).await;
    let id = generate(
        &app,
        &alice,
        &b,
        "local-echo",
        "TEXT",
        json!({"prompt": "patience"}),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(
        fixtures::outbox_count(&app, &id).await,
        1,
        "the job waits in the outbox"
    );
    assert_eq!(read(&app, &alice, &id).await["status"], "PENDING");
    let ready = app.client.get(app.url("/ready")).send().await.unwrap();
    assert_eq!(ready.status(), 503);
    assert!(ready.text().await.unwrap().contains("rabbitmq"));

    // The worker talks to RabbitMQ directly.
    let mut worker_config = app.config.clone();
    worker_config.amqp.url =
        boards_shared::config::Secret::new("amqp://guest:guest@127.0.0.1:5672/%2f");
    let w = Worker::start(
        worker_config,
        boards_shared::logging::discard(),
        Registry::builtin(),
    )
    .await
    .unwrap();
    proxy.set_enabled(true);
    let g = wait_for(&app, &alice, &id, &["completed"], Duration::from_secs(30)).await;
    assert_eq!(g["outputMetadata"]["content"], "patience");
    assert_eq!(fixtures::outbox_count(&app, &id).await, 0);
    w.stop().await;
}

#[tokio::test]
async fn deleting_a_generation_also_stops_its_run() {
    let app = TestApp::spawn().await;
    let w = worker(&app, Registry::builtin()).await;
    let alice = app.user("alice").await;
    let b = board(&app, &alice).await;
    let id = generate(
        &app,
        &alice,
        &b,
        "local-echo",
        "TEXT",
        json!({"prompt": "x", "delay_ms": 20000}),
    )
    .await;
    wait_for(&app, &alice, &id, &["processing"], Duration::from_secs(20)).await;
    let res = app
        .gql(
            Some(&alice.token),
            "mutation($id: UUID!) { deleteGeneration(id: $id) }",
            json!({"id": id}),
        )
        .await;
    assert_eq!(res["data"]["deleteGeneration"], true, "{res}");
    let uuid = uuid::Uuid::parse_str(&id).unwrap();
    let deadline = Instant::now() + Duration::from_secs(2);
    while w.env.running.lock().unwrap().contains_key(&uuid) {
        assert!(Instant::now() < deadline, "the deleted job kept running");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    w.stop().await;
}

#[tokio::test]
async fn without_redis_progress_streams_poll_and_graphql_keeps_working() {
    let proxy = crate::util::proxy::Proxy::start("127.0.0.1:6379").await;
    proxy.set_enabled(false);
    let app = TestApp::spawn_with(Options::default().env(
        "BOARDS_REDIS_URL",
        format!("redis://127.0.0.1:{}", proxy.port()),
    ))
    .await;
    let alice = app.user("alice").await;
    let b = board(&app, &alice).await;
    let id = generate(
        &app,
        &alice,
        &b,
        "local-echo",
        "TEXT",
        json!({"prompt": "x"}),
    )
    .await;
    let finish = {
        let app = &app;
        let id = id.clone();
        async move {
            tokio::time::sleep(Duration::from_millis(1500)).await;
            fixtures::sql(app, &format!(
                "UPDATE boards.generations SET status = 'completed', progress = 100 WHERE id = '{id}'"
            ))
            .await;
        }
    };
    let ((events, _), ()) = tokio::join!(
        sse(&app, &alice.token, &id, Duration::from_secs(10)),
        finish
    );
    assert_eq!(events.first().unwrap()["status"], "pending");
    assert_eq!(events.last().unwrap()["status"], "completed", "{events:?}");
    let ready = app.client.get(app.url("/ready")).send().await.unwrap();
    assert_eq!(ready.status(), 503);
    assert!(ready.text().await.unwrap().contains("redis"));
}

#[tokio::test]
async fn a_worker_reconnects_after_losing_rabbitmq() {
    let proxy = crate::util::proxy::Proxy::start("127.0.0.1:5672").await;
    let app = TestApp::spawn().await;
    let mut worker_config = app.config.clone();
    worker_config.amqp.url = boards_shared::config::Secret::new(format!(
        "amqp://guest:guest@127.0.0.1:{}/%2f",
        proxy.port()
    ));
    let w = Worker::start(
        worker_config,
        crate::util::test_logger(),
        Registry::builtin(),
    )
    .await
    .unwrap();
    let alice = app.user("alice").await;
    let b = board(&app, &alice).await;
    echo_completed(&app, &alice, &b, "before").await;
    // Cut the worker's connection (and refuse new ones) for a moment.
    proxy.set_enabled(false);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let during = generate(
        &app,
        &alice,
        &b,
        "local-echo",
        "TEXT",
        json!({"prompt": "during"}),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(read(&app, &alice, &during).await["status"], "PENDING");
    proxy.set_enabled(true);
    let g = wait_for(
        &app,
        &alice,
        &during,
        &["completed"],
        Duration::from_secs(30),
    )
    .await;
    assert_eq!(g["outputMetadata"]["content"], "during");
    w.stop().await;
}
