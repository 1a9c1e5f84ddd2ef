//! `/graphql` transport rules (contract §3.2) and the error model.

use serde_json::{json, Value};

use crate::util::{error_of, TestApp};

#[tokio::test]
async fn get_runs_queries_and_refuses_mutations() {
    let app = TestApp::spawn().await;
    let res = app
        .client
        .get(app.url("/graphql"))
        .query(&[("query", "{ publicBoards { id } }")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["data"]["publicBoards"], json!([]));

    let res = app
        .client
        .get(app.url("/graphql"))
        .query(&[(
            "query",
            "mutation { deleteBoard(id: \"00000000-0000-0000-0000-000000000000\") { success } }",
        )])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    assert_eq!(
        res.text().await.unwrap(),
        "mutations are not allowed when using GET"
    );
}

#[tokio::test]
async fn get_passes_variables_as_a_json_string() {
    let app = TestApp::spawn().await;
    let res = app
        .client
        .get(app.url("/graphql"))
        .query(&[
            (
                "query",
                "query Q($q: String!) { searchBoards(query: $q) { id } }",
            ),
            ("variables", r#"{"q": "x"}"#),
            ("operationName", "Q"),
        ])
        .send()
        .await
        .unwrap();
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["data"]["searchBoards"], json!([]), "{body}");
}

#[tokio::test]
async fn browsers_get_graphiql() {
    let app = TestApp::spawn().await;
    let res = app
        .client
        .get(app.url("/graphql"))
        .header("Accept", "text/html")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert!(res.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    assert!(res
        .text()
        .await
        .unwrap()
        .to_lowercase()
        .contains("graphiql"));
}

#[tokio::test]
async fn malformed_requests_are_plain_400s() {
    let app = TestApp::spawn().await;
    let post = |body: &'static str, ct: &'static str| {
        app.client
            .post(app.url("/graphql"))
            .header("Content-Type", ct)
            .body(body)
            .send()
    };
    for (body, ct, expected) in [
        (
            "{not json",
            "application/json",
            "Unable to parse request body as JSON",
        ),
        ("[]", "application/json", "Batching is not enabled"),
        (
            "{}",
            "application/json",
            "No GraphQL query found in the request",
        ),
        (
            r#"{"query": 1}"#,
            "application/json",
            "The GraphQL query must be a string",
        ),
        (
            r#"{"query": "{ me { id } }", "variables": [1]}"#,
            "application/json",
            "The GraphQL variables must be a JSON object",
        ),
        (
            "query=x",
            "application/x-www-form-urlencoded",
            "Unsupported content type",
        ),
    ] {
        let res = post(body, ct).await.unwrap();
        assert_eq!(res.status(), 400, "{body}");
        assert_eq!(res.text().await.unwrap(), expected);
    }
}

#[tokio::test]
async fn oversized_bodies_are_refused() {
    let app = TestApp::spawn().await;
    let big = format!(
        r#"{{"query": "{{ me {{ id }} }}", "variables": {{"x": "{}"}}}}"#,
        "a".repeat(2 * 1024 * 1024)
    );
    let res = app
        .client
        .post(app.url("/graphql"))
        .header("Content-Type", "application/json")
        .body(big)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 413);
}

#[tokio::test]
async fn parse_and_validation_errors_carry_codes() {
    let app = TestApp::spawn().await;
    let res = app.gql(None, "{ publicBoards { id ", json!({})).await;
    assert_eq!(error_of(&res).1, "GRAPHQL_PARSE_FAILED", "{res}");
    assert!(res["data"].is_null());
    let res = app.gql(None, "{ publicBoards { nope } }", json!({})).await;
    assert_eq!(error_of(&res).1, "GRAPHQL_VALIDATION_FAILED", "{res}");
    let res = app
        .gql(
            None,
            "query($id: UUID!) { board(id: $id) { id } }",
            json!({"id": "not-a-uuid"}),
        )
        .await;
    assert_eq!(error_of(&res).1, "GRAPHQL_VALIDATION_FAILED", "{res}");
}

#[tokio::test]
async fn deep_documents_hit_the_depth_limit() {
    let app =
        TestApp::spawn_with(crate::util::Options::default().env("BOARDS_GRAPHQL_MAX_DEPTH", "4"))
            .await;
    let res = app
        .gql(
            None,
            "{ publicBoards { owner { boards { owner { boards { id } } } } } }",
            json!({}),
        )
        .await;
    let (msg, code) = error_of(&res);
    assert_eq!(code, "GRAPHQL_PARSE_FAILED", "{res}");
    assert!(msg.contains("exceeds the limit of 4"), "{msg}");
}

#[tokio::test]
async fn introspection_works_and_can_be_turned_off() {
    let app = TestApp::spawn().await;
    let data = app
        .ok(None, "{ __schema { queryType { name } } }", json!({}))
        .await;
    assert_eq!(data["__schema"]["queryType"]["name"], "Query");
    let app = TestApp::spawn_with(
        crate::util::Options::default().env("BOARDS_GRAPHQL_INTROSPECTION", "false"),
    )
    .await;
    let res = app
        .gql(None, "{ __schema { queryType { name } } }", json!({}))
        .await;
    assert!(res.get("errors").is_some(), "{res}");
}

#[tokio::test]
async fn responses_carry_a_request_id() {
    let app = TestApp::spawn().await;
    let res = app
        .client
        .get(app.url("/health"))
        .header("X-Request-Id", "abc-123")
        .send()
        .await
        .unwrap();
    assert_eq!(res.headers()["x-request-id"], "abc-123");
    let res = app.client.get(app.url("/health")).send().await.unwrap();
    assert!(!res.headers()["x-request-id"].is_empty());
}

#[tokio::test]
async fn cors_preflight_is_answered_for_configured_origins() {
    let app = TestApp::spawn().await;
    let res = app
        .client
        .request(reqwest::Method::OPTIONS, app.url("/graphql"))
        .header("Origin", "http://localhost:3033")
        .header("Access-Control-Request-Method", "POST")
        .header(
            "Access-Control-Request-Headers",
            "authorization, content-type, x-tenant",
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(
        res.headers()["access-control-allow-origin"],
        "http://localhost:3033"
    );
    assert_eq!(res.headers()["access-control-allow-credentials"], "true");
    let res = app
        .client
        .request(reqwest::Method::OPTIONS, app.url("/graphql"))
        .header("Origin", "http://evil.example")
        .header("Access-Control-Request-Method", "POST")
        .send()
        .await
        .unwrap();
    assert!(res.headers().get("access-control-allow-origin").is_none());
}

#[tokio::test]
async fn internal_details_never_reach_clients() {
    let app = TestApp::spawn().await;
    let user = app.user("alice").await;
    // PostgreSQL refuses NUL bytes in text: the API says so instead of passing the driver's error.
    let res = app
        .gql(
            Some(&user.token),
            "mutation($i: CreateBoardInput!) { createBoard(input: $i) { id } }",
            json!({"i": {"title": "bad\u{0000}title"}}),
        )
        .await;
    let text = res.to_string().to_lowercase();
    assert_eq!(error_of(&res).1, "BAD_USER_INPUT", "{res}");
    assert!(
        !text.contains("postgres") && !text.contains("diesel") && !text.contains("cause"),
        "{res}"
    );
}

#[tokio::test]
async fn cached_documents_still_check_their_variables_every_time() {
    let app = TestApp::spawn().await;
    let q = "query($id: UUID!) { board(id: $id) { id } }";
    for _ in 0..2 {
        let ok = app.gql(None, q, json!({"id": uuid::Uuid::new_v4()})).await;
        assert!(ok.get("errors").is_none(), "{ok}");
        let bad = app.gql(None, q, json!({"id": "nope"})).await;
        assert_eq!(error_of(&bad).1, "GRAPHQL_VALIDATION_FAILED", "{bad}");
        let missing = app.gql(None, q, json!({})).await;
        assert_eq!(
            error_of(&missing).1,
            "GRAPHQL_VALIDATION_FAILED",
            "{missing}"
        );
    }
    // The same text with another operation name is another document.
    let two = "query A { publicBoards { id } } query B { me { id } }";
    let res = app
        .client
        .post(app.url("/graphql"))
        .json(&json!({"query": two, "operationName": "B"}))
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap();
    assert!(res["data"].get("me").is_some(), "{res}");
    let res = app
        .client
        .post(app.url("/graphql"))
        .json(&json!({"query": two, "operationName": "A"}))
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap();
    assert!(res["data"].get("publicBoards").is_some(), "{res}");
}
