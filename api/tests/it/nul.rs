//! NUL characters (which PostgreSQL cannot store) in every `String` argument of the schema are
//! refused with `BAD_USER_INPUT`, never `INTERNAL_SERVER_ERROR`. The list of arguments is
//! checked against the served schema, so a new `String` argument without a case fails here.

use std::collections::BTreeSet;

use serde_json::{json, Value};

use crate::{
    boards::create,
    util::{error_of, TestApp},
};

const NUL: &str = "bad\u{0}value";

/// `Type.field(arg)` for arguments of root fields, `Input.field` for input object fields:
/// every place a `String` enters the schema.
async fn string_arguments(app: &TestApp) -> BTreeSet<String> {
    let q = "{ __schema { types { name kind
        fields { name args { name type { ...T } } }
        inputFields { name type { ...T } } } } }
      fragment T on __Type { kind name ofType { kind name ofType { kind name ofType { kind name } } } }";
    let data = app.ok(None, q, json!({})).await;
    fn is_string(t: &Value) -> bool {
        match t["kind"].as_str() {
            Some("NON_NULL" | "LIST") => is_string(&t["ofType"]),
            _ => t["name"] == "String",
        }
    }
    let mut found = BTreeSet::new();
    for t in data["__schema"]["types"].as_array().unwrap() {
        let name = t["name"].as_str().unwrap();
        if name.starts_with("__") {
            continue;
        }
        for f in t["fields"].as_array().into_iter().flatten() {
            for a in f["args"].as_array().unwrap() {
                if is_string(&a["type"]) {
                    found.insert(format!(
                        "{name}.{}({})",
                        f["name"].as_str().unwrap(),
                        a["name"].as_str().unwrap()
                    ));
                }
            }
        }
        for f in t["inputFields"].as_array().into_iter().flatten() {
            if is_string(&f["type"]) {
                found.insert(format!("{name}.{}", f["name"].as_str().unwrap()));
            }
        }
    }
    found
}

