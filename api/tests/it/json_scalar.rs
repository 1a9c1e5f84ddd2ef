//! The `JSON` scalar accepts any JSON value as a variable, also nested in input objects, and
//! returns it unchanged.

use serde_json::{json, Value};

use crate::util::{error_of, TestApp};

const CREATE: &str = "mutation CreateBoard($input: CreateBoardInput!) {
  createBoard(input: $input) { id settings metadata }
}";

#[tokio::test]
async fn nested_json_objects_round_trip_through_input_objects() {
    let app = TestApp::spawn().await;
    let user = app.user("alice").await;
    let settings = json!({
        "theme": "dark",
        "grid": {"columns": 4, "gap": 1.5, "dense": true, "tags": ["a", "b", {"deep": [1, [2, [3]]]}]},
        "nothing": null,
        "empty": {},
        "list": [],
        "unicode": "żółw 🐢",
        "big": 12345678901234_i64,
        "neg": -0.25
    });
    let data = app
        .ok(
            Some(&user.token),
            CREATE,
            json!({"input": {"title": "B", "settings": settings}}),
        )
        .await;
    assert_eq!(data["createBoard"]["settings"], settings);
    assert_eq!(data["createBoard"]["metadata"], json!({}));

    let id = data["createBoard"]["id"].as_str().unwrap();
    let read = app
        .ok(
            Some(&user.token),
            "query($id: UUID!) { board(id: $id) { settings } }",
            json!({"id": id}),
        )
        .await;
    assert_eq!(read["board"]["settings"], settings);
}

#[tokio::test]
async fn update_replaces_settings_wholesale() {
    let app = TestApp::spawn().await;
    let user = app.user("alice").await;
    let data = app
        .ok(
            Some(&user.token),
            CREATE,
            json!({"input": {"title": "B", "settings": {"a": 1, "b": 2}}}),
        )
        .await;
    let id = data["createBoard"]["id"].as_str().unwrap();
    let data = app
        .ok(
            Some(&user.token),
            "mutation($input: UpdateBoardInput!) { updateBoard(input: $input) { settings } }",
            json!({"input": {"id": id, "settings": {"c": [true, false, null]}}}),
        )
        .await;
    assert_eq!(
        data["updateBoard"]["settings"],
        json!({"c": [true, false, null]})
    );
}

#[tokio::test]
async fn a_top_level_json_variable_accepts_every_json_kind() {
    let app = TestApp::spawn().await;
    let user = app.user("alice").await;
    // `settings` must be an object for a board, but the scalar itself takes any value: every
    // kind reaches the resolver, which answers with its own clear error for non-objects.
    for value in [json!([1, 2]), json!("text"), json!(3), json!(true)] {
        let res = app
            .gql(
                Some(&user.token),
                "mutation($s: JSON) { createBoard(input: {title: \"x\", settings: $s}) { id } }",
                json!({"s": value}),
            )
            .await;
        let (msg, code) = error_of(&res);
        assert_eq!(code, "BAD_USER_INPUT", "{res}");
        assert_eq!(msg, "settings must be a JSON object", "{res}");
    }
    let data = app
        .ok(
            Some(&user.token),
            "mutation($s: JSON) { createBoard(input: {title: \"x\", settings: $s}) { settings } }",
            json!({"s": {"k": [1, {"z": null}]}}),
        )
        .await;
    assert_eq!(
        data["createBoard"]["settings"],
        json!({"k": [1, {"z": null}]})
    );
}

#[tokio::test]
async fn null_settings_mean_not_provided() {
    let app = TestApp::spawn().await;
    let user = app.user("alice").await;
    let data = app
        .ok(
            Some(&user.token),
            CREATE,
            json!({"input": {"title": "B", "settings": null}}),
        )
        .await;
    assert_eq!(data["createBoard"]["settings"], json!({}));
}

#[tokio::test]
async fn nul_characters_inside_json_are_refused_clearly() {
    let app = TestApp::spawn().await;
    let user = app.user("alice").await;
    let res = app
        .gql(
            Some(&user.token),
            CREATE,
            json!({"input": {"title": "B", "settings": {"a": "x\u{0000}"}}}),
        )
        .await;
    assert_eq!(error_of(&res).1, "BAD_USER_INPUT", "{res}");
}

#[tokio::test]
async fn json_values_for_non_json_positions_are_still_validated() {
    let app = TestApp::spawn().await;
    let user = app.user("alice").await;
    let res: Value = app
        .gql(
            Some(&user.token),
            CREATE,
            json!({"input": {"title": {"not": "a string"}}}),
        )
        .await;
    assert_eq!(error_of(&res).1, "GRAPHQL_VALIDATION_FAILED", "{res}");
}
