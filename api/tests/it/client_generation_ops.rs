//! The Boards client's generation, lineage, tag and generator operations (contract §1.5), as
//! it writes them (fragments interpolated, `__typename` added by urql's cache). `GetGeneration`
//! and `GetGenerations` are sent with the fragment definitions the client forgets (§1.6 item 0).

use serde_json::{json, Value};

use crate::{
    boards::create,
    client_ops::{BOARD_FRAGMENT, GENERATION_FRAGMENT, USER_FRAGMENT},
    util::{error_of, fixtures::GenerationFixture, TestApp},
};

const TAG_FRAGMENT: &str = "fragment TagFragment on Tag { __typename id tenantId name slug description metadata createdAt updatedAt }";
const ARTIFACT_LINEAGE_FRAGMENT: &str =
    "fragment ArtifactLineageFragment on ArtifactLineage { __typename generationId role artifactType }";
const ANCESTRY_NODE_FRAGMENT: &str = "fragment AncestryNodeFragment on AncestryNode { __typename depth role generation { ...GenerationFragment } parents { __typename depth role generation { ...GenerationFragment } } }";
const DESCENDANT_NODE_FRAGMENT: &str = "fragment DescendantNodeFragment on DescendantNode { __typename depth role generation { ...GenerationFragment } children { __typename depth role generation { ...GenerationFragment } } }";

pub fn create_generation() -> String {
    format!("mutation CreateGeneration($input: CreateGenerationInput!) {{ createGeneration(input: $input) {{ ...GenerationFragment }} }} {GENERATION_FRAGMENT}")
}

const CANCEL_GENERATION: &str =
    "mutation CancelGeneration($id: UUID!) { cancelGeneration(id: $id) { __typename id status } }";

pub fn retry_generation() -> String {
    format!("mutation RetryGeneration($id: UUID!) {{ retryGeneration(id: $id) {{ ...GenerationFragment }} }} {GENERATION_FRAGMENT}")
}

const DELETE_GENERATION: &str =
    "mutation DeleteGeneration($id: UUID!) { deleteGeneration(id: $id) }";

pub fn upload_artifact_from_url() -> String {
    format!("mutation UploadArtifactFromUrl($input: UploadArtifactInput!) {{ uploadArtifact(input: $input) {{ ...GenerationFragment }} }} {GENERATION_FRAGMENT}")
}

pub const GET_GENERATORS: &str = "query GetGenerators($artifactType: String) { generators(artifactType: $artifactType) { __typename name description artifactType inputSchema } }";

pub fn get_generation() -> String {
    format!("query GetGeneration($id: UUID!) {{ generation(id: $id) {{ ...GenerationFragment board {{ ...BoardFragment }} user {{ ...UserFragment }} }} }} {GENERATION_FRAGMENT} {BOARD_FRAGMENT} {USER_FRAGMENT}")
}

pub fn get_generations() -> String {
    format!("query GetGenerations($boardId: UUID, $limit: Int, $offset: Int) {{ generations(boardId: $boardId, limit: $limit, offset: $offset) {{ ...GenerationFragment board {{ __typename id title }} user {{ ...UserFragment }} }} }} {GENERATION_FRAGMENT} {USER_FRAGMENT}")
}

pub fn get_ancestry() -> String {
    format!("query GetAncestry($id: UUID!, $maxDepth: Int = 25) {{ generation(id: $id) {{ __typename ancestry(maxDepth: $maxDepth) {{ ...AncestryNodeFragment }} }} }} {GENERATION_FRAGMENT} {ANCESTRY_NODE_FRAGMENT}")
}

pub fn get_descendants() -> String {
    format!("query GetDescendants($id: UUID!, $maxDepth: Int = 25) {{ generation(id: $id) {{ __typename descendants(maxDepth: $maxDepth) {{ ...DescendantNodeFragment }} }} }} {GENERATION_FRAGMENT} {DESCENDANT_NODE_FRAGMENT}")
}

pub fn get_input_artifacts() -> String {
    format!("query GetInputArtifacts($id: UUID!) {{ generation(id: $id) {{ __typename inputArtifacts {{ ...ArtifactLineageFragment }} }} }} {ARTIFACT_LINEAGE_FRAGMENT}")
}

pub fn get_tags() -> String {
    format!("query GetTags($limit: Int, $offset: Int) {{ tags(limit: $limit, offset: $offset) {{ ...TagFragment }} }} {TAG_FRAGMENT}")
}

