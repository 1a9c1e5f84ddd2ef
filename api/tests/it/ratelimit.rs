//! Rate limits (issue 11) against the real API and Redis: per-user quotas on generations and
//! uploads, per-address lock-out after refused credentials, counters shared by API replicas,
//! off with the `none` provider, and open when Redis is unreachable.

use std::time::Duration;

use boards_api::Application;
use reqwest::multipart;
use serde_json::{json, Value};

use crate::{
    generations::CREATE_GEN,
    pipeline::board,
    util::{error_of, fixtures, test_logger, Options, TestApp, TestUser},
};

const REGENERATE: &str = "mutation($id: UUID!) { regenerate(id: $id) { id } }";
const RETRY: &str = "mutation($id: UUID!) { retryGeneration(id: $id) { id } }";
const UPLOAD_URL: &str =
    "mutation($input: UploadArtifactInput!) { uploadArtifact(input: $input) { id } }";
const ME: &str = "{ me { id } }";

/// One GraphQL answer with what HTTP said around it.
struct Answer {
    status: u16,
    retry_after: Option<u64>,
    body: Value,
}

impl Answer {
    fn code(&self) -> String {
        error_of(&self.body).1
    }

    /// `extensions.retryAfter` of the first error.
    fn hint(&self) -> Option<u64> {
        self.body["errors"][0]["extensions"]["retryAfter"].as_u64()
    }
}

fn retry_after_of(headers: &reqwest::header::HeaderMap) -> Option<u64> {
    headers
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
}

/// POST /graphql at `base` with an optional token and extra headers.
async fn post(
    app: &TestApp,
    base: &str,
    token: Option<&str>,
    headers: &[(&str, &str)],
    query: &str,
    variables: Value,
) -> Answer {
    let mut req = app
        .client
        .post(format!("{base}/graphql"))
        .json(&json!({"query": query, "variables": variables}));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    for (name, value) in headers {
        req = req.header(*name, *value);
    }
    let res = req.send().await.unwrap();
    Answer {
        status: res.status().as_u16(),
        retry_after: retry_after_of(res.headers()),
        body: res.json().await.unwrap(),
    }
}

async fn create_gen(app: &TestApp, base: &str, user: &TestUser, board: &str) -> Answer {
    post(
        app,
        base,
        Some(&user.token),
        &[],
        CREATE_GEN,
        json!({"input": {"boardId": board, "generatorName": "local-echo", "artifactType": "TEXT", "inputParams": {"prompt": "x"}}}),
    )
    .await
}

/// The value of one sample of the API's `/metrics`, e.g. `boards_rate_limited_total{limit="upload"}`.
async fn metric(app: &TestApp, sample: &str) -> f64 {
    let text = app
        .client
        .get(app.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(sample)?.trim().parse().ok())
        .unwrap_or_else(|| panic!("{sample} is not in the scrape:\n{text}"))
}

fn assert_limited(answer: &Answer, message_start: &str) {
    assert_eq!(answer.status, 200, "GraphQL errors keep status 200");
    assert_eq!(answer.code(), "RATE_LIMITED", "{}", answer.body);
    let hint = answer.hint().expect("retryAfter");
    assert!(hint >= 1, "{}", answer.body);
    assert_eq!(answer.retry_after, Some(hint), "the Retry-After header");
    assert_eq!(
        error_of(&answer.body).0,
        format!("{message_start}; retry in {hint} s")
    );
}

