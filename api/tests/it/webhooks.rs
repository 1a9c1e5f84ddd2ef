//! Webhooks (issue 12) against real PostgreSQL, RabbitMQ and a worker, with receivers on
//! 127.0.0.1 (allow-listed): who may manage them, what URLs pass, signed deliveries of
//! generation events and test events, retries while the receiver is down, no retry after a
//! permanent refusal, giving up, resending with the same `webhook-id`, and each attempt in the
//! trace of the change that caused it.

use std::time::{Duration, Instant};

use boards_shared::{generators::Registry, webhooks::verify};
use serde_json::{json, Value};
use wiremock::{
    matchers::{method, path},
    Mock, MockServer, ResponseTemplate,
};

use crate::{
    members::ADD,
    pipeline::{board, generate_traced, wait_for, worker},
    util::{error_of, Options, TestApp, TestUser},
};

const CREATE: &str = "mutation($i: CreateWebhookInput!) {
    createWebhook(input: $i) { secret webhook { id boardId url eventTypes enabled description } } }";
const DELIVERIES: &str = "query($id: UUID!) { webhookDeliveries(webhookId: $id) {
    id messageId eventType status attempts lastStatusCode lastError payload deliveredAt } }";
const TEST_EVENT: &str =
    "mutation($id: UUID!) { sendTestWebhook(id: $id) { id messageId eventType status } }";

/// An app whose webhooks may reach 127.0.0.1 and retry quickly (3 attempts).
async fn app() -> TestApp {
    TestApp::spawn_with(
        Options::default()
            .env("BOARDS_WEBHOOK_ALLOWED_HOSTS", "127.0.0.1")
            .env("BOARDS_WEBHOOK_RETRY_DELAYS_MS", "300,300")
            .env("BOARDS_WEBHOOK_TIMEOUT_MS", "2000")
            .env("BOARDS_WEBHOOK_MAX_PER_BOARD", "3"),
    )
    .await
}

/// A receiver answering `status` to every POST on `/hook`.
async fn receiver(status: u16) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/hook"))
        .respond_with(ResponseTemplate::new(status))
        .mount(&server)
        .await;
    server
}

async fn create(
    app: &TestApp,
    user: &TestUser,
    board: &str,
    url: &str,
    events: &[&str],
) -> (String, String) {
    let d = app
        .ok(
            Some(&user.token),
            CREATE,
            json!({"i": {"boardId": board, "url": url, "eventTypes": events}}),
        )
        .await;
    let created = &d["createWebhook"];
    (
        created["webhook"]["id"].as_str().unwrap().to_string(),
        created["secret"].as_str().unwrap().to_string(),
    )
}

async fn deliveries(app: &TestApp, user: &TestUser, webhook: &str) -> Vec<Value> {
    let d = app
        .ok(Some(&user.token), DELIVERIES, json!({"id": webhook}))
        .await;
    d["webhookDeliveries"].as_array().unwrap().clone()
}

/// Polls the deliveries of `webhook` until `done` holds for them.
async fn wait_deliveries(
    app: &TestApp,
    user: &TestUser,
    webhook: &str,
    what: &str,
    done: impl Fn(&[Value]) -> bool,
) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let list = deliveries(app, user, webhook).await;
        if done(&list) {
            return list;
        }
        assert!(Instant::now() < deadline, "never {what}: {list:#?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn requests(server: &MockServer) -> Vec<wiremock::Request> {
    server.received_requests().await.unwrap_or_default()
}

fn header(r: &wiremock::Request, name: &str) -> String {
    r.headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string()
}

/// The request is signed with `secret` by the Standard Webhooks rules.
fn assert_signed(r: &wiremock::Request, secret: &str) {
    let id = header(r, "webhook-id");
    let timestamp: i64 = header(r, "webhook-timestamp").parse().unwrap();
    let now = chrono::Utc::now().timestamp();
    assert!(
        verify(
            secret,
            &id,
            timestamp,
            &r.body,
            &header(r, "webhook-signature"),
            now,
            300
        ),
        "bad signature on {id}"
    );
}

