//! Board queries and mutations (contract §2.1-§2.4, §5).

use serde_json::{json, Value};

use crate::util::{error_of, TestApp};

pub const CREATE: &str = "mutation($input: CreateBoardInput!) {
  createBoard(input: $input) { id tenantId ownerId title description isPublic settings metadata createdAt updatedAt }
}";

pub async fn create(app: &TestApp, token: &str, input: Value) -> Value {
    app.ok(Some(token), CREATE, json!({ "input": input })).await["createBoard"].clone()
}

fn titles(list: &Value) -> Vec<String> {
    let mut v: Vec<String> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["title"].as_str().unwrap().to_string())
        .collect();
    v.sort();
    v
}

#[tokio::test]
async fn create_board_with_minimal_input() {
    let app = TestApp::spawn().await;
    let user = app.user("alice").await;
    let board = create(&app, &user.token, json!({"title": "My board"})).await;
    assert_eq!(board["ownerId"], user.id.as_str());
    assert_eq!(board["title"], "My board");
    assert!(board["description"].is_null());
    assert_eq!(board["isPublic"], false);
    assert_eq!(board["settings"], json!({}));
    assert_eq!(board["metadata"], json!({}));
    assert!(
        board["createdAt"].as_str().unwrap().ends_with("+00:00"),
        "{board}"
    );
}

#[tokio::test]
async fn create_board_echoes_its_input() {
    let app = TestApp::spawn().await;
    let user = app.user("alice").await;
    let board = create(
        &app,
        &user.token,
        json!({"title": "T", "description": "D", "isPublic": true, "settings": {"x": 1}}),
    )
    .await;
    assert_eq!(board["description"], "D");
    assert_eq!(board["isPublic"], true);
    assert_eq!(board["settings"], json!({"x": 1}));
}

#[tokio::test]
async fn anonymous_callers_cannot_create_boards() {
    let app = TestApp::spawn().await;
    let res = app
        .gql(None, CREATE, json!({"input": {"title": "x"}}))
        .await;
    let (msg, code) = error_of(&res);
    assert_eq!(code, "UNAUTHENTICATED");
    assert_eq!(msg, "Authentication required to create a board");
    assert!(res["data"].is_null());
}

#[tokio::test]
async fn titles_are_checked() {
    let app = TestApp::spawn().await;
    let user = app.user("alice").await;
    for title in ["", "   ", &"x".repeat(256)] {
        let res = app
            .gql(
                Some(&user.token),
                CREATE,
                json!({"input": {"title": title}}),
            )
            .await;
        assert_eq!(error_of(&res).1, "BAD_USER_INPUT", "{res}");
    }
    let board = create(&app, &user.token, json!({"title": "x".repeat(255)})).await;
    assert_eq!(board["title"].as_str().unwrap().len(), 255);
}

const UPDATE: &str = "mutation($input: UpdateBoardInput!) {
  updateBoard(input: $input) { id title description isPublic settings updatedAt }
}";

#[tokio::test]
async fn update_board_changes_only_given_fields() {
    let app = TestApp::spawn().await;
    let user = app.user("alice").await;
    let board = create(&app, &user.token, json!({"title": "T", "description": "D"})).await;
    let id = board["id"].as_str().unwrap();
    let data = app
        .ok(
            Some(&user.token),
            UPDATE,
            json!({"input": {"id": id, "title": "T2", "isPublic": true}}),
        )
        .await;
    let updated = &data["updateBoard"];
    assert_eq!(updated["title"], "T2");
    assert_eq!(updated["isPublic"], true);
    assert_eq!(updated["description"], "D");
    assert_ne!(updated["updatedAt"], board["updatedAt"]);
    // An explicit null means "not provided".
    let data = app
        .ok(
            Some(&user.token),
            UPDATE,
            json!({"input": {"id": id, "description": null}}),
        )
        .await;
    assert_eq!(data["updateBoard"]["description"], "D");
}

#[tokio::test]
async fn update_and_delete_of_a_missing_board_are_not_found() {
    let app = TestApp::spawn().await;
    let user = app.user("alice").await;
    let id = uuid::Uuid::new_v4().to_string();
    let res = app
        .gql(
            Some(&user.token),
            UPDATE,
            json!({"input": {"id": id, "title": "x"}}),
        )
        .await;
    assert_eq!(
        error_of(&res),
        ("Board not found".into(), "NOT_FOUND".into())
    );
    let res = app
        .gql(
            Some(&user.token),
            "mutation($id: UUID!) { deleteBoard(id: $id) { success } }",
            json!({"id": id}),
        )
        .await;
    assert_eq!(
        error_of(&res),
        ("Board not found".into(), "NOT_FOUND".into())
    );
}

