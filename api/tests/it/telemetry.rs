//! Span export over OTLP/HTTP to a collector on 127.0.0.1: with `BOARDS_OTLP_ENDPOINT` set, the
//! API's request span, the worker's job span and its webhook attempt of one generation reach
//! the collector in the trace of the request's `traceparent`.

use std::time::Duration;

use boards_shared::generators::Registry;
use serde_json::json;
use wiremock::{
    matchers::{method, path},
    Mock, MockServer, ResponseTemplate,
};

use crate::{
    pipeline::{board, generate_traced, wait_for, worker},
    util::{Options, TestApp},
};

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

/// The API and a worker exporting to `collector`; one generation requested with `traceparent`,
/// on a board whose webhook (`receiver`) wants its completion.
async fn traced_generation(app: &TestApp, traceparent: &str, receiver: &MockServer) {
    let w = worker(app, Registry::builtin()).await;
    let owner = app.user("owner").await;
    let b = board(app, &owner).await;
    let hook = app
        .ok(
            Some(&owner.token),
            "mutation($i: CreateWebhookInput!) { createWebhook(input: $i) { webhook { id } } }",
            json!({"i": {"boardId": b, "url": format!("{}/hook", receiver.uri()),
            "eventTypes": ["generation.completed"]}}),
        )
        .await["createWebhook"]["webhook"]["id"]
        .clone();
    let id = generate_traced(
        app,
        &owner,
        Some(traceparent),
        &b,
        "local-echo",
        "TEXT",
        json!({"prompt": "x"}),
    )
    .await;
    wait_for(app, &owner, &id, &["completed"], Duration::from_secs(20)).await;
    // The attempt's span is recorded before its outcome: once it is delivered, it is there.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let d = app
            .ok(
                Some(&owner.token),
                "query($id: UUID!) { webhookDeliveries(webhookId: $id) { status } }",
                json!({"id": hook}),
            )
            .await;
        if d["webhookDeliveries"][0]["status"] == "DELIVERED" {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "not delivered: {d}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(receiver.received_requests().await.unwrap().len(), 1);
    // Stopping flushes the worker's spans; the API's are flushed by hand.
    w.stop().await;
    let telemetry = app.state.telemetry.clone();
    tokio::task::spawn_blocking(move || telemetry.shutdown())
        .await
        .unwrap();
}

/// A server answering `status` to every POST on `route`: an OTLP collector, a webhook receiver.
async fn answering(route: &str, status: u16) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(route))
        .respond_with(ResponseTemplate::new(status))
        .mount(&server)
        .await;
    server
}

/// Options exporting to `collector`.
fn exporting(collector: &MockServer) -> Options {
    Options::default().env("BOARDS_OTLP_ENDPOINT", collector.uri())
}

#[tokio::test]
async fn request_and_job_spans_are_exported_in_the_callers_trace() {
    let collector = answering("/v1/traces", 200).await;
    let receiver = answering("/hook", 204).await;
    let app =
        TestApp::spawn_with(exporting(&collector).env("BOARDS_WEBHOOK_ALLOWED_HOSTS", "127.0.0.1"))
            .await;
    let (trace_id, caller_span) = ("0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331");
    traced_generation(&app, &format!("00-{trace_id}-{caller_span}-01"), &receiver).await;

    let exports = collector.received_requests().await.unwrap_or_default();
    assert!(!exports.is_empty(), "nothing was exported");
    let (trace_id, caller_span) = (unhex(trace_id), unhex(caller_span));
    let body: Vec<u8> = exports.iter().flat_map(|r| r.body.clone()).collect();
    for r in &exports {
        assert_eq!(
            r.headers.get("content-type").and_then(|v| v.to_str().ok()),
            Some("application/x-protobuf")
        );
    }
    // The request's span is a child of the caller's, in its trace; the worker's spans too.
    assert!(
        contains(&body, &trace_id),
        "the caller's trace id was not exported"
    );
    assert!(
        contains(&body, &caller_span),
        "no span has the caller's span as parent"
    );
    assert!(contains(&body, b"POST /graphql"));
    assert!(contains(&body, b"boards-api"));
    assert!(contains(&body, b"job local-echo"));
    assert!(contains(&body, b"boards-worker"));
    assert!(contains(&body, b"webhook generation.completed"));
}

#[tokio::test]
async fn provider_calls_are_exported_as_spans_of_the_job() {
    use boards_shared::testing::fake_fal::{Behaviour, FakeFal};

    let collector = answering("/v1/traces", 200).await;
    let fake = FakeFal::start(Behaviour::default()).await;
    let app = TestApp::spawn_with(
        exporting(&collector)
            .env("FAL_KEY", "test-fal-key")
            .env("BOARDS_FAL_BASE_URL", fake.url())
            .env("BOARDS_FAL_REST_URL", fake.url())
            .env("BOARDS_PROVIDER_POLL_INTERVAL_MS", "20")
            .env("BOARDS_PROVIDER_MAX_POLL_INTERVAL_MS", "50"),
    )
    .await;
    let registry = boards_shared::generators::config::load(&app.config)
        .unwrap()
        .registry;
    let w = worker(&app, registry).await;
    let owner = app.user("owner").await;
    let b = board(&app, &owner).await;
    let id = generate_traced(
        &app,
        &owner,
        None,
        &b,
        "fal-nano-banana-pro",
        "IMAGE",
        json!({"prompt": "a lighthouse"}),
    )
    .await;
    wait_for(&app, &owner, &id, &["completed"], Duration::from_secs(30)).await;
    w.stop().await;

    // Every API call fal's fake saw is a span the worker exported, under the span id its
    // `traceparent` named.
    let calls: Vec<_> = fake
        .server
        .received_requests()
        .await
        .unwrap_or_default()
        .into_iter()
        .filter(|r| !r.url.path().starts_with("/files/"))
        .collect();
    assert!(calls.len() >= 2, "{} calls", calls.len());
    let body: Vec<u8> = collector
        .received_requests()
        .await
        .unwrap_or_default()
        .iter()
        .flat_map(|r| r.body.clone())
        .collect();
    for call in &calls {
        let header = call.headers.get("traceparent").unwrap().to_str().unwrap();
        let span = boards_shared::trace::TraceContext::parse(header).unwrap();
        assert!(
            contains(&body, &span.span_id),
            "{} {} was not exported",
            call.method,
            call.url.path()
        );
    }
    assert!(contains(&body, b"url.path"));
    assert!(contains(&body, b"http.response.status_code"));
}