#[tokio::test]
async fn board_owners_and_admins_manage_webhooks_and_urls_are_checked() {
    let app = app().await;
    let owner = app.user("owner").await;
    let b = board(&app, &owner).await;
    let url = "http://127.0.0.1:9/hook";
    let d = app
        .ok(
            Some(&owner.token),
            CREATE,
            json!({"i": {"boardId": b, "url": url, "eventTypes": ["generation.completed", "generation.created"],
                "description": "CMS"}}),
        )
        .await;
    let created = &d["createWebhook"];
    assert!(created["secret"].as_str().unwrap().starts_with("whsec_"));
    assert_eq!(created["webhook"]["url"], url);
    assert_eq!(created["webhook"]["enabled"], true);
    // Canonical order, whatever order they were asked in.
    assert_eq!(
        created["webhook"]["eventTypes"],
        json!(["generation.created", "generation.completed"])
    );
    let id = created["webhook"]["id"].as_str().unwrap().to_string();

    // Members by role: admins manage, editors and viewers may not, strangers do not see.
    let mut roles = vec![];
    for (who, role) in [
        ("admin", "ADMIN"),
        ("editor", "EDITOR"),
        ("viewer", "VIEWER"),
    ] {
        let user = app.user(who).await;
        app.ok(
            Some(&owner.token),
            ADD,
            json!({"b": b, "e": user.email, "r": role}),
        )
        .await;
        roles.push((who, user));
    }
    let stranger = app.user("stranger").await;
    let list = "query($b: UUID!) { webhooks(boardId: $b) { id } }";
    for (who, user) in roles
        .iter()
        .map(|(w, u)| (*w, u))
        .chain([("stranger", &stranger)])
    {
        let res = app.gql(Some(&user.token), list, json!({"b": b})).await;
        let expected = match who {
            "admin" => "",
            "stranger" => "NOT_FOUND",
            _ => "FORBIDDEN",
        };
        assert_eq!(error_of(&res).1, expected, "{who}: {res}");
        let res = app
            .gql(Some(&user.token), TEST_EVENT, json!({"id": id}))
            .await;
        let expected = if who == "stranger" {
            "NOT_FOUND"
        } else {
            expected
        };
        assert_eq!(error_of(&res).1, expected, "{who} test event: {res}");
    }
    let anonymous = app.gql(None, list, json!({"b": b})).await;
    assert_eq!(error_of(&anonymous).1, "UNAUTHENTICATED");
    // The original's status endpoint answers as it did.
    let status: Value = app
        .client
        .get(app.url("/api/webhooks/status"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(status, json!({"status": "Webhook endpoint ready"}));

    // Update, rotate (the old secret keeps signing a while), delete.
    let d = app
        .ok(
            Some(&roles[0].1.token),
            "mutation($id: UUID!) { updateWebhook(id: $id, input: {enabled: false, eventTypes: [\"generation.failed\"]}) { enabled eventTypes } }",
            json!({"id": id}),
        )
        .await;
    assert_eq!(
        d["updateWebhook"],
        json!({"enabled": false, "eventTypes": ["generation.failed"]})
    );
    let rotated = app
        .ok(
            Some(&owner.token),
            "mutation($id: UUID!) { rotateWebhookSecret(id: $id) { secret webhook { previousSecretExpiresAt } } }",
            json!({"id": id}),
        )
        .await;
    assert_ne!(rotated["rotateWebhookSecret"]["secret"], created["secret"]);
    assert!(rotated["rotateWebhookSecret"]["webhook"]["previousSecretExpiresAt"].is_string());

    // Bad input is refused with the reason.
    let refused = [
        (
            "http://10.0.0.1/hook",
            vec!["generation.completed"],
            "private",
        ),
        (
            "http://169.254.169.254/latest",
            vec!["generation.completed"],
            "metadata",
        ),
        (
            "ftp://127.0.0.1/hook",
            vec!["generation.completed"],
            "scheme",
        ),
        (
            "http://user:pw@127.0.0.1/hook",
            vec!["generation.completed"],
            "credentials",
        ),
        ("not a url", vec!["generation.completed"], "not a valid URL"),
        (url, vec![], "at least one"),
        (url, vec!["board.exploded"], "Unknown event type"),
    ];
    for (bad_url, events, reason) in refused {
        let res = app
            .gql(
                Some(&owner.token),
                CREATE,
                json!({"i": {"boardId": b, "url": bad_url, "eventTypes": events}}),
            )
            .await;
        let (message, code) = error_of(&res);
        assert_eq!(code, "BAD_USER_INPUT", "{bad_url}: {res}");
        assert!(message.contains(reason), "{bad_url}: {message}");
    }
    // At most BOARDS_WEBHOOK_MAX_PER_BOARD (3 here).
    create(&app, &owner, &b, url, &["generation.completed"]).await;
    create(&app, &owner, &b, url, &["generation.completed"]).await;
    let res = app
        .gql(
            Some(&owner.token),
            CREATE,
            json!({"i": {"boardId": b, "url": url, "eventTypes": ["generation.completed"]}}),
        )
        .await;
    assert!(error_of(&res).0.contains("at most 3"), "{res}");

    let del = "mutation($id: UUID!) { deleteWebhook(id: $id) }";
    let res = app
        .gql(Some(&roles[1].1.token), del, json!({"id": id}))
        .await;
    assert_eq!(error_of(&res).1, "FORBIDDEN");
    app.ok(Some(&owner.token), del, json!({"id": id})).await;
    let res = app.gql(Some(&owner.token), del, json!({"id": id})).await;
    assert_eq!(error_of(&res).1, "NOT_FOUND");
}

#[tokio::test]
async fn generation_events_and_test_events_are_delivered_signed_recorded_and_traced() {
    let app = app().await;
    let w = worker(&app, Registry::builtin()).await;
    let owner = app.user("owner").await;
    let b = board(&app, &owner).await;
    let server = receiver(204).await;
    let (hook, secret) = create(
        &app,
        &owner,
        &b,
        &format!("{}/hook", server.uri()),
        &["generation.created", "generation.completed"],
    )
    .await;
    let request_trace = "4bf92f3577b34da6a3ce929d0e0e4736";
    let g = generate_traced(
        &app,
        &owner,
        Some(&format!("00-{request_trace}-00f067aa0ba902b7-01")),
        &b,
        "local-echo",
        "TEXT",
        json!({"prompt": "hi"}),
    )
    .await;
    wait_for(&app, &owner, &g, &["completed"], Duration::from_secs(20)).await;
    let list = wait_deliveries(&app, &owner, &hook, "both delivered", |l| {
        l.len() == 2 && l.iter().all(|d| d["status"] == "DELIVERED")
    })
    .await;
    let types: Vec<&str> = list
        .iter()
        .map(|d| d["eventType"].as_str().unwrap())
        .collect();
    assert_eq!(
        types,
        ["generation.completed", "generation.created"],
        "newest first"
    );
    for d in &list {
        assert_eq!(d["attempts"], 1);
        assert_eq!(d["lastStatusCode"], 204);
        assert!(d["deliveredAt"].is_string());
    }
    let got = requests(&server).await;
    assert_eq!(got.len(), 2);
    for r in &got {
        assert_signed(r, &secret);
        assert_eq!(header(r, "content-type"), "application/json");
        let body: Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(body["data"]["generation_id"], g.as_str());
        assert_eq!(body["data"]["board_id"], b.as_str());
        let sent = list
            .iter()
            .find(|d| d["messageId"] == header(r, "webhook-id"))
            .expect("the delivery of this webhook-id");
        assert_eq!(sent["payload"], body);
    }
    // `generation.created` was written by the request, `generation.completed` by the worker's
    // job, which continues the request's trace: both are sent in it, each attempt a new span.
    let spans: Vec<(String, String)> = got.iter().map(trace_of).collect();
    for (trace, span) in &spans {
        assert_eq!(trace, request_trace);
        assert_ne!(span, "00f067aa0ba902b7");
    }
    assert_ne!(spans[0].1, spans[1].1);
    let completed: Value = got
        .iter()
        .map(|r| serde_json::from_slice::<Value>(&r.body).unwrap())
        .find(|b| b["type"] == "generation.completed")
        .expect("the completed event");
    assert_eq!(completed["type"], "generation.completed");
    assert_eq!(completed["data"]["status"], "completed");
    assert!(completed["data"]["storage_url"].is_string(), "{completed}");

    // A test event, whatever the subscription; then a resend of it: same webhook-id. Each is
    // sent in the trace of the request that asked for it.
    let test_trace = "0af7651916cd43dd8448eb211c80319c";
    let d = app
        .ok_traced(
            Some(&owner.token),
            Some(&format!("00-{test_trace}-b7ad6b7169203331-01")),
            TEST_EVENT,
            json!({"id": hook}),
        )
        .await;
    let test = &d["sendTestWebhook"];
    assert_eq!(test["eventType"], "webhook.test");
    let test_id = test["id"].as_str().unwrap().to_string();
    wait_deliveries(&app, &owner, &hook, "the test delivered", |l| {
        l.iter()
            .any(|d| d["id"] == test_id.as_str() && d["status"] == "DELIVERED")
    })
    .await;
    let resend_trace = "11111111111111112222222222222222";
    app.ok_traced(
        Some(&owner.token),
        Some(&format!("00-{resend_trace}-3333333333333333-01")),
        "mutation($id: UUID!) { resendWebhookDelivery(id: $id) { status } }",
        json!({"id": test_id}),
    )
    .await;
    wait_deliveries(&app, &owner, &hook, "the resend delivered", |l| {
        l.iter()
            .any(|d| d["id"] == test_id.as_str() && d["attempts"] == 2)
    })
    .await;
    let got = requests(&server).await;
    let test_message = test["messageId"].as_str().unwrap();
    let traces: Vec<String> = got
        .iter()
        .filter(|r| header(r, "webhook-id") == test_message)
        .map(|r| trace_of(r).0)
        .collect();
    assert_eq!(traces, [test_trace, resend_trace]);
    w.stop().await;
}

#[tokio::test]
async fn a_receiver_that_was_down_gets_the_delivery_once_it_is_up() {
    let app = app().await;
    let w = worker(&app, Registry::builtin()).await;
    let owner = app.user("owner").await;
    let b = board(&app, &owner).await;
    // A port nobody listens on yet.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let (hook, secret) = create(
        &app,
        &owner,
        &b,
        &format!("http://{addr}/hook"),
        &["generation.completed"],
    )
    .await;
    app.ok(Some(&owner.token), TEST_EVENT, json!({"id": hook}))
        .await;
    let failed_once = wait_deliveries(&app, &owner, &hook, "a failed attempt", |l| {
        l.first().is_some_and(|d| d["attempts"].as_i64() >= Some(1))
    })
    .await;
    assert_eq!(failed_once[0]["status"], "PENDING", "{failed_once:#?}");
    assert_eq!(
        failed_once[0]["lastError"],
        "could not connect to the endpoint"
    );
    // A pending delivery is not resent (its retry is on its way): no second retry chain.
    let res = app
        .gql(
            Some(&owner.token),
            "mutation($id: UUID!) { resendWebhookDelivery(id: $id) { status } }",
            json!({"id": failed_once[0]["id"]}),
        )
        .await;
    assert_eq!(error_of(&res).1, "CONFLICT", "{res}");
    // Up before the retries run out (300 ms apart).
    let server = MockServer::builder()
        .listener(std::net::TcpListener::bind(addr).unwrap())
        .start()
        .await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&server)
        .await;
    let done = wait_deliveries(&app, &owner, &hook, "delivered", |l| {
        l[0]["status"] == "DELIVERED"
    })
    .await;
    assert!(done[0]["attempts"].as_i64() >= Some(2));
    let got = requests(&server).await;
    assert_eq!(got.len(), 1, "delivered once");
    assert_signed(&got[0], &secret);
    w.stop().await;
}