#[tokio::test]
async fn delete_board_removes_it() {
    let app = TestApp::spawn().await;
    let user = app.user("alice").await;
    let board = create(&app, &user.token, json!({"title": "T"})).await;
    let id = board["id"].as_str().unwrap();
    let data = app
        .ok(
            Some(&user.token),
            "mutation($id: UUID!) { deleteBoard(id: $id) { success } }",
            json!({"id": id}),
        )
        .await;
    assert_eq!(data["deleteBoard"]["success"], true);
    let res = app
        .gql(
            Some(&user.token),
            "query($id: UUID!) { board(id: $id) { id } }",
            json!({"id": id}),
        )
        .await;
    assert!(res["data"]["board"].is_null());
    assert!(res.get("errors").is_none());
}

#[tokio::test]
async fn uuids_are_accepted_leniently_and_returned_canonically() {
    let app = TestApp::spawn().await;
    let user = app.user("alice").await;
    let board = create(&app, &user.token, json!({"title": "T"})).await;
    let id = board["id"].as_str().unwrap();
    let upper_simple = id.replace('-', "").to_uppercase();
    let braced = format!("{{{id}}}");
    let urn = format!("urn:uuid:{id}");
    for form in [upper_simple, braced, urn] {
        let data = app
            .ok(
                Some(&user.token),
                "query($id: UUID!) { board(id: $id) { id } }",
                json!({"id": form}),
            )
            .await;
        assert_eq!(data["board"]["id"], id);
    }
}

async fn add_member(app: &TestApp, token: &str, board: &str, email: &str, role: &str) -> Value {
    app.ok(
        Some(token),
        "mutation($b: UUID!, $e: String!, $r: BoardRole!) { addBoardMember(boardId: $b, email: $e, role: $r) { id } }",
        json!({"b": board, "e": email, "r": role}),
    )
    .await["addBoardMember"]
        .clone()
}

