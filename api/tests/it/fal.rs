//! fal.ai models through the real API and worker against a local fake of fal's queue API and
//! CDN (`boards_shared::testing::fake_fal`) on 127.0.0.1.

use std::time::Duration;

use boards_shared::testing::fake_fal::{Behaviour, FakeFal};
use boards_worker::Worker;
use serde_json::{json, Value};

use crate::{
    generations::CREATE_GEN,
    pipeline::{board, generate, wait_for},
    util::{error_of, Options, TestApp, TestUser},
};

fn options(fake: &FakeFal) -> Options {
    Options::default()
        .env("FAL_KEY", "test-fal-key")
        .env("BOARDS_FAL_BASE_URL", fake.url())
        .env("BOARDS_FAL_REST_URL", fake.url())
        .env("BOARDS_PROVIDER_POLL_INTERVAL_MS", "20")
        .env("BOARDS_PROVIDER_MAX_POLL_INTERVAL_MS", "50")
}

async fn worker(app: &TestApp) -> Worker {
    let registry = boards_shared::generators::config::load(&app.config)
        .unwrap()
        .registry;
    crate::pipeline::worker(app, registry).await
}

async fn setup(fake: &FakeFal, options: Options) -> (TestApp, TestUser, String, Worker) {
    let app = TestApp::spawn_with(options).await;
    let user = app.user("fal-user").await;
    let b = board(&app, &user).await;
    let w = worker(&app).await;
    let _ = fake;
    (app, user, b, w)
}

const WAIT: Duration = Duration::from_secs(30);

#[tokio::test]
async fn a_fal_model_runs_end_to_end_with_a_batch_and_sizes_read_from_the_bytes() {
    let fake = FakeFal::start(Behaviour::default()).await;
    let (app, user, b, w) = setup(&fake, options(&fake)).await;
    let id = generate(
        &app,
        &user,
        &b,
        "fal-nano-banana-pro",
        "IMAGE",
        json!({"prompt": "a lighthouse at dusk", "num_images": 2, "aspect_ratio": "16:9"}),
    )
    .await;
    let g = wait_for(&app, &user, &id, &["completed", "failed"], WAIT).await;
    assert_eq!(g["status"], "COMPLETED", "{g}");
    // runtime.md §3.9.2: the body is the arguments object, defaults filled in, nothing else.
    let submitted = fake.submitted();
    assert_eq!(submitted.len(), 1);
    assert_eq!(submitted[0].0, "fal-ai/nano-banana-pro");
    // Every API call to the provider continues the job's trace, each as a span of its own
    // (output downloads go through the SSRF-guarded fetcher, without it).
    let calls = fake.server.received_requests().await.unwrap_or_default();
    let traces: Vec<boards_shared::trace::TraceContext> = calls
        .iter()
        .filter(|r| !r.url.path().starts_with("/files/"))
        .map(|r| {
            let header = r.headers.get("traceparent").and_then(|v| v.to_str().ok());
            boards_shared::trace::TraceContext::parse(header.unwrap_or_default())
                .unwrap_or_else(|| panic!("{} {} without traceparent", r.method, r.url))
        })
        .collect();
    assert!(traces.len() >= 2, "{traces:?}");
    assert!(traces.iter().all(|t| t.trace_id == traces[0].trace_id));
    assert_ne!(traces[0].span_id, traces[1].span_id);
    assert_eq!(
        submitted[0].1,
        json!({"prompt": "a lighthouse at dusk", "aspect_ratio": "16:9", "num_images": 2,
               "resolution": "1K", "output_format": "png", "sync_mode": true})
    );
    let meta = &g["outputMetadata"];
    // 64×48 in the bytes although the answer claims 640×480.
    assert_eq!(
        (meta["width"].as_u64(), meta["height"].as_u64()),
        (Some(64), Some(48)),
        "{meta}"
    );
    assert_eq!(meta["format"], "png");
    assert_eq!(meta["batch_index"], 0);
    assert_eq!(meta["batch_size"], 2);
    let batch_id = meta["batch_id"].as_str().unwrap().to_string();
    // The second image is a batch row of its own: completed, same batch, index 1.
    let mut conn = app.db.connect().await.unwrap();
    use diesel::QueryableByName;
    #[derive(QueryableByName)]
    struct Row {
        #[diesel(sql_type = diesel::sql_types::Text)]
        status: String,
        #[diesel(sql_type = diesel::sql_types::Jsonb)]
        output_metadata: Value,
        #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Text>)]
        storage_url: Option<String>,
    }
    let rows: Vec<Row> = diesel_async::RunQueryDsl::load(
        diesel::sql_query(
            "SELECT status, output_metadata, storage_url FROM boards.generations WHERE id <> $1 AND board_id = $2",
        )
        .bind::<diesel::sql_types::Uuid, _>(uuid::Uuid::parse_str(&id).unwrap())
        .bind::<diesel::sql_types::Uuid, _>(uuid::Uuid::parse_str(&b).unwrap()),
        &mut conn,
    )
    .await
    .unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].status, "completed");
    assert_eq!(rows[0].output_metadata["batch_id"], batch_id.as_str());
    assert_eq!(rows[0].output_metadata["batch_index"], 1);
    assert_eq!(rows[0].output_metadata["width"], 64);
    assert!(rows[0].storage_url.is_some());
    // The upstream id was recorded.
    #[derive(QueryableByName)]
    struct External {
        #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Text>)]
        external_job_id: Option<String>,
    }
    let ext: External = diesel_async::RunQueryDsl::get_result(
        diesel::sql_query("SELECT external_job_id FROM boards.generations WHERE id = $1")
            .bind::<diesel::sql_types::Uuid, _>(uuid::Uuid::parse_str(&id).unwrap()),
        &mut conn,
    )
    .await
    .unwrap();
    let ext = ext.external_job_id;
    assert!(ext.is_some_and(|e| !e.is_empty()));
    assert!(fake.polls() >= 3, "status polled until COMPLETED");
    w.stop().await;
}