#[tokio::test]
async fn a_refusal_is_not_retried_and_errors_are_retried_until_they_run_out() {
    let app = app().await;
    let w = worker(&app, Registry::builtin()).await;
    let owner = app.user("owner").await;
    let b = board(&app, &owner).await;
    let refusing = receiver(400).await;
    let failing = receiver(503).await;
    let (refused, _) = create(
        &app,
        &owner,
        &b,
        &format!("{}/hook", refusing.uri()),
        &["generation.completed"],
    )
    .await;
    let (erring, _) = create(
        &app,
        &owner,
        &b,
        &format!("{}/hook", failing.uri()),
        &["generation.completed"],
    )
    .await;
    for hook in [&refused, &erring] {
        app.ok(Some(&owner.token), TEST_EVENT, json!({"id": hook}))
            .await;
    }
    let list = wait_deliveries(&app, &owner, &refused, "failed", |l| {
        l[0]["status"] == "FAILED"
    })
    .await;
    assert_eq!(list[0]["attempts"], 1);
    assert_eq!(list[0]["lastStatusCode"], 400);
    let list = wait_deliveries(&app, &owner, &erring, "given up", |l| {
        l[0]["status"] == "FAILED"
    })
    .await;
    // One attempt and two retries (BOARDS_WEBHOOK_RETRY_DELAYS_MS=300,300).
    assert_eq!(list[0]["attempts"], 3, "{list:#?}");
    assert_eq!(list[0]["lastStatusCode"], 503);
    assert!(list[0]["lastError"]
        .as_str()
        .unwrap()
        .contains("gave up after 3 attempts"));
    // Longer than the retry delays: still one request to the refusing receiver.
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert_eq!(requests(&refusing).await.len(), 1);
    assert_eq!(requests(&failing).await.len(), 3);
    // The worker counts them: the refusal and the last 503 failed, the first two 503 retried.
    let attempts = |outcome: &str| {
        w.env
            .metrics
            .webhook_attempts
            .with_label_values(&[outcome])
            .get()
    };
    assert_eq!((attempts("failed"), attempts("retry")), (2, 2));
    w.stop().await;
}