#[tokio::test]
async fn nul_in_any_string_argument_is_bad_user_input() {
    let app = TestApp::spawn().await;
    let owner = app.user("owner").await;
    let board = create(&app, &owner.token, json!({"title": "B"})).await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let tag = app
        .ok(
            Some(&owner.token),
            "mutation { createTag(input: {name: \"t\"}) { id } }",
            json!({}),
        )
        .await["createTag"]["id"]
        .clone();

    // Disabled, at a public address literal nothing ever sends to (no lookup either).
    let webhook = app
        .ok(
            Some(&owner.token),
            "mutation($b: UUID!) { createWebhook(input: {boardId: $b, url: \"http://93.184.216.34/hook\", eventTypes: [\"generation.completed\"], enabled: false}) { webhook { id } } }",
            json!({"b": board}),
        )
        .await["createWebhook"]["webhook"]["id"]
        .clone();
    let hook = |field: &str, value: Value| {
        let mut input = json!({"boardId": board, "url": "http://93.184.216.34/hook", "eventTypes": ["generation.completed"]});
        input[field] = value;
        input
    };
    let update_hook = |field: &str, value: Value| {
        let mut input = json!({});
        input[field] = value;
        json!({"id": webhook, "i": input})
    };
    let create_hook = "mutation($i: CreateWebhookInput!) { createWebhook(input: $i) { secret } }";
    let change_hook = "mutation($id: UUID!, $i: UpdateWebhookInput!) { updateWebhook(id: $id, input: $i) { id } }";
    let gen_input = |field: &str| {
        let mut input = json!({"boardId": board, "generatorName": "local-text", "artifactType": "TEXT", "inputParams": {"prompt": "p"}});
        input[field] = json!(NUL);
        input
    };
    let upload = |field: &str| {
        let mut input = json!({"boardId": board, "artifactType": "IMAGE"});
        input[field] = json!(NUL);
        input
    };
    let cases: Vec<(&str, &str, Value)> = vec![
        ("Query.searchBoards(query)", "query($v: String!) { searchBoards(query: $v) { id } }", json!({"v": NUL})),
        ("Query.generators(artifactType)", "query($v: String) { generators(artifactType: $v) { name } }", json!({"v": NUL})),
        ("Query.tagBySlug(slug)", "query($v: String!) { tagBySlug(slug: $v) { id } }", json!({"v": NUL})),
        ("Mutation.addBoardMember(email)", "mutation($b: UUID!, $v: String!) { addBoardMember(boardId: $b, email: $v, role: VIEWER) { id } }", json!({"b": board, "v": format!("a{NUL}@example.com")})),
        ("CreateBoardInput.title", "mutation($i: CreateBoardInput!) { createBoard(input: $i) { id } }", json!({"i": {"title": NUL}})),
        ("CreateBoardInput.description", "mutation($i: CreateBoardInput!) { createBoard(input: $i) { id } }", json!({"i": {"title": "t", "description": NUL}})),
        ("UpdateBoardInput.title", "mutation($i: UpdateBoardInput!) { updateBoard(input: $i) { id } }", json!({"i": {"id": board, "title": NUL}})),
        ("UpdateBoardInput.description", "mutation($i: UpdateBoardInput!) { updateBoard(input: $i) { id } }", json!({"i": {"id": board, "description": NUL}})),
        ("CreateGenerationInput.generatorName", "mutation($i: CreateGenerationInput!) { createGeneration(input: $i) { id } }", json!({"i": gen_input("generatorName")})),
        ("UploadArtifactInput.fileUrl", "mutation($i: UploadArtifactInput!) { uploadArtifact(input: $i) { id } }", json!({"i": upload("fileUrl")})),
        ("UploadArtifactInput.originalFilename", "mutation($i: UploadArtifactInput!) { uploadArtifact(input: $i) { id } }", json!({"i": upload("originalFilename")})),
        ("UploadArtifactInput.userDescription", "mutation($i: UploadArtifactInput!) { uploadArtifact(input: $i) { id } }", json!({"i": upload("userDescription")})),
        ("CreateTagInput.name", "mutation($i: CreateTagInput!) { createTag(input: $i) { id } }", json!({"i": {"name": NUL}})),
        ("CreateTagInput.slug", "mutation($i: CreateTagInput!) { createTag(input: $i) { id } }", json!({"i": {"name": "n", "slug": NUL}})),
        ("CreateTagInput.description", "mutation($i: CreateTagInput!) { createTag(input: $i) { id } }", json!({"i": {"name": "n", "description": NUL}})),
        ("UpdateTagInput.name", "mutation($i: UpdateTagInput!) { updateTag(input: $i) { id } }", json!({"i": {"id": tag, "name": NUL}})),
        ("UpdateTagInput.slug", "mutation($i: UpdateTagInput!) { updateTag(input: $i) { id } }", json!({"i": {"id": tag, "slug": NUL}})),
        ("UpdateTagInput.description", "mutation($i: UpdateTagInput!) { updateTag(input: $i) { id } }", json!({"i": {"id": tag, "description": NUL}})),
        ("CreateWebhookInput.url", create_hook, json!({"i": hook("url", json!(NUL))})),
        ("CreateWebhookInput.eventTypes", create_hook, json!({"i": hook("eventTypes", json!([NUL]))})),
        ("CreateWebhookInput.description", create_hook, json!({"i": hook("description", json!(NUL))})),
        ("UpdateWebhookInput.url", change_hook, update_hook("url", json!(NUL))),
        ("UpdateWebhookInput.eventTypes", change_hook, update_hook("eventTypes", json!([NUL]))),
        ("UpdateWebhookInput.description", change_hook, update_hook("description", json!(NUL))),
    ];

    let covered: BTreeSet<String> = cases.iter().map(|(k, ..)| k.to_string()).collect();
    assert_eq!(
        covered,
        string_arguments(&app).await,
        "every String argument of the schema needs a case here"
    );
    for (name, query, vars) in &cases {
        let res = app.gql(Some(&owner.token), query, vars.clone()).await;
        let (message, code) = error_of(&res);
        assert_eq!(code, "BAD_USER_INPUT", "{name}: {res}");
        assert!(
            message.ends_with("must not contain NUL characters"),
            "{name}: {message}"
        );
    }
    // Anonymous callers of the read queries get the same answer (the check comes first).
    for (name, query, vars) in &cases[..3] {
        let res = app.gql(None, query, vars.clone()).await;
        assert_eq!(
            error_of(&res).1,
            "BAD_USER_INPUT",
            "{name} anonymous: {res}"
        );
    }
    // JSON arguments holding NUL are refused the same way.
    for (name, query, vars) in [
        (
            "CreateBoardInput.settings",
            "mutation($i: CreateBoardInput!) { createBoard(input: $i) { id } }",
            json!({"i": {"title": "t", "settings": {"k": NUL}}}),
        ),
        (
            "CreateTagInput.metadata",
            "mutation($i: CreateTagInput!) { createTag(input: $i) { id } }",
            json!({"i": {"name": "m", "metadata": {NUL: 1}}}),
        ),
        (
            "CreateGenerationInput.inputParams",
            "mutation($i: CreateGenerationInput!) { createGeneration(input: $i) { id } }",
            json!({"i": {"boardId": board, "generatorName": "local-text", "artifactType": "TEXT", "inputParams": {"prompt": NUL}}}),
        ),
    ] {
        let res = app.gql(Some(&owner.token), query, vars).await;
        assert_eq!(error_of(&res).1, "BAD_USER_INPUT", "{name}: {res}");
    }
}