#[tokio::test]
async fn an_upstream_failure_is_surfaced_with_the_providers_message() {
    let fake = FakeFal::start(Behaviour {
        fail_with: Some((
            422,
            json!({"detail": [{"loc": ["body", "prompt"], "msg": "is flagged by the safety checker"}]}),
        )),
        ..Behaviour::default()
    })
    .await;
    let (app, user, b, w) = setup(&fake, options(&fake)).await;
    let id = generate(
        &app,
        &user,
        &b,
        "fal-flux-pro-ultra",
        "IMAGE",
        json!({"prompt": "x"}),
    )
    .await;
    let g = wait_for(&app, &user, &id, &["completed", "failed"], WAIT).await;
    assert_eq!(g["status"], "FAILED");
    assert_eq!(
        g["errorMessage"],
        "fal.ai: prompt: is flagged by the safety checker"
    );
    w.stop().await;
}

#[tokio::test]
async fn refused_submits_are_retried_after_retry_after() {
    let fake = FakeFal::start(Behaviour {
        refuse_submits: 2,
        ..Behaviour::default()
    })
    .await;
    let (app, user, b, w) = setup(&fake, options(&fake)).await;
    let id = generate(
        &app,
        &user,
        &b,
        "fal-imagen4-preview",
        "IMAGE",
        json!({"prompt": "x"}),
    )
    .await;
    let g = wait_for(&app, &user, &id, &["completed", "failed"], WAIT).await;
    assert_eq!(g["status"], "COMPLETED", "{g}");
    assert_eq!(fake.refused(), 2);
    assert_eq!(fake.submits(), 1, "one submit taken, no duplicate");
    w.stop().await;
}

