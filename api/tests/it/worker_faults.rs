//! A worker under faults of its dependencies: a database it cannot reach stops its runs (they
//! must not outlive their lease), and the jobs still complete once it is back.

use std::time::{Duration, Instant};

use boards_shared::{config::Secret, generators::Registry};
use boards_worker::Worker;
use serde_json::json;

use crate::{
    pipeline::{board, generate, read, wait_for},
    util::{proxy::Proxy, Options, TestApp},
};

fn running(w: &Worker) -> usize {
    w.env.running.lock().map(|m| m.len()).unwrap_or(usize::MAX)
}

#[tokio::test]
async fn a_run_that_cannot_renew_its_lease_stops_and_the_job_completes_later() {
    let app = TestApp::spawn_with(Options::default().env("BOARDS_JOB_LEASE_SECONDS", "3")).await;
    let proxy = Proxy::start("127.0.0.1:5432").await;
    let mut config = app.config.clone();
    let url = config
        .database
        .url
        .expose()
        .replace("127.0.0.1:5432", &format!("127.0.0.1:{}", proxy.port()));
    config.database.url = Secret::new(url);
    let w = Worker::start(config, crate::util::test_logger(), Registry::builtin())
        .await
        .unwrap();
    let alice = app.user("alice").await;
    let b = board(&app, &alice).await;
    let id = generate(
        &app,
        &alice,
        &b,
        "local-echo",
        "TEXT",
        json!({"prompt": "slow", "delay_ms": 8000}),
    )
    .await;
    wait_for(&app, &alice, &id, &["processing"], Duration::from_secs(20)).await;
    let deadline = Instant::now() + Duration::from_secs(5);
    while running(&w) == 0 {
        assert!(Instant::now() < deadline, "the run never started");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // The worker loses the database: within its lease, the run must stop.
    proxy.set_enabled(false);
    let deadline = Instant::now() + Duration::from_secs(6);
    while running(&w) > 0 {
        assert!(
            Instant::now() < deadline,
            "the run kept going without a lease"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(read(&app, &alice, &id).await["status"], "PROCESSING");

    // Back: the job is claimed again once the lease ran out, and completes once.
    proxy.set_enabled(true);
    let g = wait_for(&app, &alice, &id, &["completed"], Duration::from_secs(60)).await;
    assert_eq!(g["outputMetadata"]["content"], "slow");
    assert!(g["outputMetadata"]["storage_key"]
        .as_str()
        .unwrap()
        .contains("/run-2/"));
    w.stop().await;
}

#[tokio::test]
async fn a_black_holed_broker_makes_the_api_unready_and_jobs_wait_in_the_outbox() {
    let proxy = Proxy::start("127.0.0.1:5672").await;
    let app = TestApp::spawn_with(
        Options::default()
            .env(
                "BOARDS_AMQP_URL",
                format!("amqp://guest:guest@127.0.0.1:{}/%2f", proxy.port()),
            )
            .env("BOARDS_AMQP_CONFIRM_TIMEOUT_MS", "1000"),
    )
    .await;
    let ready = |app: &TestApp| {
        let req = app.client.get(app.url("/ready"));
        async move {
            let res = req.send().await.unwrap();
            (res.status().as_u16(), res.text().await.unwrap())
        }
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    while ready(&app).await.0 != 200 {
        assert!(Instant::now() < deadline, "never ready");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // The broker stops answering but the connection stays open.
    proxy.set_mode(crate::util::proxy::Mode::BlackHole);
    let (status, body) = ready(&app).await;
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("rabbitmq"), "{body}");
    let alice = app.user("alice").await;
    let b = board(&app, &alice).await;
    let id = generate(
        &app,
        &alice,
        &b,
        "local-echo",
        "TEXT",
        json!({"prompt": "held"}),
    )
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    // The publish was not confirmed: the row is still in the outbox, with the reason.
    assert_eq!(crate::util::fixtures::outbox_count(&app, &id).await, 1);

    // Back: the relay reconnects and the job reaches a worker.
    proxy.set_mode(crate::util::proxy::Mode::Forward);
    let w = Worker::start(
        app.config.clone(),
        crate::util::test_logger(),
        Registry::builtin(),
    )
    .await
    .unwrap();
    let g = wait_for(&app, &alice, &id, &["completed"], Duration::from_secs(60)).await;
    assert_eq!(g["outputMetadata"]["content"], "held");
    assert_eq!(ready(&app).await.0, 200);
    w.stop().await;
}

#[tokio::test]
async fn a_timed_out_image_job_stops_its_cpu_work_and_returns_its_memory() {
    let app = TestApp::spawn().await;
    let dir = tempfile::tempdir().unwrap();
    let yaml = dir.path().join("generators.yaml");
    std::fs::write(
        &yaml,
        "generators:\n  - id: local-image\n  - id: local-image-filter\n    timeout_seconds: 1\n",
    )
    .unwrap();
    let mut config = app.config.clone();
    config.generators.config_path = Some(yaml.to_string_lossy().into_owned());
    let registry = boards_shared::generators::config::load(&config)
        .unwrap()
        .registry;
    let w = Worker::start(app.config.clone(), crate::util::test_logger(), registry)
        .await
        .unwrap();
    let total = w.env.memory.available_mib();
    let alice = app.user("alice").await;
    let b = board(&app, &alice).await;
    let source = generate(
        &app,
        &alice,
        &b,
        "local-image",
        "IMAGE",
        json!({"prompt": "noise", "width": 2048, "height": 2048, "style": "noise"}),
    )
    .await;
    wait_for(
        &app,
        &alice,
        &source,
        &["completed"],
        Duration::from_secs(60),
    )
    .await;
    // Blur a 4-megapixel image and scale it to 37 megapixels: far more than a second's work.
    let id = generate(
        &app,
        &alice,
        &b,
        "local-image-filter",
        "IMAGE",
        json!({"image": source, "filter": "blur", "scale": 3}),
    )
    .await;
    let g = wait_for(
        &app,
        &alice,
        &id,
        &["completed", "failed"],
        Duration::from_secs(60),
    )
    .await;
    assert_eq!(g["status"], "FAILED", "{g}");
    assert_eq!(g["errorMessage"], "Generation timed out after 1 s");
    // The blocking thread holds the job's memory until it stops; it stops within moments.
    let deadline = Instant::now() + Duration::from_secs(2);
    while w.env.memory.available_mib() < total {
        assert!(
            Instant::now() < deadline,
            "the filter kept running after its timeout"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    w.stop().await;
}

#[tokio::test]
async fn a_cancelled_jobs_last_event_never_reports_less_progress() {
    // The row's progress is written rarely; the cancel event is built from the row.
    let app =
        TestApp::spawn_with(Options::default().env("BOARDS_PROGRESS_PERSIST_INTERVAL_MS", "60000"))
            .await;
    let w = Worker::start(
        app.config.clone(),
        crate::util::test_logger(),
        Registry::builtin(),
    )
    .await
    .unwrap();
    let alice = app.user("alice").await;
    let b = board(&app, &alice).await;
    let id = generate(
        &app,
        &alice,
        &b,
        "local-echo",
        "TEXT",
        json!({"prompt": "slow", "delay_ms": 4000}),
    )
    .await;
    let res = app
        .client
        .get(app.url(&format!("/api/sse/generations/{id}/progress")))
        .bearer_auth(&alice.token)
        .send()
        .await
        .unwrap();
    let mut body = futures::StreamExt::fuse(res.bytes_stream());
    let mut buffer = String::new();
    let mut progress = vec![];
    let mut cancelled = false;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    'read: while let Ok(Some(chunk)) =
        tokio::time::timeout_at(deadline, futures::StreamExt::next(&mut body)).await
    {
        buffer.push_str(&String::from_utf8_lossy(&chunk.unwrap()));
        while let Some(end) = buffer.find("\n\n") {
            let frame: String = buffer.drain(..end + 2).collect();
            let Some(data) = frame.lines().find_map(|l| l.strip_prefix("data: ")) else {
                continue;
            };
            let event: serde_json::Value = serde_json::from_str(data).unwrap();
            progress.push(event["progress"].as_f64().unwrap());
            if event["status"] == "cancelled" {
                break 'read;
            }
            if !cancelled && event["progress"].as_f64().unwrap() >= 18.0 {
                cancelled = true;
                app.ok(
                    Some(&alice.token),
                    "mutation($id: UUID!) { cancelGeneration(id: $id) { status } }",
                    json!({"id": id}),
                )
                .await;
            }
        }
    }
    assert!(cancelled, "the job never got to 18 %: {progress:?}");
    assert!(
        progress.windows(2).all(|p| p[0] <= p[1]),
        "progress went back: {progress:?}"
    );
    assert!(*progress.last().unwrap() >= 18.0, "{progress:?}");
    w.stop().await;
}

#[tokio::test]
async fn a_stream_that_missed_the_completed_event_ends_from_the_row() {
    let app =
        TestApp::spawn_with(Options::default().env("BOARDS_SSE_ACCESS_RECHECK_SECONDS", "1")).await;
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
    // The job finishes without its event reaching Redis (dropped, or a dead subscription).
    let finish = async {
        tokio::time::sleep(Duration::from_millis(500)).await;
        crate::util::fixtures::sql(
            &app,
            &format!(
                "UPDATE boards.generations SET status = 'completed', progress = 100 WHERE id = '{id}'"
            ),
        )
        .await;
    };
    let ((events, _), ()) = tokio::join!(
        crate::pipeline::sse(&app, &alice.token, &id, Duration::from_secs(10)),
        finish
    );
    assert_eq!(events.first().unwrap()["status"], "pending");
    assert_eq!(events.last().unwrap()["status"], "completed", "{events:?}");
}