pub fn get_tag() -> String {
    format!("query GetTag($id: UUID!) {{ tag(id: $id) {{ ...TagFragment }} }} {TAG_FRAGMENT}")
}

pub fn get_tag_by_slug() -> String {
    format!("query GetTagBySlug($slug: String!) {{ tagBySlug(slug: $slug) {{ ...TagFragment }} }} {TAG_FRAGMENT}")
}

pub fn get_generation_tags() -> String {
    format!("query GetGenerationTags($id: UUID!) {{ generation(id: $id) {{ __typename tags {{ ...TagFragment }} }} }} {TAG_FRAGMENT}")
}

pub fn create_tag() -> String {
    format!("mutation CreateTag($input: CreateTagInput!) {{ createTag(input: $input) {{ ...TagFragment }} }} {TAG_FRAGMENT}")
}

pub fn update_tag() -> String {
    format!("mutation UpdateTag($input: UpdateTagInput!) {{ updateTag(input: $input) {{ ...TagFragment }} }} {TAG_FRAGMENT}")
}

const DELETE_TAG: &str = "mutation DeleteTag($id: UUID!) { deleteTag(id: $id) }";

pub fn add_tag_to_generation() -> String {
    format!("mutation AddTagToGeneration($generationId: UUID!, $tagId: UUID!) {{ addTagToGeneration(generationId: $generationId, tagId: $tagId) {{ ...TagFragment }} }} {TAG_FRAGMENT}")
}

const REMOVE_TAG_FROM_GENERATION: &str = "mutation RemoveTagFromGeneration($generationId: UUID!, $tagId: UUID!) { removeTagFromGeneration(generationId: $generationId, tagId: $tagId) }";

/// Every field of the client's `GenerationFragment`, with urql's `__typename`.
const GENERATION_FIELDS: [&str; 16] = [
    "__typename",
    "id",
    "boardId",
    "userId",
    "generatorName",
    "artifactType",
    "status",
    "progress",
    "storageUrl",
    "thumbnailUrl",
    "inputParams",
    "outputMetadata",
    "errorMessage",
    "createdAt",
    "updatedAt",
    "completedAt",
];

fn assert_generation_fragment(g: &Value) {
    let fields = g
        .as_object()
        .unwrap_or_else(|| panic!("not an object: {g}"));
    for f in GENERATION_FIELDS {
        assert!(fields.contains_key(f), "missing {f} in {g}");
    }
    assert_eq!(g["__typename"], "Generation");
}

fn names(list: &Value) -> Vec<&str> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|g| g["name"].as_str().unwrap())
        .collect()
}

async fn board(app: &TestApp, token: &str) -> String {
    create(app, token, json!({"title": "Client board"})).await["id"]
        .as_str()
        .unwrap()
        .to_string()
}

