//! Span export over OTLP/HTTP to a collector on 127.0.0.1: with `BOARDS_OTLP_ENDPOINT` set, the
//! API's request span and the worker's job span of one generation reach the collector in the
//! trace of the request's `traceparent`.

use std::time::Duration;

use boards_shared::generators::Registry;
use serde_json::{json, Value};
use wiremock::{
    matchers::{method, path},
    Mock, MockServer, ResponseTemplate,
};

use crate::{
    pipeline::{board, wait_for, worker},
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

/// The API and a worker exporting to `collector`; one generation requested with `traceparent`.
async fn traced_generation(app: &TestApp, traceparent: &str) {
    let w = worker(app, Registry::builtin()).await;
    let owner = app.user("owner").await;
    let b = board(app, &owner).await;
    let res: Value = app
        .client
        .post(app.url("/graphql"))
        .bearer_auth(&owner.token)
        .header("traceparent", traceparent)
        .json(&json!({"query": "mutation($i: CreateGenerationInput!) { createGeneration(input: $i) { id } }",
            "variables": {"i": {"boardId": b, "generatorName": "local-echo", "artifactType": "TEXT",
                "inputParams": {"prompt": "x"}}}}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = res["data"]["createGeneration"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    wait_for(app, &owner, &id, &["completed"], Duration::from_secs(20)).await;
    // Stopping flushes the worker's spans; the API's are flushed by hand.
    w.stop().await;
    let telemetry = app.state.telemetry.clone();
    tokio::task::spawn_blocking(move || telemetry.shutdown())
        .await
        .unwrap();
}

#[tokio::test]
async fn request_and_job_spans_are_exported_in_the_callers_trace() {
    let collector = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/traces"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&collector)
        .await;
    let app =
        TestApp::spawn_with(Options::default().env("BOARDS_OTLP_ENDPOINT", collector.uri())).await;
    let (trace_id, caller_span) = ("0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331");
    traced_generation(&app, &format!("00-{trace_id}-{caller_span}-01")).await;

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
}
