use crate::util::TestApp;

#[tokio::test]
async fn health_answers_without_touching_dependencies() {
    let app = TestApp::spawn().await;
    let res = app.client.get(app.url("/health")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["status"], "healthy");
}

#[tokio::test]
async fn ready_reports_every_dependency() {
    let app = TestApp::spawn().await;
    // The outbox relay connects to RabbitMQ in the background right after startup.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let body: serde_json::Value = loop {
        let res = app.client.get(app.url("/ready")).send().await.unwrap();
        let status = res.status();
        let body: serde_json::Value = res.json().await.unwrap();
        if status == 200 {
            break body;
        }
        assert!(std::time::Instant::now() < deadline, "never ready: {body}");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    assert_eq!(body["checks"]["postgresql"], "ok");
    assert_eq!(body["checks"]["redis"], "ok");
    assert_eq!(body["checks"]["rabbitmq"], "ok");
}

#[tokio::test]
async fn ready_is_503_naming_postgresql_when_the_database_is_gone() {
    let app = TestApp::spawn().await;
    // Drop the database under the running app: its connections are terminated.
    let mut admin = <diesel_async::AsyncPgConnection as diesel_async::AsyncConnection>::establish(
        &boards_shared::testing::admin_url(),
    )
    .await
    .unwrap();
    diesel_async::RunQueryDsl::execute(
        diesel::sql_query(format!("DROP DATABASE {} WITH (FORCE)", app.db.name())),
        &mut admin,
    )
    .await
    .unwrap();
    let res = app.client.get(app.url("/ready")).send().await.unwrap();
    assert_eq!(res.status(), 503);
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["failing"][0], "postgresql");
    // GraphQL keeps answering, with a clear error instead of a crash.
    let res = app
        .gql(
            Some(&app.token("x")),
            "{ me { id } }",
            serde_json::json!({}),
        )
        .await;
    assert_eq!(
        res["errors"][0]["extensions"]["code"], "SERVICE_UNAVAILABLE",
        "{res}"
    );
    assert!(
        res["errors"][0]["extensions"].get("cause").is_none(),
        "{res}"
    );
    // The liveness probe is unaffected.
    let res = app.client.get(app.url("/health")).send().await.unwrap();
    assert_eq!(res.status(), 200);
}

#[tokio::test]
async fn unknown_routes_are_json_404() {
    let app = TestApp::spawn().await;
    let res = app.client.get(app.url("/nope")).send().await.unwrap();
    assert_eq!(res.status(), 404);
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["detail"], "Not Found");
    let res = app.client.put(app.url("/graphql")).send().await.unwrap();
    assert_eq!(res.status(), 405);
}

/// GET `url`: its status and body.
async fn get(app: &TestApp, url: &str) -> (u16, String) {
    let res = app.client.get(url).send().await.unwrap();
    (res.status().as_u16(), res.text().await.unwrap())
}

#[tokio::test]
async fn metrics_are_served_on_the_api_port_by_default() {
    let app = TestApp::spawn().await;
    assert_eq!(app.state.metrics_address, None);
    let (status, body) = get(&app, &app.url("/metrics")).await;
    assert_eq!(status, 200);
    assert!(body.contains("boards_sse_clients"), "{body}");
}

#[tokio::test]
async fn metrics_move_to_their_own_address_when_one_is_configured() {
    let app = TestApp::spawn_with(
        crate::util::Options::default().env("BOARDS_METRICS_ADDRESS", "127.0.0.1:0"),
    )
    .await;
    let address = app.state.metrics_address.expect("a metrics listener");
    assert!(address.ip().is_loopback());
    let metrics = format!("http://{address}");

    let (status, body) = get(&app, &format!("{metrics}/metrics")).await;
    assert_eq!(status, 200);
    assert!(body.contains("boards_sse_clients"), "{body}");
    // Only there: the API port no longer serves it, and the metrics port serves nothing else.
    assert_eq!(
        get(&app, &app.url("/metrics")).await,
        (404, r#"{"detail":"Not Found"}"#.to_string())
    );
    for path in ["/health", "/graphql", "/api/storage/status"] {
        assert_eq!(
            get(&app, &format!("{metrics}{path}")).await.0,
            404,
            "{path}"
        );
    }
    assert_eq!(get(&app, &app.url("/health")).await.0, 200);
}

#[tokio::test]
async fn the_workers_metrics_move_to_their_own_address_when_one_is_configured() {
    let app = TestApp::spawn().await;
    let mut config = app.config.clone();
    config.worker.metrics_address = "127.0.0.1:0".into();
    let worker = boards_worker::Worker::start(
        config,
        crate::util::test_logger(),
        boards_shared::generators::Registry::builtin(),
    )
    .await
    .unwrap();
    let health = format!("http://127.0.0.1:{}", worker.health_port);
    let metrics = format!(
        "http://127.0.0.1:{}",
        worker.metrics_port.expect("a metrics listener")
    );

    let (status, body) = get(&app, &format!("{metrics}/metrics")).await;
    assert_eq!(status, 200);
    assert!(body.contains("boards_jobs_running"), "{body}");
    assert_eq!(get(&app, &format!("{health}/metrics")).await.0, 404);
    assert_eq!(get(&app, &format!("{health}/health")).await.0, 200);
    assert_eq!(get(&app, &format!("{metrics}/health")).await.0, 404);
    worker.stop().await;
}

#[tokio::test]
async fn the_workers_metrics_stay_on_its_health_port_by_default() {
    let app = TestApp::spawn().await;
    let worker = boards_worker::Worker::start(
        app.config.clone(),
        crate::util::test_logger(),
        boards_shared::generators::Registry::builtin(),
    )
    .await
    .unwrap();
    assert_eq!(worker.metrics_port, None);
    let (status, body) = get(
        &app,
        &format!("http://127.0.0.1:{}/metrics", worker.health_port),
    )
    .await;
    assert_eq!(status, 200);
    assert!(body.contains("boards_jobs_running"), "{body}");
    worker.stop().await;
}