#[tokio::test]
async fn the_client_generation_lifecycle_works_unchanged() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice").await;
    let t = Some(alice.token.as_str());
    let b = board(&app, &alice.token).await;

    let created = app
        .ok(
            t,
            &create_generation(),
            json!({"input": {"boardId": b, "generatorName": "local-text", "artifactType": "TEXT", "inputParams": {"prompt": "hi"}}}),
        )
        .await["createGeneration"]
        .clone();
    assert_generation_fragment(&created);
    assert_eq!(created["status"], "PENDING");
    assert_eq!(created["progress"], 0.0);
    assert_eq!(created["boardId"], b.as_str());
    assert_eq!(created["userId"], alice.id.as_str());
    assert_eq!(created["generatorName"], "local-text");
    assert_eq!(created["artifactType"], "TEXT");
    assert_eq!(created["inputParams"], json!({"prompt": "hi"}));
    assert!(created["completedAt"].is_null() && created["storageUrl"].is_null());
    let id = created["id"].as_str().unwrap().to_string();

    let one = app.ok(t, &get_generation(), json!({"id": id})).await["generation"].clone();
    assert_generation_fragment(&one);
    assert_eq!(one["board"]["__typename"], "Board");
    assert_eq!(one["board"]["id"], b.as_str());
    assert_eq!(one["board"]["generationCount"], 1);
    assert_eq!(one["user"]["__typename"], "User");
    assert_eq!(one["user"]["id"], alice.id.as_str());
    assert_eq!(one["user"]["email"], alice.email.as_str());

    let list = app
        .ok(
            t,
            &get_generations(),
            json!({"boardId": b, "limit": 100, "offset": 0}),
        )
        .await["generations"]
        .clone();
    assert_eq!(list.as_array().unwrap().len(), 1);
    assert_generation_fragment(&list[0]);
    assert_eq!(list[0]["id"], id.as_str());
    assert_eq!(
        list[0]["board"],
        json!({"__typename": "Board", "id": b, "title": "Client board"})
    );
    assert_eq!(list[0]["user"]["id"], alice.id.as_str());

    let cancelled = app.ok(t, CANCEL_GENERATION, json!({"id": id})).await;
    assert_eq!(
        cancelled["cancelGeneration"],
        json!({"__typename": "Generation", "id": id, "status": "CANCELLED"})
    );

    let retried =
        app.ok(t, &retry_generation(), json!({"id": id})).await["retryGeneration"].clone();
    assert_generation_fragment(&retried);
    assert_ne!(retried["id"], id.as_str());
    assert_eq!(retried["status"], "PENDING");
    assert_eq!(retried["generatorName"], "local-text");
    assert_eq!(retried["inputParams"], json!({"prompt": "hi"}));
    let retried_id = retried["id"].as_str().unwrap().to_string();

    // Without boardId, the client's GetGenerations lists the caller's recent generations.
    let recent = app.ok(t, &get_generations(), json!({"limit": 10})).await["generations"].clone();
    let ids: Vec<&str> = recent
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [retried_id.as_str(), id.as_str()]);

    let deleted = app.ok(t, DELETE_GENERATION, json!({"id": id})).await;
    assert_eq!(deleted, json!({"deleteGeneration": true}));
    let gone = app.ok(t, &get_generation(), json!({"id": id})).await;
    assert!(gone["generation"].is_null());
    let list = app
        .ok(
            t,
            &get_generations(),
            json!({"boardId": b, "limit": 100, "offset": 0}),
        )
        .await;
    assert_eq!(list["generations"].as_array().unwrap().len(), 1);
}

/// The client's `uploadArtifact` document runs; a URL the SSRF guard refuses (loopback, not
/// allow-listed: refused before any connection) stores nothing. The successful import is in
/// `uploads.rs`, against a server on 127.0.0.1.
#[tokio::test]
async fn upload_artifact_from_url_answers_the_client_document() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice").await;
    let b = board(&app, &alice.token).await;
    let input = json!({"input": {"boardId": b, "artifactType": "IMAGE", "fileUrl": "http://127.0.0.1:9/cat.png", "originalFilename": "cat.png", "userDescription": "a cat"}});
    let res = app
        .gql(
            Some(&alice.token),
            &upload_artifact_from_url(),
            input.clone(),
        )
        .await;
    assert!(res["data"].is_null(), "{res}");
    let (message, code) = error_of(&res);
    assert_eq!(code, "BAD_USER_INPUT", "{res}");
    assert!(message.starts_with("URL not allowed"), "{res}");
    let res = app.gql(None, &upload_artifact_from_url(), input).await;
    assert_eq!(error_of(&res).1, "UNAUTHENTICATED", "{res}");
    // Nothing was stored.
    let data = app
        .ok(
            Some(&alice.token),
            &get_generations(),
            json!({"boardId": b}),
        )
        .await;
    assert_eq!(data["generations"], json!([]));
}

#[tokio::test]
async fn get_generators_answers_the_client_query() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice").await;
    for token in [None, Some(alice.token.as_str())] {
        let all = app.ok(token, GET_GENERATORS, json!({})).await;
        let all_names = names(&all["generators"]);
        assert!(all_names.contains(&"local-image"), "{all}");
        assert!(all_names.contains(&"local-text"), "{all}");
        for g in all["generators"].as_array().unwrap() {
            assert_eq!(g["__typename"], "GeneratorInfo");
            assert!(g["description"].is_string(), "{g}");
            assert!(g["inputSchema"]["properties"].is_object(), "{g}");
        }
        let unfiltered = app
            .ok(token, GET_GENERATORS, json!({"artifactType": null}))
            .await;
        assert_eq!(unfiltered, all);

        let images = app
            .ok(token, GET_GENERATORS, json!({"artifactType": "image"}))
            .await;
        let image_names = names(&images["generators"]);
        assert!(image_names.contains(&"local-image"), "{images}");
        assert!(image_names.contains(&"local-image-filter"), "{images}");
        assert!(!image_names.contains(&"local-text"), "{images}");
        for g in images["generators"].as_array().unwrap() {
            assert_eq!(g["artifactType"], "IMAGE", "{g}");
        }
        let local_image = images["generators"]
            .as_array()
            .unwrap()
            .iter()
            .find(|g| g["name"] == "local-image")
            .unwrap();
        assert!(
            local_image["inputSchema"]["properties"]["prompt"].is_object(),
            "{local_image}"
        );
        let filter = images["generators"]
            .as_array()
            .unwrap()
            .iter()
            .find(|g| g["name"] == "local-image-filter")
            .unwrap();
        assert_eq!(
            filter["inputSchema"]["properties"]["image"]["$ref"],
            "#/$defs/ImageArtifact"
        );

        // The client's ArtifactType values are upper-case; the filter is the lower-case type.
        let upper = app
            .ok(token, GET_GENERATORS, json!({"artifactType": "IMAGE"}))
            .await;
        assert_eq!(upper["generators"], json!([]));
    }
}

