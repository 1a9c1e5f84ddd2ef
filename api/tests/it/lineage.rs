//! Lineage: inputArtifacts, ancestry and descendants (contract §2.6), cycle-safe.

use serde_json::{json, Value};

use crate::{
    boards::create,
    util::{fixtures, fixtures::GenerationFixture, TestApp, TestUser},
};

fn link(id: &str, role: &str) -> Value {
    json!({"generation_id": id, "role": role, "artifact_type": "image"})
}

async fn gen(app: &TestApp, board: &str, user: &TestUser, inputs: Value) -> String {
    let mut fx = GenerationFixture::completed_image(board, &user.id);
    fx.input_artifacts = inputs;
    fx.insert(app).await
}

const ANCESTRY: &str = "query($id: UUID!, $d: Int = 25) { generation(id: $id) { ancestry(maxDepth: $d) {
  depth role generation { id } parents { depth role generation { id } parents { depth role generation { id } parents { depth generation { id } } } } } } }";
const DESCENDANTS: &str = "query($id: UUID!, $d: Int = 25) { generation(id: $id) { descendants(maxDepth: $d) {
  depth role generation { id } children { depth role generation { id } children { depth role generation { id } children { depth generation { id } } } } } } }";

#[tokio::test]
async fn a_chain_gives_nested_ancestry_and_descendants() {
    let app = TestApp::spawn().await;
    let u = app.user("alice").await;
    let b = create(&app, &u.token, json!({"title": "L"})).await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let a = gen(&app, &b, &u, json!([])).await;
    let bb = gen(&app, &b, &u, json!([link(&a, "image")])).await;
    let c = gen(&app, &b, &u, json!([link(&bb, "image_url")])).await;

    let data = app.ok(Some(&u.token), ANCESTRY, json!({"id": c})).await;
    let root = &data["generation"]["ancestry"];
    assert_eq!(root["depth"], 0);
    assert!(root["role"].is_null());
    assert_eq!(root["parents"][0]["generation"]["id"], bb.as_str());
    assert_eq!(root["parents"][0]["role"], "image_url");
    assert_eq!(root["parents"][0]["depth"], 1);
    assert_eq!(
        root["parents"][0]["parents"][0]["generation"]["id"],
        a.as_str()
    );
    assert_eq!(root["parents"][0]["parents"][0]["depth"], 2);

    let data = app.ok(Some(&u.token), DESCENDANTS, json!({"id": a})).await;
    let root = &data["generation"]["descendants"];
    assert_eq!(root["children"][0]["generation"]["id"], bb.as_str());
    assert_eq!(root["children"][0]["role"], "image");
    assert_eq!(
        root["children"][0]["children"][0]["generation"]["id"],
        c.as_str()
    );

    // maxDepth bounds both directions; 0 gives the root only.
    let data = app
        .ok(Some(&u.token), ANCESTRY, json!({"id": c, "d": 1}))
        .await;
    assert_eq!(
        data["generation"]["ancestry"]["parents"][0]["parents"],
        json!([])
    );
    let data = app
        .ok(Some(&u.token), DESCENDANTS, json!({"id": a, "d": 0}))
        .await;
    assert_eq!(data["generation"]["descendants"]["children"], json!([]));

    let data = app
        .ok(Some(&u.token), "query($id: UUID!) { generation(id: $id) { inputArtifacts { generationId role artifactType generation { id } } } }", json!({"id": bb}))
        .await;
    assert_eq!(
        data["generation"]["inputArtifacts"],
        json!([{"generationId": a, "role": "image", "artifactType": "IMAGE", "generation": {"id": a}}])
    );
}

