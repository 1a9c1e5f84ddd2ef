//! Tags (contract §2.4, §5).

use serde_json::json;

use crate::{
    boards::create,
    members::ADD,
    util::{error_of, fixtures::GenerationFixture, TestApp},
};

const CREATE_TAG: &str = "mutation($i: CreateTagInput!) { createTag(input: $i) { id tenantId name slug description metadata } }";
const UPDATE_TAG: &str =
    "mutation($i: UpdateTagInput!) { updateTag(input: $i) { id name slug description metadata } }";

#[tokio::test]
async fn tags_are_created_listed_updated_and_deleted() {
    let app = TestApp::spawn().await;
    let u = app.user("alice").await;
    let t = Some(u.token.as_str());
    let tag = app
        .ok(
            t,
            CREATE_TAG,
            json!({"i": {"name": "Model Photo", "metadata": {"color": "red"}}}),
        )
        .await["createTag"]
        .clone();
    assert_eq!(tag["slug"], "model-photo");
    assert_eq!(tag["metadata"], json!({"color": "red"}));
    let id = tag["id"].as_str().unwrap();

    app.ok(
        t,
        CREATE_TAG,
        json!({"i": {"name": "Another", "slug": "Custom_Slug!"}}),
    )
    .await;
    let list = app.ok(t, "{ tags { name slug } }", json!({})).await;
    assert_eq!(
        list["tags"],
        json!([{"name": "Another", "slug": "Custom_Slug!"}, {"name": "Model Photo", "slug": "model-photo"}])
    );
    let by_id = app
        .ok(
            t,
            "query($id: UUID!) { tag(id: $id) { name } }",
            json!({"id": id}),
        )
        .await;
    assert_eq!(by_id["tag"]["name"], "Model Photo");
    let by_slug = app
        .ok(t, "{ tagBySlug(slug: \"model-photo\") { id } }", json!({}))
        .await;
    assert_eq!(by_slug["tagBySlug"]["id"], id);
    let case = app
        .ok(t, "{ tagBySlug(slug: \"Model-Photo\") { id } }", json!({}))
        .await;
    assert!(case["tagBySlug"].is_null());

    let updated = app
        .ok(
            t,
            UPDATE_TAG,
            json!({"i": {"id": id, "name": "Model Photos"}}),
        )
        .await;
    assert_eq!(updated["updateTag"]["slug"], "model-photos");
    let updated = app
        .ok(
            t,
            UPDATE_TAG,
            json!({"i": {"id": id, "slug": "mp", "description": "d"}}),
        )
        .await;
    assert_eq!(updated["updateTag"]["slug"], "mp");
    assert_eq!(updated["updateTag"]["name"], "Model Photos");
    assert_eq!(updated["updateTag"]["description"], "d");

    let deleted = app
        .ok(
            t,
            "mutation($id: UUID!) { deleteTag(id: $id) }",
            json!({"id": id}),
        )
        .await;
    assert_eq!(deleted["deleteTag"], true);
    let gone = app
        .ok(
            t,
            "query($id: UUID!) { tag(id: $id) { id } }",
            json!({"id": id}),
        )
        .await;
    assert!(gone["tag"].is_null());
}

#[tokio::test]
async fn tag_errors_are_clear() {
    let app = TestApp::spawn().await;
    let u = app.user("alice").await;
    let t = Some(u.token.as_str());
    app.ok(t, CREATE_TAG, json!({"i": {"name": "Hello World"}}))
        .await;
    let res = app
        .gql(t, CREATE_TAG, json!({"i": {"name": "hello_world"}}))
        .await;
    let (msg, code) = error_of(&res);
    assert_eq!(code, "CONFLICT");
    assert!(msg.contains("already exists"), "{msg}");
    let res = app.gql(t, CREATE_TAG, json!({"i": {"name": "!!!"}})).await;
    assert_eq!(
        error_of(&res).0,
        "Tag name must contain at least one alphanumeric character"
    );
    let res = app.gql(None, CREATE_TAG, json!({"i": {"name": "x"}})).await;
    assert_eq!(error_of(&res).1, "UNAUTHENTICATED");
    assert!(error_of(&res).0.starts_with("Authentication required"));
    let missing = json!({"id": uuid::Uuid::new_v4()});
    let res = app
        .gql(
            t,
            UPDATE_TAG,
            json!({"i": {"id": missing["id"], "name": "x"}}),
        )
        .await;
    assert_eq!(error_of(&res), ("Tag not found".into(), "NOT_FOUND".into()));
    let res = app
        .gql(t, "mutation($id: UUID!) { deleteTag(id: $id) }", missing)
        .await;
    assert_eq!(error_of(&res), ("Tag not found".into(), "NOT_FOUND".into()));
    let anon = app.ok(None, "{ tags { id } }", json!({})).await;
    assert_eq!(anon["tags"], json!([]));
}

