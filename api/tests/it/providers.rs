//! Replicate, OpenAI and Kie.ai models through the real API and worker against local fakes of
//! their protocols (`boards_shared::testing::fake_providers`) on 127.0.0.1.

use std::time::Duration;

use boards_shared::testing::fake_providers::{self, Behaviour, Fake};
use boards_worker::Worker;
use serde_json::{json, Value};

use crate::{
    pipeline::{board, generate, wait_for},
    util::{Options, TestApp, TestUser},
};

const WAIT: Duration = Duration::from_secs(30);

fn options(replicate: Option<&Fake>, openai: Option<&Fake>, kie: Option<&Fake>) -> Options {
    let mut o = Options::default()
        .env("BOARDS_PROVIDER_POLL_INTERVAL_MS", "20")
        .env("BOARDS_PROVIDER_MAX_POLL_INTERVAL_MS", "50");
    if let Some(f) = replicate {
        o = o
            .env("REPLICATE_API_TOKEN", "test-replicate")
            .env("BOARDS_REPLICATE_BASE_URL", f.url());
    }
    if let Some(f) = openai {
        o = o
            .env("OPENAI_API_KEY", "test-openai")
            .env("BOARDS_OPENAI_BASE_URL", f.url());
    }
    if let Some(f) = kie {
        o = o
            .env("KIE_API_KEY", "test-kie")
            .env("BOARDS_KIE_BASE_URL", f.url())
            .env("BOARDS_KIE_UPLOAD_URL", f.url());
    }
    o
}

fn private(o: Options) -> Options {
    o.env("BOARDS_STORAGE_PUBLIC", "false")
        .env("BOARDS_STORAGE_SIGNING_KEY", "k".repeat(40))
}

async fn setup(options: Options) -> (TestApp, TestUser, String, Worker) {
    let app = TestApp::spawn_with(options).await;
    let user = app.user("provider-user").await;
    let b = board(&app, &user).await;
    let registry = boards_shared::generators::config::load(&app.config)
        .unwrap()
        .registry;
    let w = crate::pipeline::worker(&app, registry).await;
    (app, user, b, w)
}

async fn done(app: &TestApp, user: &TestUser, id: &str) -> Value {
    wait_for(app, user, id, &["completed", "failed", "cancelled"], WAIT).await
}

/// A completed generation made by a local generator, as an input artifact.
async fn local_input(
    app: &TestApp,
    user: &TestUser,
    b: &str,
    generator: &str,
    kind: &str,
    params: Value,
) -> String {
    let id = generate(app, user, b, generator, kind, params).await;
    let g = done(app, user, &id).await;
    assert_eq!(g["status"], "COMPLETED", "{g}");
    id
}

// --- Replicate ---------------------------------------------------------------------------

#[tokio::test]
async fn replicate_flux_pro_sends_the_originals_request_and_stores_the_output() {
    let fake = fake_providers::replicate(Behaviour::default()).await;
    let (app, user, b, w) = setup(options(Some(&fake), None, None)).await;
    let id = generate(
        &app,
        &user,
        &b,
        "replicate-flux-pro",
        "IMAGE",
        json!({"prompt": "a fox", "aspect_ratio": "16:9"}),
    )
    .await;
    let g = done(&app, &user, &id).await;
    assert_eq!(g["status"], "COMPLETED", "{g}");
    // runtime.md §3.9.1: the model-scoped endpoint, body {"input": {...}} with defaults.
    let submitted = fake.submitted();
    assert_eq!(submitted.len(), 1);
    assert_eq!(
        submitted[0].0,
        "/models/black-forest-labs/flux-1.1-pro/predictions"
    );
    assert_eq!(
        submitted[0].1,
        json!({"input": {"prompt": "a fox", "aspect_ratio": "16:9", "safety_tolerance": 2}})
    );
    // Sizes from the bytes (the original hard-coded 1024×1024).
    assert_eq!(g["outputMetadata"]["width"], 40);
    assert_eq!(g["outputMetadata"]["height"], 30);
    w.stop().await;
}

