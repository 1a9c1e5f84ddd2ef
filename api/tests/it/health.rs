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