#[tokio::test]
async fn generations_past_the_quota_are_refused_with_a_retry_hint_and_other_users_go_on() {
    let app = TestApp::spawn_with(
        Options::default()
            .no_broker()
            .env("BOARDS_RATE_LIMIT_GENERATIONS", "2/60"),
    )
    .await;
    let alice = app.user("alice").await;
    let bob = app.user("bob").await;
    let b = board(&app, &alice).await;

    let first = create_gen(&app, &app.base, &alice, &b).await;
    assert!(first.body.get("errors").is_none(), "{}", first.body);
    let id = first.body["data"]["createGeneration"]["id"].clone();
    let again = post(
        &app,
        &app.base,
        Some(&alice.token),
        &[],
        REGENERATE,
        json!({"id": id}),
    )
    .await;
    assert!(again.body.get("errors").is_none(), "{}", again.body);

    // The quota (2 per 60 s) is used up: every way of starting a job is refused.
    let retried = post(
        &app,
        &app.base,
        Some(&alice.token),
        &[],
        RETRY,
        json!({"id": id}),
    )
    .await;
    assert_limited(&retried, "Too many generations started");
    assert!(retried.hint().unwrap() <= 30, "one more every 30 s");
    assert!(retried.body["data"].is_null());
    let created = create_gen(&app, &app.base, &alice, &b).await;
    assert_limited(&created, "Too many generations started");
    let regenerated = post(
        &app,
        &app.base,
        Some(&alice.token),
        &[],
        REGENERATE,
        json!({"id": id}),
    )
    .await;
    assert_limited(&regenerated, "Too many generations started");
    assert_eq!(fixtures::count_generations(&app, &b).await, 2);

    // Bob has a quota of his own.
    let bobs_board = board(&app, &bob).await;
    let bobs = create_gen(&app, &app.base, &bob, &bobs_board).await;
    assert!(bobs.body.get("errors").is_none(), "{}", bobs.body);

    assert_eq!(
        metric(&app, r#"boards_rate_limited_total{limit="generation"}"#).await,
        3.0
    );
    // The counter is one Redis key that expires by itself within the period.
    let key = format!(
        "{}boards:ratelimit:generation:{}",
        app.config.redis.channel_prefix, alice.id
    );
    let client = redis::Client::open(app.config.redis.url.expose()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let ttl: i64 = redis::cmd("PTTL")
        .arg(&key)
        .query_async(&mut conn)
        .await
        .unwrap();
    assert!(ttl > 0 && ttl <= 60_000, "{key}: {ttl}");
}

#[tokio::test]
async fn a_quota_refills_when_its_retry_hint_says() {
    let app = TestApp::spawn_with(
        Options::default()
            .no_broker()
            .env("BOARDS_RATE_LIMIT_GENERATIONS", "1/2"),
    )
    .await;
    let alice = app.user("alice").await;
    let b = board(&app, &alice).await;
    assert!(create_gen(&app, &app.base, &alice, &b)
        .await
        .body
        .get("errors")
        .is_none());
    let refused = create_gen(&app, &app.base, &alice, &b).await;
    assert_limited(&refused, "Too many generations started");
    let wait = refused.hint().unwrap();
    assert!(wait <= 2, "{wait}");

    tokio::time::sleep(Duration::from_secs(wait)).await;

    let later = create_gen(&app, &app.base, &alice, &b).await;
    assert!(later.body.get("errors").is_none(), "{}", later.body);
}

async fn rest_upload(app: &TestApp, user: &TestUser, board: &str) -> reqwest::Response {
    let form = multipart::Form::new()
        .text("board_id", board.to_string())
        .text("artifact_type", "text")
        .part(
            "file",
            multipart::Part::bytes(b"hello".to_vec())
                .file_name("note.txt")
                .mime_str("text/plain")
                .unwrap(),
        );
    app.client
        .post(app.url("/api/uploads/artifact"))
        .bearer_auth(&user.token)
        .multipart(form)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn uploads_share_one_quota_over_rest_and_graphql() {
    let app =
        TestApp::spawn_with(Options::default().env("BOARDS_RATE_LIMIT_UPLOADS", "2/60")).await;
    let alice = app.user("alice").await;
    let bob = app.user("bob").await;
    let b = board(&app, &alice).await;

    assert_eq!(rest_upload(&app, &alice, &b).await.status(), 200);
    // A URL import counts even when the URL is refused: every attempt does.
    let import = post(
        &app,
        &app.base,
        Some(&alice.token),
        &[],
        UPLOAD_URL,
        json!({"input": {"boardId": b, "artifactType": "TEXT", "fileUrl": "http://127.0.0.1:9/x.txt"}}),
    )
    .await;
    assert_eq!(import.code(), "BAD_USER_INPUT", "{}", import.body);

    let res = rest_upload(&app, &alice, &b).await;
    assert_eq!(res.status(), 429);
    let header = retry_after_of(res.headers()).expect("Retry-After");
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["code"], "RATE_LIMITED");
    assert_eq!(body["retry_after"], header);
    assert!((1..=30).contains(&header), "{header}");
    assert_eq!(
        body["detail"],
        format!("Too many uploads; retry in {header} s")
    );
    let import = post(
        &app,
        &app.base,
        Some(&alice.token),
        &[],
        UPLOAD_URL,
        json!({"input": {"boardId": b, "artifactType": "TEXT", "fileUrl": "http://127.0.0.1:9/x.txt"}}),
    )
    .await;
    assert_limited(&import, "Too many uploads");
    assert_eq!(fixtures::count_generations(&app, &b).await, 1);

    // Generations are another quota; Bob has uploads of his own.
    let bobs_board = board(&app, &bob).await;
    assert_eq!(rest_upload(&app, &bob, &bobs_board).await.status(), 200);
    assert_eq!(
        metric(&app, r#"boards_rate_limited_total{limit="upload"}"#).await,
        2.0
    );
}

/// `{ me }` at `base` with `token` and extra headers.
async fn me(app: &TestApp, base: &str, token: &str, headers: &[(&str, &str)]) -> Answer {
    post(app, base, Some(token), headers, ME, json!({})).await
}

async fn bad_token(app: &TestApp, base: &str, headers: &[(&str, &str)]) -> Answer {
    me(app, base, "not-a-token", headers).await
}

#[tokio::test]
async fn refused_tokens_lock_their_address_out_even_for_good_tokens() {
    let app =
        TestApp::spawn_with(Options::default().env("BOARDS_RATE_LIMIT_AUTH_FAILURES", "3/60"))
            .await;
    let alice = app.user("alice").await;
    for _ in 0..3 {
        let refused = bad_token(&app, &app.base, &[]).await;
        assert_eq!(refused.code(), "UNAUTHENTICATED", "{}", refused.body);
    }

    // Past the quota, credentials are not even looked at: good ones are refused too.
    let good = me(&app, &app.base, &alice.token, &[]).await;
    assert_limited(
        &good,
        "Too many failed authentication attempts from this address",
    );
    assert!(good.body["data"].is_null());
    let bad = bad_token(&app, &app.base, &[]).await;
    assert_eq!(bad.code(), "RATE_LIMITED");
    // REST answers 429 with Retry-After.
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
    assert_eq!(res.status(), 429);
    let header = retry_after_of(res.headers()).expect("Retry-After");
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["code"], "RATE_LIMITED");
    assert_eq!(body["retry_after"], header);
    // Requests without credentials cannot fail authentication and are still served.
    let anonymous = post(&app, &app.base, None, &[], ME, json!({})).await;
    assert!(anonymous.body.get("errors").is_none(), "{}", anonymous.body);
    assert!(anonymous.body["data"]["me"].is_null());
    assert_eq!(
        metric(&app, r#"boards_rate_limited_total{limit="auth_failure"}"#).await,
        3.0
    );
}

#[tokio::test]
async fn forwarded_addresses_count_only_through_trusted_proxies() {
    // The test client is the "proxy" on 127.0.0.1.
    let trusting = TestApp::spawn_with(
        Options::default()
            .env("BOARDS_RATE_LIMIT_AUTH_FAILURES", "2/60")
            .env("BOARDS_TRUSTED_PROXIES", "127.0.0.1/32"),
    )
    .await;
    let alice = trusting.user("alice").await;
    let from = |ip: &'static str| [("X-Forwarded-For", ip)];
    for _ in 0..2 {
        let refused = bad_token(&trusting, &trusting.base, &from("198.51.100.7")).await;
        assert_eq!(refused.code(), "UNAUTHENTICATED");
    }
    let locked = me(
        &trusting,
        &trusting.base,
        &alice.token,
        &from("198.51.100.7"),
    )
    .await;
    assert_eq!(locked.code(), "RATE_LIMITED");
    // Another client behind the same proxy, and the proxy itself, are not affected.
    let other = me(
        &trusting,
        &trusting.base,
        &alice.token,
        &from("198.51.100.8"),
    )
    .await;
    assert!(other.body.get("errors").is_none(), "{}", other.body);
    let direct = me(&trusting, &trusting.base, &alice.token, &[]).await;
    assert!(direct.body.get("errors").is_none(), "{}", direct.body);
    // A client cannot pick its address by prepending its own entry.
    let spoofed = me(
        &trusting,
        &trusting.base,
        &alice.token,
        &[("X-Forwarded-For", "203.0.113.1, 198.51.100.7")],
    )
    .await;
    assert_eq!(spoofed.code(), "RATE_LIMITED");
    // A header line with bytes that are not text still counts (the proxy's appended address is
    // on it): the client's own `Forwarded` is not read in its place.
    let res = trusting
        .client
        .post(trusting.url("/graphql"))
        .bearer_auth(&alice.token)
        .header(
            "X-Forwarded-For",
            reqwest::header::HeaderValue::from_bytes(b"\xff, 198.51.100.7").unwrap(),
        )
        .header("Forwarded", "for=203.0.113.99")
        .json(&json!({"query": ME}))
        .send()
        .await
        .unwrap();
    let body: Value = res.json().await.unwrap();
    assert_eq!(error_of(&body).1, "RATE_LIMITED", "{body}");

    // Without trusted proxies the header means nothing: every attempt is the peer's.
    let plain =
        TestApp::spawn_with(Options::default().env("BOARDS_RATE_LIMIT_AUTH_FAILURES", "2/60"))
            .await;
    let bob = plain.user("bob").await;
    bad_token(&plain, &plain.base, &from("198.51.100.1")).await;
    bad_token(&plain, &plain.base, &from("198.51.100.2")).await;
    let locked = me(&plain, &plain.base, &bob.token, &from("198.51.100.3")).await;
    assert_eq!(locked.code(), "RATE_LIMITED");
}

#[tokio::test]
async fn two_api_processes_share_their_counters() {
    let app = TestApp::spawn_with(
        Options::default()
            .no_broker()
            .env("BOARDS_RATE_LIMIT_GENERATIONS", "3/60")
            .env("BOARDS_RATE_LIMIT_AUTH_FAILURES", "2/60"),
    )
    .await;
    // A second replica on the same database, Redis and key prefix.
    let mut config = app.config.clone();
    config.api.port = 0;
    let replica = Application::build(config, test_logger()).await.unwrap();
    let other = format!("http://127.0.0.1:{}", replica.port());
    let stop = replica.stop_handle();
    tokio::spawn(replica.run_until_stopped());

    let alice = app.user("alice").await;
    let b = board(&app, &alice).await;
    for base in [&app.base, &other, &app.base] {
        let ok = create_gen(&app, base, &alice, &b).await;
        assert!(ok.body.get("errors").is_none(), "{}", ok.body);
    }
    for base in [&other, &app.base] {
        assert_limited(
            &create_gen(&app, base, &alice, &b).await,
            "Too many generations started",
        );
    }

    // Refused tokens too: one on each replica lock the address out of both.
    bad_token(&app, &app.base, &[]).await;
    bad_token(&app, &other, &[]).await;
    for base in [&app.base, &other] {
        let locked = me(&app, base, &alice.token, &[]).await;
        assert_eq!(locked.code(), "RATE_LIMITED", "{base}");
    }
    stop.cancel();
}

#[tokio::test]
async fn the_none_provider_turns_rate_limits_off() {
    let app = TestApp::spawn_with(Options {
        no_auth: true,
        ..Options::default()
            .no_broker()
            .env("BOARDS_RATE_LIMIT_ENABLED", "true")
            .env("BOARDS_RATE_LIMIT_GENERATIONS", "1/60")
    })
    .await;
    assert!(!app.state.limits.is_enabled());
    let dev = TestUser {
        id: String::new(),
        token: "anything".into(),
        email: String::new(),
    };
    let b = board(&app, &dev).await;
    for _ in 0..3 {
        let ok = create_gen(&app, &app.base, &dev, &b).await;
        assert!(ok.body.get("errors").is_none(), "{}", ok.body);
    }
}

#[tokio::test]
async fn an_unreachable_redis_lets_requests_through_and_counts_them() {
    let app = TestApp::spawn_with(
        Options::default()
            .no_broker()
            .env("BOARDS_REDIS_URL", "redis://127.0.0.1:9")
            .env("BOARDS_REDIS_COMMAND_TIMEOUT_MS", "200")
            .env("BOARDS_RATE_LIMIT_GENERATIONS", "1/60"),
    )
    .await;
    assert!(app.state.limits.is_enabled());
    let alice = app.user("alice").await;
    let b = board(&app, &alice).await;
    for _ in 0..3 {
        let ok = create_gen(&app, &app.base, &alice, &b).await;
        assert!(ok.body.get("errors").is_none(), "{}", ok.body);
    }
    assert_eq!(
        metric(
            &app,
            r#"boards_rate_limit_fail_open_total{limit="generation"}"#
        )
        .await,
        3.0
    );
    assert_eq!(
        metric(&app, r#"boards_rate_limited_total{limit="generation"}"#).await,
        0.0
    );
}

#[tokio::test]
async fn refused_admin_credentials_lock_the_address_out_of_administration_and_registration() {
    use crate::tenants::{multi_tenant, rest, ADMIN_TOKEN};
    use reqwest::Method;

    let app = multi_tenant(Options::default().env("BOARDS_RATE_LIMIT_AUTH_FAILURES", "2/60")).await;
    let alice = app.token("alice");
    for guess in ["guess-1-0123456789abcdef", "guess-2-0123456789abcdef"] {
        let (status, _) = rest(
            &app,
            Method::GET,
            "/api/setup/tenants",
            Some(guess),
            None,
            None,
        )
        .await;
        assert_eq!(status, 401);
    }
    // Past the quota the real admin token is refused too, and so is registration.
    let (status, body) = rest(
        &app,
        Method::GET,
        "/api/setup/tenants",
        Some(ADMIN_TOKEN),
        None,
        None,
    )
    .await;
    assert_eq!((status, body["code"].clone()), (429, json!("RATE_LIMITED")));
    let (status, body) = rest(
        &app,
        Method::POST,
        "/api/tenants/register",
        Some(&alice),
        Some("default"),
        Some(json!({"organization_name": "Acme", "admin_email": "a@example.com"})),
    )
    .await;
    assert_eq!((status, body["code"].clone()), (429, json!("RATE_LIMITED")));
    assert_eq!(
        metric(&app, r#"boards_rate_limited_total{limit="auth_failure"}"#).await,
        2.0
    );
}