#[tokio::test]
async fn replicate_failures_throttling_and_cancels() {
    let fake = fake_providers::replicate(Behaviour {
        refuse_submits: 1,
        fail_with: Some("NSFW content detected".into()),
        ..Behaviour::default()
    })
    .await;
    let (app, user, b, w) = setup(options(Some(&fake), None, None)).await;
    let id = generate(
        &app,
        &user,
        &b,
        "replicate-flux-pro",
        "IMAGE",
        json!({"prompt": "x"}),
    )
    .await;
    let g = done(&app, &user, &id).await;
    assert_eq!(g["status"], "FAILED");
    assert_eq!(g["errorMessage"], "Replicate: NSFW content detected");
    assert_eq!(
        (fake.refused(), fake.submitted().len()),
        (1, 1),
        "429 retried, one submit"
    );
    // A cancel reaches Replicate.
    fake.set(|b| {
        b.fail_with = None;
        b.never_finish = true;
    });
    let id = generate(
        &app,
        &user,
        &b,
        "replicate-flux-pro",
        "IMAGE",
        json!({"prompt": "y"}),
    )
    .await;
    let deadline = std::time::Instant::now() + WAIT;
    while fake.polls() < 3 {
        assert!(std::time::Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    app.ok(
        Some(&user.token),
        "mutation($id: UUID!) { cancelGeneration(id: $id) { id } }",
        json!({"id": id}),
    )
    .await;
    while fake.cancels().is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "never cancelled upstream"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    w.stop().await;
}

#[tokio::test]
async fn replicate_file_inputs_go_through_the_files_api_when_storage_is_private() {
    let fake = fake_providers::replicate(Behaviour {
        output_ext: "mp4",
        ..Behaviour::default()
    })
    .await;
    let (app, user, b, w) = setup(private(options(Some(&fake), None, None))).await;
    let audio = local_input(
        &app,
        &user,
        &b,
        "local-audio",
        "AUDIO",
        json!({"prompt": "la", "duration": 0.5}),
    )
    .await;
    // A video input: a generation row pointing at a real stored object is what matters here,
    // so an uploaded MP4 stands in for a generated one.
    let video = crate::uploads::upload_bytes(
        &app,
        &user,
        &b,
        "clip.mp4",
        "video/mp4",
        boards_shared::media::tests_support::mp4_bytes(1000, 2000, 0),
    )
    .await;
    let id = generate(
        &app,
        &user,
        &b,
        "replicate-lipsync",
        "VIDEO",
        json!({"audio_source": audio, "video_source": video}),
    )
    .await;
    let g = done(&app, &user, &id).await;
    assert_eq!(g["status"], "COMPLETED", "{g}");
    assert_eq!(fake.uploads().len(), 2);
    let (_, body) = &fake.submitted()[0];
    let input = &body["input"];
    assert!(
        input["audio"].as_str().unwrap().contains("/uploaded/"),
        "{body}"
    );
    assert!(
        input["video"].as_str().unwrap().contains("/uploaded/"),
        "{body}"
    );
    assert!(input.get("prompt").is_none());
    assert_eq!(
        g["outputMetadata"]["duration"], 4.0,
        "the output, read from its bytes"
    );
    w.stop().await;
}

// --- OpenAI ------------------------------------------------------------------------------

#[tokio::test]
async fn dall_e_3_sends_the_originals_request() {
    let fake = fake_providers::openai(Behaviour {
        refuse_submits: 1,
        ..Behaviour::default()
    })
    .await;
    let (app, user, b, w) = setup(options(None, Some(&fake), None)).await;
    let id = generate(
        &app,
        &user,
        &b,
        "openai-dall-e-3",
        "IMAGE",
        json!({"prompt": "a lighthouse", "size": "1792x1024"}),
    )
    .await;
    let g = done(&app, &user, &id).await;
    assert_eq!(g["status"], "COMPLETED", "{g}");
    // runtime.md §3.9.3.
    assert_eq!(
        fake.submitted(),
        vec![(
            "/images/generations".to_string(),
            json!({"model": "dall-e-3", "prompt": "a lighthouse", "size": "1792x1024", "quality": "standard", "style": "vivid", "n": 1})
        )]
    );
    assert_eq!(fake.refused(), 1);
    assert_eq!(
        g["outputMetadata"]["width"], 40,
        "read from the bytes, not the size asked"
    );
    fake.set(|b| b.fail_with = Some("Your request was rejected by the safety system".into()));
    let id = generate(
        &app,
        &user,
        &b,
        "openai-dall-e-3",
        "IMAGE",
        json!({"prompt": "x"}),
    )
    .await;
    let g = done(&app, &user, &id).await;
    assert_eq!(
        g["errorMessage"],
        "OpenAI: Your request was rejected by the safety system"
    );
    w.stop().await;
}

#[tokio::test]
async fn whisper_uploads_the_audio_and_keeps_the_whole_transcript() {
    let fake = fake_providers::openai(Behaviour::default()).await;
    let (app, user, b, w) = setup(options(None, Some(&fake), None)).await;
    let audio = local_input(
        &app,
        &user,
        &b,
        "local-audio",
        "AUDIO",
        json!({"prompt": "speech", "duration": 0.5}),
    )
    .await;
    let id = generate(
        &app,
        &user,
        &b,
        "openai-whisper",
        "TEXT",
        json!({"audio_source": audio, "language": "fr"}),
    )
    .await;
    let g = done(&app, &user, &id).await;
    assert_eq!(g["status"], "COMPLETED", "{g}");
    let uploads = fake.uploads();
    assert_eq!(uploads.len(), 1);
    let (path, body, content_type) = &uploads[0];
    assert_eq!(path, "/audio/transcriptions");
    assert!(content_type.starts_with("multipart/form-data"));
    let text = String::from_utf8_lossy(body);
    for field in [
        "name=\"file\"",
        "name=\"model\"",
        "whisper-1",
        "name=\"language\"",
        "fr",
        "name=\"prompt\"",
        "RIFF",
    ] {
        assert!(text.contains(field), "{field} missing from the form");
    }
    assert!(!text.contains("name=\"audio_source\""));
    // The full text (the original kept 50 characters).
    assert_eq!(
        g["outputMetadata"]["content"],
        "the whole transcript, every word of it, well past fifty characters"
    );
    w.stop().await;
}

// --- Kie.ai ------------------------------------------------------------------------------

#[tokio::test]
async fn kie_market_uploads_inputs_and_sends_model_and_input() {
    let fake = fake_providers::kie(Behaviour {
        outputs: 2,
        ..Behaviour::default()
    })
    .await;
    let (app, user, b, w) = setup(private(options(None, None, Some(&fake)))).await;
    let image = local_input(
        &app,
        &user,
        &b,
        "local-image",
        "IMAGE",
        json!({"prompt": "a", "width": 32, "height": 32}),
    )
    .await;
    let id = generate(
        &app,
        &user,
        &b,
        "kie-nano-banana-edit",
        "IMAGE",
        json!({"prompt": "bluer", "image_sources": [image]}),
    )
    .await;
    let g = done(&app, &user, &id).await;
    assert_eq!(g["status"], "COMPLETED", "{g}");
    let (path, body) = &fake.submitted()[0];
    assert_eq!(path, "/api/v1/jobs/createTask");
    assert_eq!(body["model"], "google/nano-banana-edit");
    let urls = body["input"]["image_urls"].as_array().unwrap();
    assert!(urls[0].as_str().unwrap().contains("/uploaded/"));
    assert_eq!(body["input"]["output_format"], "png");
    assert_eq!(body["input"]["image_size"], "1:1");
    assert_eq!(fake.uploads().len(), 1);
    // Two results: the job's own row and a batch row.
    assert_eq!(g["outputMetadata"]["batch_size"], 2);
    assert_eq!(crate::util::fixtures::count_generations(&app, &b).await, 3);
    w.stop().await;
}

#[tokio::test]
async fn kie_veo3_and_suno_speak_their_own_apis() {
    let fake = fake_providers::kie(Behaviour {
        output_ext: "mp4",
        ..Behaviour::default()
    })
    .await;
    let (app, user, b, w) = setup(options(None, None, Some(&fake))).await;
    let id = generate(
        &app,
        &user,
        &b,
        "kie-veo3",
        "VIDEO",
        json!({"prompt": "waves", "model": "veo3_fast"}),
    )
    .await;
    let g = done(&app, &user, &id).await;
    assert_eq!(g["status"], "COMPLETED", "{g}");
    assert_eq!(
        fake.submitted()[0],
        (
            "/api/v1/veo/generate".to_string(),
            json!({"prompt": "waves", "aspectRatio": "16:9", "model": "veo3_fast"})
        )
    );
    assert_eq!(g["outputMetadata"]["duration"], 4.0);
    fake.set(|b| {
        b.output_ext = "wav";
        b.outputs = 2;
    });
    let id = generate(
        &app,
        &user,
        &b,
        "kie-suno-v5-5",
        "AUDIO",
        json!({"title": "Song", "style": "folk", "instrumental": true, "lyrics": "la la"}),
    )
    .await;
    let g = done(&app, &user, &id).await;
    assert_eq!(g["status"], "COMPLETED", "{g}");
    let (path, body) = fake.submitted()[1].clone();
    assert_eq!(path, "/api/v1/generate");
    assert_eq!(
        body,
        json!({"model": "V5_5", "customMode": true, "callBackUrl": "https://example.com/callback",
               "title": "Song", "style": "folk", "instrumental": true, "prompt": "folk"})
    );
    assert_eq!(g["outputMetadata"]["batch_size"], 2);
    w.stop().await;
}

#[tokio::test]
async fn kie_refusals_and_failures_carry_kies_message() {
    let fake = fake_providers::kie(Behaviour {
        fail_with: Some("submit: Validation error: prompt is too long".into()),
        ..Behaviour::default()
    })
    .await;
    let (app, user, b, w) = setup(options(None, None, Some(&fake))).await;
    let id = generate(
        &app,
        &user,
        &b,
        "kie-qwen-image-2",
        "IMAGE",
        json!({"prompt": "x"}),
    )
    .await;
    let g = done(&app, &user, &id).await;
    assert_eq!(
        g["errorMessage"],
        "Kie.ai: Validation error: prompt is too long"
    );
    fake.set(|b| {
        b.fail_with = Some("Content policy violation".into());
        b.refuse_submits = 1;
    });
    let id = generate(
        &app,
        &user,
        &b,
        "kie-qwen-image-2",
        "IMAGE",
        json!({"prompt": "y"}),
    )
    .await;
    let g = done(&app, &user, &id).await;
    assert_eq!(g["errorMessage"], "Kie.ai: Content policy violation");
    assert_eq!(fake.refused(), 1);
    // Without images, the text-to-image model.
    let (_, body) = fake.submitted().last().cloned().unwrap();
    assert_eq!(body["model"], "qwen2/text-to-image");
    w.stop().await;
}

#[tokio::test]
async fn an_openai_edits_model_added_by_the_deployment_sends_its_images_as_files() {
    let fake = fake_providers::openai(Behaviour::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let yaml = dir.path().join("generators.yaml");
    std::fs::write(
        &yaml,
        r#"
generators:
  - id: local-image
  - id: openai-image-edit
catalogue:
  - name: openai-image-edit
    artifact_type: image
    provider: openai
    model: gpt-image-1
    api: edits
    description: Edits an image from an instruction with gpt-image-1.
    inputs:
      prompt: {type: string}
      image: {artifact: image, list: true, minItems: 1}
    required: [prompt, image]
    output: {urls: "data[*].url"}
"#,
    )
    .unwrap();
    let options = options(None, Some(&fake), None).env(
        "BOARDS_GENERATORS_CONFIG_PATH",
        yaml.to_string_lossy().to_string(),
    );
    let (app, user, b, w) = setup(options).await;
    let image = local_input(
        &app,
        &user,
        &b,
        "local-image",
        "IMAGE",
        json!({"prompt": "a", "width": 32, "height": 32}),
    )
    .await;
    let id = generate(
        &app,
        &user,
        &b,
        "openai-image-edit",
        "IMAGE",
        json!({"prompt": "add a hat", "image": [image]}),
    )
    .await;
    let g = done(&app, &user, &id).await;
    assert_eq!(g["status"], "COMPLETED", "{g}");
    let (path, body, _) = &fake.uploads()[0];
    assert_eq!(path, "/images/edits");
    let text = String::from_utf8_lossy(body);
    for field in [
        "name=\"image[]\"",
        "name=\"prompt\"",
        "add a hat",
        "name=\"model\"",
        "gpt-image-1",
        "IHDR",
    ] {
        assert!(text.contains(field), "{field} missing from the form");
    }
    // The b64_json answer became the stored image.
    assert_eq!(
        (
            g["outputMetadata"]["width"].as_u64(),
            g["outputMetadata"]["height"].as_u64()
        ),
        (Some(24), Some(16))
    );
    w.stop().await;
}