#[tokio::test]
async fn the_client_lineage_queries_work_unchanged() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice").await;
    let t = Some(alice.token.as_str());
    let b = board(&app, &alice.token).await;
    let a = GenerationFixture::completed_image(&b, &alice.id)
        .insert(&app)
        .await;
    let mut fx = GenerationFixture::completed_image(&b, &alice.id);
    fx.input_artifacts = json!([{"generation_id": a, "role": "image", "artifact_type": "image"}]);
    let child = fx.insert(&app).await;

    // Without maxDepth the variable's default (25) applies.
    let data = app.ok(t, &get_ancestry(), json!({"id": child})).await;
    assert_eq!(data["generation"]["__typename"], "Generation");
    let root = &data["generation"]["ancestry"];
    assert_eq!(root["__typename"], "AncestryNode");
    assert_eq!(root["depth"], 0);
    assert!(root["role"].is_null());
    assert_generation_fragment(&root["generation"]);
    assert_eq!(root["generation"]["id"], child.as_str());
    let parents = root["parents"].as_array().unwrap();
    assert_eq!(parents.len(), 1);
    assert_eq!(parents[0]["__typename"], "AncestryNode");
    assert_eq!(parents[0]["depth"], 1);
    assert_eq!(parents[0]["role"], "image");
    assert_generation_fragment(&parents[0]["generation"]);
    assert_eq!(parents[0]["generation"]["id"], a.as_str());
    assert_eq!(parents[0]["generation"]["status"], "COMPLETED");
    assert_eq!(parents[0]["generation"]["artifactType"], "IMAGE");
    assert_eq!(
        parents[0]["generation"]["storageUrl"],
        "http://localhost/x.png"
    );
    let data = app
        .ok(t, &get_ancestry(), json!({"id": child, "maxDepth": 0}))
        .await;
    assert_eq!(data["generation"]["ancestry"]["parents"], json!([]));
    let data = app.ok(t, &get_ancestry(), json!({"id": a})).await;
    assert_eq!(data["generation"]["ancestry"]["parents"], json!([]));

    let data = app.ok(t, &get_descendants(), json!({"id": a})).await;
    let root = &data["generation"]["descendants"];
    assert_eq!(root["__typename"], "DescendantNode");
    assert_eq!(root["depth"], 0);
    assert!(root["role"].is_null());
    assert_eq!(root["generation"]["id"], a.as_str());
    let children = root["children"].as_array().unwrap();
    assert_eq!(children.len(), 1);
    assert_eq!(children[0]["__typename"], "DescendantNode");
    assert_eq!(children[0]["depth"], 1);
    assert_eq!(children[0]["role"], "image");
    assert_generation_fragment(&children[0]["generation"]);
    assert_eq!(children[0]["generation"]["id"], child.as_str());
    let data = app
        .ok(t, &get_descendants(), json!({"id": a, "maxDepth": 1}))
        .await;
    assert_eq!(
        data["generation"]["descendants"]["children"][0]["generation"]["id"],
        child.as_str()
    );
    let data = app.ok(t, &get_descendants(), json!({"id": child})).await;
    assert_eq!(data["generation"]["descendants"]["children"], json!([]));

    let data = app
        .ok(t, &get_input_artifacts(), json!({"id": child}))
        .await;
    assert_eq!(
        data["generation"],
        json!({"__typename": "Generation", "inputArtifacts": [
            {"__typename": "ArtifactLineage", "generationId": a, "role": "image", "artifactType": "IMAGE"}
        ]})
    );
    let data = app.ok(t, &get_input_artifacts(), json!({"id": a})).await;
    assert_eq!(data["generation"]["inputArtifacts"], json!([]));

    // An unknown generation reads as null for every lineage query.
    let missing = json!({"id": uuid::Uuid::new_v4()});
    for q in [get_ancestry(), get_descendants(), get_input_artifacts()] {
        let data = app.ok(t, &q, missing.clone()).await;
        assert!(data["generation"].is_null(), "{q}");
    }
}