#[tokio::test]
async fn a_user_cancel_cancels_the_upstream_request() {
    let fake = FakeFal::start(Behaviour {
        never_finish: true,
        ..Behaviour::default()
    })
    .await;
    let (app, user, b, w) = setup(&fake, options(&fake)).await;
    let id = generate(
        &app,
        &user,
        &b,
        "fal-veo3",
        "VIDEO",
        json!({"prompt": "waves"}),
    )
    .await;
    let deadline = std::time::Instant::now() + WAIT;
    while fake.polls() < 2 {
        assert!(std::time::Instant::now() < deadline, "never polled");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    app.ok(
        Some(&user.token),
        "mutation($id: UUID!) { cancelGeneration(id: $id) { id status } }",
        json!({"id": id}),
    )
    .await;
    while fake.cancels().is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "upstream never cancelled"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(fake.cancels().len(), 1);
    let g = wait_for(&app, &user, &id, &["cancelled"], WAIT).await;
    assert_eq!(g["status"], "CANCELLED");
    w.stop().await;
}

#[tokio::test]
async fn a_per_model_timeout_fails_the_job_and_cancels_upstream() {
    let fake = FakeFal::start(Behaviour {
        never_finish: true,
        ..Behaviour::default()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let yaml = dir.path().join("generators.yaml");
    std::fs::write(
        &yaml,
        "generators:\n  - id: fal-flux-2\n    timeout_seconds: 1\n",
    )
    .unwrap();
    let options = options(&fake).env(
        "BOARDS_GENERATORS_CONFIG_PATH",
        yaml.to_string_lossy().to_string(),
    );
    let (app, user, b, w) = setup(&fake, options).await;
    let id = generate(
        &app,
        &user,
        &b,
        "fal-flux-2",
        "IMAGE",
        json!({"prompt": "x"}),
    )
    .await;
    let g = wait_for(&app, &user, &id, &["completed", "failed"], WAIT).await;
    assert_eq!(g["status"], "FAILED");
    assert!(
        g["errorMessage"]
            .as_str()
            .unwrap()
            .contains("timed out after 1 s"),
        "{g}"
    );
    assert_eq!(fake.cancels().len(), 1);
    w.stop().await;
}

#[tokio::test]
async fn without_a_key_fal_models_are_listed_unavailable_and_refused_at_creation() {
    let app = TestApp::spawn().await;
    let user = app.user("keyless").await;
    let b = board(&app, &user).await;
    let list = app
        .ok(
            Some(&user.token),
            "{ generators(artifactType: \"image\") { name available unavailableReason provider } }",
            json!({}),
        )
        .await;
    let banana = list["generators"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["name"] == "fal-nano-banana-pro")
        .unwrap()
        .clone();
    assert_eq!(banana["available"], false);
    assert_eq!(banana["provider"], "fal");
    assert!(banana["unavailableReason"]
        .as_str()
        .unwrap()
        .contains("FAL_KEY"));
    let res = app
        .gql(
            Some(&user.token),
            CREATE_GEN,
            json!({"input": {"boardId": b, "generatorName": "fal-nano-banana-pro", "artifactType": "IMAGE", "inputParams": {"prompt": "hello"}}}),
        )
        .await;
    let (message, code) = error_of(&res);
    assert_eq!(code, "BAD_USER_INPUT", "{res}");
    assert!(
        message.starts_with("fal.ai: no API key is configured"),
        "{message}"
    );
}

#[tokio::test]
async fn inputs_are_uploaded_to_the_cdn_when_storage_urls_are_private() {
    let fake = FakeFal::start(Behaviour::default()).await;
    let options = options(&fake)
        .env("BOARDS_STORAGE_PUBLIC", "false")
        .env("BOARDS_STORAGE_SIGNING_KEY", "k".repeat(40));
    let (app, user, b, w) = setup(&fake, options).await;
    let source = generate(
        &app,
        &user,
        &b,
        "local-image",
        "IMAGE",
        json!({"prompt": "source", "width": 32, "height": 32}),
    )
    .await;
    wait_for(&app, &user, &source, &["completed"], WAIT).await;
    let id = generate(
        &app,
        &user,
        &b,
        "fal-nano-banana-edit",
        "IMAGE",
        json!({"prompt": "make it blue", "image_sources": [source]}),
    )
    .await;
    let g = wait_for(&app, &user, &id, &["completed", "failed"], WAIT).await;
    assert_eq!(g["status"], "COMPLETED", "{g}");
    let uploads = fake.uploads();
    assert_eq!(uploads.len(), 1);
    assert!(uploads[0].0.starts_with(&source), "{uploads:?}");
    assert!(uploads[0].1 > 0);
    let (_, body) = &fake.submitted()[0];
    let urls = body["image_urls"].as_array().unwrap();
    assert_eq!(urls.len(), 1);
    assert!(urls[0]
        .as_str()
        .unwrap()
        .starts_with(&format!("{}/cdn/", fake.url())));
    assert!(body.get("image_sources").is_none(), "renamed, not repeated");
    assert_eq!(g["inputArtifacts"][0]["generationId"], source.as_str());
    w.stop().await;
}

#[tokio::test]
async fn inputs_are_passed_as_urls_when_storage_urls_are_public() {
    let fake = FakeFal::start(Behaviour::default()).await;
    let (app, user, b, w) = setup(&fake, options(&fake).env("BOARDS_STORAGE_PUBLIC", "true")).await;
    let source = generate(
        &app,
        &user,
        &b,
        "local-image",
        "IMAGE",
        json!({"prompt": "source", "width": 32, "height": 32}),
    )
    .await;
    let s = wait_for(&app, &user, &source, &["completed"], WAIT).await;
    let id = generate(
        &app,
        &user,
        &b,
        "fal-nano-banana-edit",
        "IMAGE",
        json!({"prompt": "make it blue", "image_sources": [source]}),
    )
    .await;
    let g = wait_for(&app, &user, &id, &["completed", "failed"], WAIT).await;
    assert_eq!(g["status"], "COMPLETED", "{g}");
    assert!(fake.uploads().is_empty());
    let (_, body) = &fake.submitted()[0];
    assert_eq!(body["image_urls"], json!([s["storageUrl"]]));
    w.stop().await;
}

#[tokio::test]
async fn a_video_is_streamed_into_storage_with_its_duration_and_progress_from_the_logs() {
    let fake = FakeFal::start(Behaviour {
        polls_to_finish: 6,
        ..Behaviour::default()
    })
    .await;
    let (app, user, b, w) = setup(&fake, options(&fake)).await;
    let id = generate(
        &app,
        &user,
        &b,
        "fal-veo3",
        "VIDEO",
        json!({"prompt": "waves on rocks"}),
    )
    .await;
    let (events, _) = crate::pipeline::sse(&app, &user.token, &id, WAIT).await;
    let g = wait_for(&app, &user, &id, &["completed", "failed"], WAIT).await;
    assert_eq!(g["status"], "COMPLETED", "{g}");
    let meta = &g["outputMetadata"];
    assert_eq!(meta["content_type"], "video/mp4");
    assert_eq!(meta["format"], "mp4");
    assert_eq!(meta["duration"], 5.0, "read from the MP4 header: {meta}");
    assert!(meta.get("thumbnail_key").is_none());
    let messages: Vec<&str> = events
        .iter()
        .filter_map(|e| e["message"].as_str())
        .collect();
    assert!(
        messages
            .iter()
            .any(|m| m.contains("In the fal.ai queue (position 2)")),
        "{messages:?}"
    );
    assert!(
        messages.iter().any(|m| m.contains("step 1")),
        "{messages:?}"
    );
    let progress: Vec<f64> = events
        .iter()
        .filter_map(|e| e["progress"].as_f64())
        .collect();
    assert!(progress.windows(2).all(|p| p[0] <= p[1]), "{progress:?}");
    w.stop().await;
}

/// Provider clients live in the worker; the API reads only the catalogue (the worker crate is
/// a dev-dependency, for these tests).
#[test]
fn the_api_binary_never_links_provider_code() {
    let manifest =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml")).unwrap();
    let deps = manifest
        .split("\n[")
        .find(|s| s.starts_with("dependencies]"))
        .unwrap();
    assert!(!deps.contains("boards-worker"), "{deps}");
}