#[tokio::test]
async fn my_boards_filters_by_role_and_sorts() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice").await;
    let bob = app.user("bob").await;
    create(&app, &alice.token, json!({"title": "a1"})).await;
    create(&app, &alice.token, json!({"title": "a2"})).await;
    let b1 = create(&app, &bob.token, json!({"title": "b1"})).await;
    create(&app, &bob.token, json!({"title": "b2"})).await;
    add_member(
        &app,
        &bob.token,
        b1["id"].as_str().unwrap(),
        &alice.email,
        "VIEWER",
    )
    .await;

    let q = "query($role: BoardQueryRole, $sort: SortOrder, $limit: Int, $offset: Int) {
        myBoards(role: $role, sort: $sort, limit: $limit, offset: $offset) { title } }";
    let run = |vars: Value| app.ok(Some(&alice.token), q, vars);
    assert_eq!(
        titles(&run(json!({})).await["myBoards"]),
        ["a1", "a2", "b1"]
    );
    assert_eq!(
        titles(&run(json!({"role": "ANY"})).await["myBoards"]),
        ["a1", "a2", "b1"]
    );
    assert_eq!(
        titles(&run(json!({"role": "OWNER"})).await["myBoards"]),
        ["a1", "a2"]
    );
    assert_eq!(
        titles(&run(json!({"role": "MEMBER"})).await["myBoards"]),
        ["b1"]
    );

    let in_order = |v: &Value| -> Vec<String> {
        v["myBoards"]
            .as_array()
            .unwrap()
            .iter()
            .map(|b| b["title"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(
        in_order(&run(json!({"sort": "CREATED_ASC"})).await),
        ["a1", "a2", "b1"]
    );
    assert_eq!(
        in_order(&run(json!({"sort": "CREATED_DESC"})).await),
        ["b1", "a2", "a1"]
    );
    assert_eq!(
        in_order(&run(json!({"sort": "CREATED_ASC", "limit": 2, "offset": 1})).await),
        ["a2", "b1"]
    );
    // limit 0 and null mean the default.
    assert_eq!(
        in_order(&run(json!({"sort": "CREATED_ASC", "limit": 0})).await).len(),
        3
    );

    let res = app.gql(Some(&alice.token), q, json!({"limit": -1})).await;
    assert_eq!(error_of(&res).1, "BAD_USER_INPUT", "{res}");
    // Anonymous callers own nothing.
    let data = app.ok(None, q, json!({})).await;
    assert_eq!(data["myBoards"], json!([]));
}

#[tokio::test]
async fn updating_a_board_moves_it_first_in_the_default_order() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice").await;
    let first = create(&app, &alice.token, json!({"title": "first"})).await;
    create(&app, &alice.token, json!({"title": "second"})).await;
    app.ok(
        Some(&alice.token),
        UPDATE,
        json!({"input": {"id": first["id"], "title": "first!"}}),
    )
    .await;
    let data = app
        .ok(Some(&alice.token), "{ myBoards { title } }", json!({}))
        .await;
    assert_eq!(data["myBoards"][0]["title"], "first!");
}

#[tokio::test]
async fn public_boards_are_listed_for_everyone() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice").await;
    create(&app, &alice.token, json!({"title": "p1", "isPublic": true})).await;
    create(&app, &alice.token, json!({"title": "p2", "isPublic": true})).await;
    create(&app, &alice.token, json!({"title": "private"})).await;
    let data = app.ok(None, "{ publicBoards { title } }", json!({})).await;
    assert_eq!(titles(&data["publicBoards"]), ["p1", "p2"]);
    let data = app
        .ok(None, "{ publicBoards(limit: 1) { title } }", json!({}))
        .await;
    assert_eq!(data["publicBoards"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn search_matches_title_or_description_case_insensitively() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice").await;
    let bob = app.user("bob").await;
    create(&app, &alice.token, json!({"title": "Learning Python"})).await;
    create(
        &app,
        &alice.token,
        json!({"title": "Snakes", "description": "all about python"}),
    )
    .await;
    create(
        &app,
        &alice.token,
        json!({"title": "PYTHON tips", "isPublic": true}),
    )
    .await;
    create(&app, &alice.token, json!({"title": "Rust"})).await;
    create(&app, &alice.token, json!({"title": "100% done"})).await;
    create(&app, &bob.token, json!({"title": "bob's python"})).await;

    let q = "query($q: String!, $limit: Int) { searchBoards(query: $q, limit: $limit) { title } }";
    let data = app.ok(Some(&alice.token), q, json!({"q": "Python"})).await;
    assert_eq!(
        titles(&data["searchBoards"]),
        ["Learning Python", "PYTHON tips", "Snakes"]
    );
    let data = app
        .ok(Some(&alice.token), q, json!({"q": "python", "limit": 2}))
        .await;
    assert_eq!(data["searchBoards"].as_array().unwrap().len(), 2);
    // Anonymous callers only see public matches.
    let data = app.ok(None, q, json!({"q": "python"})).await;
    assert_eq!(titles(&data["searchBoards"]), ["PYTHON tips"]);
    // `%` and `_` match literally.
    let data = app.ok(Some(&alice.token), q, json!({"q": "%"})).await;
    assert_eq!(titles(&data["searchBoards"]), ["100% done"]);
    let data = app.ok(Some(&alice.token), q, json!({"q": "_"})).await;
    assert_eq!(data["searchBoards"], json!([]));
    // The empty query lists every accessible board.
    let data = app.ok(Some(&alice.token), q, json!({"q": ""})).await;
    assert_eq!(data["searchBoards"].as_array().unwrap().len(), 5);
    let data = app
        .ok(Some(&alice.token), q, json!({"q": "nothing like this"}))
        .await;
    assert_eq!(data["searchBoards"], json!([]));
}

#[tokio::test]
async fn page_sizes_are_clamped() {
    let app = TestApp::spawn_with(
        crate::util::Options::default().env("BOARDS_GRAPHQL_MAX_PAGE_SIZE", "2"),
    )
    .await;
    let alice = app.user("alice").await;
    for t in ["a", "b", "c"] {
        create(&app, &alice.token, json!({"title": t})).await;
    }
    let data = app
        .ok(
            Some(&alice.token),
            "{ myBoards(limit: 100) { id } }",
            json!({}),
        )
        .await;
    assert_eq!(data["myBoards"].as_array().unwrap().len(), 2);
}