#[tokio::test]
async fn the_client_tag_operations_work_unchanged() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice").await;
    let t = Some(alice.token.as_str());
    let b = board(&app, &alice.token).await;
    let g = GenerationFixture::completed_image(&b, &alice.id)
        .insert(&app)
        .await;

    let tag = app
        .ok(
            t,
            &create_tag(),
            json!({"input": {"name": "Model Photo", "description": "portraits", "metadata": {"color": "#f00"}}}),
        )
        .await["createTag"]
        .clone();
    assert_eq!(tag["__typename"], "Tag");
    assert_eq!(tag["name"], "Model Photo");
    assert_eq!(tag["slug"], "model-photo");
    assert_eq!(tag["description"], "portraits");
    assert_eq!(tag["metadata"], json!({"color": "#f00"}));
    assert!(tag["tenantId"].is_string() && tag["createdAt"].is_string());
    assert!(tag["updatedAt"].is_string());
    let id = tag["id"].as_str().unwrap().to_string();
    let other = app
        .ok(t, &create_tag(), json!({"input": {"name": "Another"}}))
        .await["createTag"]
        .clone();
    assert_eq!(other["metadata"], json!({}));
    assert!(other["description"].is_null());

    for vars in [json!({"limit": 100, "offset": 0}), json!({})] {
        let list = app.ok(t, &get_tags(), vars).await;
        assert_eq!(list["tags"], json!([other.clone(), tag.clone()]));
    }
    let page = app
        .ok(t, &get_tags(), json!({"limit": 1, "offset": 1}))
        .await;
    assert_eq!(page["tags"], json!([tag.clone()]));
    let one = app.ok(t, &get_tag(), json!({"id": id})).await;
    assert_eq!(one["tag"], tag);
    let by_slug = app
        .ok(t, &get_tag_by_slug(), json!({"slug": "model-photo"}))
        .await;
    assert_eq!(by_slug["tagBySlug"], tag);
    let none = app.ok(t, &get_tag_by_slug(), json!({"slug": "nope"})).await;
    assert!(none["tagBySlug"].is_null());

    let updated = app
        .ok(
            t,
            &update_tag(),
            json!({"input": {"id": id, "name": "Model Photos", "metadata": {"color": "#0f0"}}}),
        )
        .await["updateTag"]
        .clone();
    assert_eq!(updated["__typename"], "Tag");
    assert_eq!(updated["slug"], "model-photos");
    assert_eq!(updated["description"], "portraits");
    assert_eq!(updated["metadata"], json!({"color": "#0f0"}));

    let added = app
        .ok(
            t,
            &add_tag_to_generation(),
            json!({"generationId": g, "tagId": id}),
        )
        .await;
    assert_eq!(added["addTagToGeneration"], updated);
    app.ok(
        t,
        &add_tag_to_generation(),
        json!({"generationId": g, "tagId": other["id"]}),
    )
    .await;
    let tags = app.ok(t, &get_generation_tags(), json!({"id": g})).await;
    assert_eq!(tags["generation"]["__typename"], "Generation");
    assert_eq!(
        tags["generation"]["tags"],
        json!([other.clone(), updated.clone()])
    );

    let removed = app
        .ok(
            t,
            REMOVE_TAG_FROM_GENERATION,
            json!({"generationId": g, "tagId": id}),
        )
        .await;
    assert_eq!(removed, json!({"removeTagFromGeneration": true}));
    let tags = app.ok(t, &get_generation_tags(), json!({"id": g})).await;
    assert_eq!(tags["generation"]["tags"], json!([other.clone()]));

    let deleted = app.ok(t, DELETE_TAG, json!({"id": other["id"]})).await;
    assert_eq!(deleted, json!({"deleteTag": true}));
    let gone = app.ok(t, &get_tag(), json!({"id": other["id"]})).await;
    assert!(gone["tag"].is_null());
    // Deleting a tag unlinks it from its generations.
    let tags = app.ok(t, &get_generation_tags(), json!({"id": g})).await;
    assert_eq!(tags["generation"]["tags"], json!([]));
}