#[tokio::test]
async fn a_generation_born_finished_sends_its_terminal_event_too() {
    let app = app().await;
    let owner = app.user("owner").await;
    let b = board(&app, &owner).await;
    let (hook, _) = create(
        &app,
        &owner,
        &b,
        "http://127.0.0.1:9/hook",
        &["generation.created", "generation.completed"],
    )
    .await;
    // As an upload writes it: inserted completed.
    crate::util::fixtures::sql(
        &app,
        &format!(
            "INSERT INTO boards.generations (tenant_id, board_id, user_id, generator_name,
                artifact_type, input_params, status, storage_url)
             SELECT tenant_id, id, owner_id, 'upload', 'image', '{{}}', 'completed', 'http://x/a.png'
             FROM boards.boards WHERE id = '{b}'"
        ),
    )
    .await;
    let list = deliveries(&app, &owner, &hook).await;
    let mut types: Vec<&str> = list
        .iter()
        .map(|d| d["eventType"].as_str().unwrap())
        .collect();
    types.sort_unstable();
    assert_eq!(types, ["generation.completed", "generation.created"]);
}

/// The trace id and span id of a request's `traceparent`.
fn trace_of(r: &wiremock::Request) -> (String, String) {
    let t = boards_shared::trace::TraceContext::parse(&header(r, "traceparent"))
        .unwrap_or_else(|| panic!("no traceparent on {}", header(r, "webhook-id")));
    (t.trace_id_hex(), t.span_id_hex())
}