const ADD_TAG: &str = "mutation($g: UUID!, $t: UUID!) { addTagToGeneration(generationId: $g, tagId: $t) { id name } }";
const REMOVE_TAG: &str =
    "mutation($g: UUID!, $t: UUID!) { removeTagFromGeneration(generationId: $g, tagId: $t) }";

#[tokio::test]
async fn tags_attach_to_generations() {
    let app = TestApp::spawn().await;
    let owner = app.user("owner").await;
    let editor = app.user("editor").await;
    let viewer = app.user("viewer").await;
    let stranger = app.user("stranger").await;
    let b = create(&app, &owner.token, json!({"title": "T"})).await["id"]
        .as_str()
        .unwrap()
        .to_string();
    app.ok(
        Some(&owner.token),
        ADD,
        json!({"b": b, "e": editor.email, "r": "EDITOR"}),
    )
    .await;
    app.ok(
        Some(&owner.token),
        ADD,
        json!({"b": b, "e": viewer.email, "r": "VIEWER"}),
    )
    .await;
    let g = GenerationFixture::completed_image(&b, &owner.id)
        .insert(&app)
        .await;
    let red = app
        .ok(
            Some(&owner.token),
            CREATE_TAG,
            json!({"i": {"name": "red"}}),
        )
        .await["createTag"]["id"]
        .clone();
    let blue = app
        .ok(
            Some(&owner.token),
            CREATE_TAG,
            json!({"i": {"name": "blue"}}),
        )
        .await["createTag"]["id"]
        .clone();

    app.ok(Some(&owner.token), ADD_TAG, json!({"g": g, "t": red}))
        .await;
    let again = app
        .ok(Some(&editor.token), ADD_TAG, json!({"g": g, "t": blue}))
        .await;
    assert_eq!(again["addTagToGeneration"]["name"], "blue");
    // Adding an existing link returns the tag.
    app.ok(Some(&owner.token), ADD_TAG, json!({"g": g, "t": red}))
        .await;
    let q = "query($id: UUID!) { generation(id: $id) { tags { name } } }";
    let data = app.ok(Some(&owner.token), q, json!({"id": g})).await;
    assert_eq!(
        data["generation"]["tags"],
        json!([{"name": "blue"}, {"name": "red"}])
    );

    let res = app
        .gql(Some(&viewer.token), ADD_TAG, json!({"g": g, "t": red}))
        .await;
    assert_eq!(error_of(&res).1, "FORBIDDEN");
    assert!(error_of(&res).0.contains("Permission denied"));
    let res = app
        .gql(Some(&stranger.token), ADD_TAG, json!({"g": g, "t": red}))
        .await;
    let (msg, _) = error_of(&res);
    assert!(msg.contains("denied") || msg.contains("not found"), "{msg}");

    let data = app
        .ok(Some(&owner.token), REMOVE_TAG, json!({"g": g, "t": blue}))
        .await;
    assert_eq!(data["removeTagFromGeneration"], true);
    let res = app
        .gql(Some(&owner.token), REMOVE_TAG, json!({"g": g, "t": blue}))
        .await;
    assert_eq!(
        error_of(&res).0,
        "Tag is not associated with this generation"
    );
    let data = app.ok(Some(&owner.token), q, json!({"id": g})).await;
    assert_eq!(data["generation"]["tags"], json!([{"name": "red"}]));
}