#[tokio::test]
async fn cycles_in_stored_lineage_neither_crash_nor_loop() {
    let app = TestApp::spawn().await;
    let u = app.user("alice").await;
    let b = create(&app, &u.token, json!({"title": "L"})).await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let x = gen(&app, &b, &u, json!([])).await;
    let y = gen(&app, &b, &u, json!([link(&x, "input")])).await;
    // x <- y <- x: corrupt, cyclic data.
    fixtures::sql(&app, &format!(
        "UPDATE boards.generations SET input_artifacts = '[{{\"generation_id\": \"{y}\", \"role\": \"input\", \"artifact_type\": \"image\"}}, {{\"generation_id\": \"{x}\", \"role\": \"self\", \"artifact_type\": \"image\"}}]'::jsonb WHERE id = '{x}'"
    )).await;
    for q in [ANCESTRY, DESCENDANTS] {
        for id in [&x, &y] {
            let res = app.gql(Some(&u.token), q, json!({"id": id, "d": 25})).await;
            assert!(res.get("errors").is_none(), "{res}");
        }
    }
    let data = app
        .ok(Some(&u.token), ANCESTRY, json!({"id": x, "d": 25}))
        .await;
    let root = &data["generation"]["ancestry"];
    // The root never reappears among its own ancestors.
    assert_eq!(root["parents"].as_array().unwrap().len(), 1);
    assert_eq!(root["parents"][0]["generation"]["id"], y.as_str());
    assert_eq!(root["parents"][0]["parents"], json!([]));
}

#[tokio::test]
async fn diamonds_repeat_shared_ancestors_under_each_child() {
    let app = TestApp::spawn().await;
    let u = app.user("alice").await;
    let b = create(&app, &u.token, json!({"title": "L"})).await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let top = gen(&app, &b, &u, json!([])).await;
    let left = gen(&app, &b, &u, json!([link(&top, "a")])).await;
    let right = gen(&app, &b, &u, json!([link(&top, "b")])).await;
    let bottom = gen(&app, &b, &u, json!([link(&left, "l"), link(&right, "r")])).await;
    let data = app
        .ok(Some(&u.token), ANCESTRY, json!({"id": bottom}))
        .await;
    let parents = data["generation"]["ancestry"]["parents"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(parents.len(), 2);
    assert_eq!(parents[0]["generation"]["id"], left.as_str());
    assert_eq!(parents[1]["generation"]["id"], right.as_str());
    for p in &parents {
        assert_eq!(p["parents"][0]["generation"]["id"], top.as_str());
    }
    // Descendants: each generation once.
    let data = app
        .ok(Some(&u.token), DESCENDANTS, json!({"id": top}))
        .await;
    let text = data.to_string();
    assert_eq!(text.matches(&bottom).count(), 1, "{text}");
}

#[tokio::test]
async fn lineage_stays_in_the_callers_tenant_and_readable_boards() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice").await;
    let bob = app.user("bob").await;
    let secret = create(&app, &bob.token, json!({"title": "secret"})).await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let shared = create(
        &app,
        &alice.token,
        json!({"title": "pub", "isPublic": true}),
    )
    .await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let hidden = gen(&app, &secret, &bob, json!([])).await;
    let visible = gen(&app, &shared, &alice, json!([link(&hidden, "image")])).await;
    let data = app
        .ok(Some(&alice.token), ANCESTRY, json!({"id": visible}))
        .await;
    assert_eq!(data["generation"]["ancestry"]["parents"], json!([]));
    // The raw entry is still listed, but its generation reads as null.
    let data = app
        .ok(Some(&alice.token), "query($id: UUID!) { generation(id: $id) { inputArtifacts { generationId generation { id } } } }", json!({"id": visible}))
        .await;
    assert_eq!(
        data["generation"]["inputArtifacts"][0]["generationId"],
        hidden.as_str()
    );
    assert!(data["generation"]["inputArtifacts"][0]["generation"].is_null());
    // Bob can read both boards, so he sees the link.
    let data = app
        .ok(Some(&bob.token), ANCESTRY, json!({"id": visible}))
        .await;
    assert_eq!(
        data["generation"]["ancestry"]["parents"][0]["generation"]["id"],
        hidden.as_str()
    );
}

#[tokio::test]
async fn a_missing_input_generation_reads_as_null() {
    let app = TestApp::spawn().await;
    let u = app.user("alice").await;
    let b = create(&app, &u.token, json!({"title": "L"})).await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let gone = uuid::Uuid::new_v4().to_string();
    let g = gen(&app, &b, &u, json!([link(&gone, "image"), {"generation_id": "garbage", "role": "x", "artifact_type": "image"}])).await;
    let data = app
        .ok(Some(&u.token), "query($id: UUID!) { generation(id: $id) { inputArtifacts { generation { id } } ancestry { parents { depth } } } }", json!({"id": g}))
        .await;
    assert!(data["generation"]["inputArtifacts"][0]["generation"].is_null());
    assert_eq!(data["generation"]["ancestry"]["parents"], json!([]));
}
