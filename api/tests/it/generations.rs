//! Generations (contract §2.2, §2.4, §2.5, §5).

use serde_json::{json, Value};

use crate::{
    boards::create,
    members::ADD,
    util::{error_of, fixtures, fixtures::GenerationFixture, TestApp, TestUser},
};

pub const CREATE_GEN: &str = "mutation($input: CreateGenerationInput!) {
  createGeneration(input: $input) { id boardId userId generatorName artifactType status progress inputParams outputMetadata storageUrl errorMessage completedAt startedAt tenantId }
}";

pub async fn create_text(app: &TestApp, user: &TestUser, board: &str, prompt: &str) -> Value {
    app.ok(
        Some(&user.token),
        CREATE_GEN,
        json!({"input": {"boardId": board, "generatorName": "local-text", "artifactType": "TEXT", "inputParams": {"prompt": prompt}}}),
    )
    .await["createGeneration"]
        .clone()
}

async fn board(app: &TestApp, user: &TestUser) -> String {
    create(app, &user.token, json!({"title": "G"})).await["id"]
        .as_str()
        .unwrap()
        .to_string()
}

#[tokio::test]
async fn create_generation_queues_a_pending_job_in_the_same_transaction() {
    let app = TestApp::spawn_with(crate::util::Options::default().no_broker()).await;
    let alice = app.user("alice").await;
    let b = board(&app, &alice).await;
    let g = create_text(&app, &alice, &b, "hello").await;
    assert_eq!(g["status"], "PENDING");
    assert_eq!(g["progress"], 0.0);
    assert_eq!(g["artifactType"], "TEXT");
    assert_eq!(g["generatorName"], "local-text");
    assert_eq!(g["userId"], alice.id.as_str());
    assert_eq!(g["inputParams"], json!({"prompt": "hello"}));
    assert_eq!(g["outputMetadata"], json!({}));
    assert!(g["completedAt"].is_null() && g["startedAt"].is_null());
    assert_eq!(
        fixtures::outbox_count(&app, g["id"].as_str().unwrap()).await,
        1
    );
}

#[tokio::test]
async fn create_generation_reports_bad_input_clearly() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice").await;
    let b = board(&app, &alice).await;
    let run = |generator: &'static str, kind: &'static str, params: Value| {
        let (app, token, b) = (&app, alice.token.clone(), b.clone());
        async move {
            app.gql(
                Some(&token),
                CREATE_GEN,
                json!({"input": {"boardId": b, "generatorName": generator, "artifactType": kind, "inputParams": params}}),
            )
            .await
        }
    };
    let res = run("nope", "TEXT", json!({"prompt": "x"})).await;
    assert_eq!(
        error_of(&res),
        ("Unknown generator: nope".into(), "BAD_USER_INPUT".into())
    );
    let res = run("local-text", "IMAGE", json!({"prompt": "x"})).await;
    assert_eq!(error_of(&res).1, "BAD_USER_INPUT");
    assert!(
        error_of(&res).0.contains("produces text artifacts"),
        "{res}"
    );
    let res = run(
        "local-image",
        "IMAGE",
        json!({"width": 9999, "style": "cubist"}),
    )
    .await;
    let (msg, code) = error_of(&res);
    assert_eq!(code, "BAD_USER_INPUT");
    assert!(msg.starts_with("Invalid input parameters:"), "{msg}");
    assert!(msg.contains("prompt: is required"), "{msg}");
    assert!(msg.contains("width: must be at most 2048"), "{msg}");
    assert!(msg.contains("style: must be one of"), "{msg}");
    let res = run("local-image-filter", "IMAGE", json!({"image": "not-an-id"})).await;
    assert!(
        error_of(&res).0.contains("image: expected a generation id"),
        "{res}"
    );
    let res = run("local-text", "TEXT", json!(["not", "an", "object"])).await;
    assert_eq!(error_of(&res).1, "BAD_USER_INPUT");
    // Nothing was queued for refused requests.
    let data = app
        .ok(
            Some(&alice.token),
            "query($b: UUID!) { board(id: $b) { generationCount } }",
            json!({"b": b}),
        )
        .await;
    assert_eq!(data["board"]["generationCount"], 0);
}

#[tokio::test]
async fn creating_on_a_missing_board_is_not_found() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice").await;
    let res = app
        .gql(
            Some(&alice.token),
            CREATE_GEN,
            json!({"input": {"boardId": uuid::Uuid::new_v4(), "generatorName": "local-text", "artifactType": "TEXT", "inputParams": {"prompt": "x"}}}),
        )
        .await;
    assert_eq!(
        error_of(&res),
        ("Board not found".into(), "NOT_FOUND".into())
    );
}

#[tokio::test]
async fn regenerate_and_retry_copy_the_original_for_the_caller() {
    let app = TestApp::spawn_with(crate::util::Options::default().no_broker()).await;
    let alice = app.user("alice").await;
    let bob = app.user("bob").await;
    let b = board(&app, &alice).await;
    app.ok(
        Some(&alice.token),
        ADD,
        json!({"b": b, "e": bob.email, "r": "EDITOR"}),
    )
    .await;
    let original = create_text(&app, &alice, &b, "again").await;
    for field in ["regenerate", "retryGeneration"] {
        let q = format!("mutation($id: UUID!) {{ {field}(id: $id) {{ id status userId inputParams generatorName }} }}");
        let data = app
            .ok(Some(&bob.token), &q, json!({"id": original["id"]}))
            .await;
        let copy = &data[field];
        assert_ne!(copy["id"], original["id"]);
        assert_eq!(copy["status"], "PENDING");
        assert_eq!(copy["userId"], bob.id.as_str());
        assert_eq!(copy["inputParams"], json!({"prompt": "again"}));
        assert_eq!(
            fixtures::outbox_count(&app, copy["id"].as_str().unwrap()).await,
            1
        );
    }
    let res = app
        .gql(
            Some(&alice.token),
            "mutation($id: UUID!) { regenerate(id: $id) { id } }",
            json!({"id": uuid::Uuid::new_v4()}),
        )
        .await;
    assert_eq!(
        error_of(&res),
        ("Original generation not found".into(), "NOT_FOUND".into())
    );
}

#[tokio::test]
async fn regenerating_with_a_removed_generator_is_refused() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice").await;
    let b = board(&app, &alice).await;
    let mut fx = GenerationFixture::completed_image(&b, &alice.id);
    fx.generator = "retired-generator";
    let id = fx.insert(&app).await;
    let res = app
        .gql(
            Some(&alice.token),
            "mutation($id: UUID!) { regenerate(id: $id) { id } }",
            json!({"id": id}),
        )
        .await;
    assert_eq!(
        error_of(&res).0,
        "Generator 'retired-generator' is no longer available"
    );
}

const CANCEL: &str =
    "mutation($id: UUID!) { cancelGeneration(id: $id) { id status errorMessage completedAt } }";

#[tokio::test]
async fn cancel_only_moves_pending_or_processing_generations() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice").await;
    let b = board(&app, &alice).await;
    let g = create_text(&app, &alice, &b, "x").await;
    let data = app
        .ok(Some(&alice.token), CANCEL, json!({"id": g["id"]}))
        .await;
    assert_eq!(data["cancelGeneration"]["status"], "CANCELLED");
    assert_eq!(
        data["cancelGeneration"]["errorMessage"],
        "Cancelled by user"
    );
    assert!(data["cancelGeneration"]["completedAt"].is_string());
    let res = app
        .gql(Some(&alice.token), CANCEL, json!({"id": g["id"]}))
        .await;
    let (msg, code) = error_of(&res);
    assert_eq!(code, "CONFLICT");
    assert_eq!(
        msg,
        "Cannot cancel generation with status 'cancelled'. Only pending or processing generations can be cancelled."
    );
    let done = GenerationFixture::completed_image(&b, &alice.id)
        .insert(&app)
        .await;
    let res = app
        .gql(Some(&alice.token), CANCEL, json!({"id": done}))
        .await;
    assert!(error_of(&res).0.contains("status 'completed'"), "{res}");
    let res = app
        .gql(
            Some(&alice.token),
            CANCEL,
            json!({"id": uuid::Uuid::new_v4()}),
        )
        .await;
    assert_eq!(
        error_of(&res),
        ("Generation not found".into(), "NOT_FOUND".into())
    );
}

const DELETE: &str = "mutation($id: UUID!) { deleteGeneration(id: $id) }";

#[tokio::test]
async fn delete_generation_follows_the_original_rules() {
    let app = TestApp::spawn().await;
    let owner = app.user("owner").await;
    let editor = app.user("editor").await;
    let stranger = app.user("stranger").await;
    let b = board(&app, &owner).await;
    app.ok(
        Some(&owner.token),
        ADD,
        json!({"b": b, "e": editor.email, "r": "EDITOR"}),
    )
    .await;
    let owners = create_text(&app, &owner, &b, "o").await;
    let editors = create_text(&app, &editor, &b, "e").await;

    // An editor may not delete the owner's generation; a stranger, who cannot even read the
    // private board, is told it does not exist.
    let res = app
        .gql(Some(&editor.token), DELETE, json!({"id": owners["id"]}))
        .await;
    let (msg, code) = error_of(&res);
    assert_eq!(code, "FORBIDDEN");
    assert!(msg.starts_with("Permission denied"), "{msg}");
    let res = app
        .gql(Some(&stranger.token), DELETE, json!({"id": editors["id"]}))
        .await;
    assert_eq!(
        error_of(&res),
        ("Generation not found".into(), "NOT_FOUND".into())
    );
    // The editor deletes their own; the owner deletes any.
    let data = app
        .ok(Some(&editor.token), DELETE, json!({"id": editors["id"]}))
        .await;
    assert_eq!(data["deleteGeneration"], true);
    let data = app
        .ok(Some(&owner.token), DELETE, json!({"id": owners["id"]}))
        .await;
    assert_eq!(data["deleteGeneration"], true);
    let data = app
        .ok(
            Some(&owner.token),
            "query($id: UUID!) { generation(id: $id) { id } }",
            json!({"id": owners["id"]}),
        )
        .await;
    assert!(data["generation"].is_null());
}

#[tokio::test]
async fn board_generations_are_newest_first_with_stored_values() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice").await;
    let b = board(&app, &alice).await;
    let mut ids = vec![];
    for i in 0..5 {
        let mut fx = GenerationFixture::completed_image(&b, &alice.id);
        fx.progress = 1.0;
        let params = json!({"prompt": format!("p{i}"), "nested": {"list": [i, null, true]}});
        fx.input_params = params;
        fx.output_metadata = json!({"format": "png", "width": 10 + i});
        ids.push(fx.insert(&app).await);
    }
    let q = "query($b: UUID!, $limit: Int, $offset: Int) { board(id: $b) {
        generationCount generations(limit: $limit, offset: $offset) { id status artifactType progress inputParams outputMetadata } } }";
    let data = app.ok(Some(&alice.token), q, json!({"b": b})).await;
    let list = data["board"]["generations"].as_array().unwrap();
    assert_eq!(data["board"]["generationCount"], 5);
    let got: Vec<&str> = list.iter().map(|g| g["id"].as_str().unwrap()).collect();
    let mut expected: Vec<&str> = ids.iter().map(String::as_str).rev().collect();
    expected.truncate(5);
    assert_eq!(got, expected);
    assert_eq!(list[0]["status"], "COMPLETED");
    assert_eq!(list[0]["artifactType"], "IMAGE");
    assert_eq!(list[0]["progress"], 1.0);
    assert_eq!(
        list[0]["inputParams"]["nested"],
        json!({"list": [4, null, true]})
    );
    assert_eq!(
        list[0]["outputMetadata"],
        json!({"format": "png", "width": 14})
    );
    let data = app
        .ok(
            Some(&alice.token),
            q,
            json!({"b": b, "limit": 2, "offset": 1}),
        )
        .await;
    let page: Vec<&str> = data["board"]["generations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["id"].as_str().unwrap())
        .collect();
    assert_eq!(page, vec![ids[3].as_str(), ids[2].as_str()]);
}

#[tokio::test]
async fn recent_generations_filter_and_respect_visibility() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice").await;
    let bob = app.user("bob").await;
    let mine = board(&app, &alice).await;
    let public = create(&app, &bob.token, json!({"title": "pub", "isPublic": true})).await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let private = board(&app, &bob).await;
    create_text(&app, &alice, &mine, "a").await;
    GenerationFixture::completed_image(&mine, &alice.id)
        .insert(&app)
        .await;
    GenerationFixture::completed_image(&public, &bob.id)
        .insert(&app)
        .await;
    GenerationFixture::completed_image(&private, &bob.id)
        .insert(&app)
        .await;
    let q = "query($b: UUID, $s: GenerationStatus, $t: ArtifactType) {
        recentGenerations(boardId: $b, status: $s, artifactType: $t) { boardId status artifactType } }";
    let all = app.ok(Some(&alice.token), q, json!({})).await;
    assert_eq!(all["recentGenerations"].as_array().unwrap().len(), 3);
    let done = app
        .ok(Some(&alice.token), q, json!({"s": "COMPLETED"}))
        .await;
    assert_eq!(done["recentGenerations"].as_array().unwrap().len(), 2);
    let text = app.ok(Some(&alice.token), q, json!({"t": "TEXT"})).await;
    assert_eq!(text["recentGenerations"].as_array().unwrap().len(), 1);
    let one_board = app.ok(Some(&alice.token), q, json!({"b": public})).await;
    assert_eq!(one_board["recentGenerations"].as_array().unwrap().len(), 1);
    let hidden = app.ok(Some(&alice.token), q, json!({"b": private})).await;
    assert_eq!(hidden["recentGenerations"], json!([]));
    let anonymous = app.ok(None, q, json!({})).await;
    assert_eq!(anonymous["recentGenerations"], json!([]));
}

#[tokio::test]
async fn generation_output_fields_round_trip() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice").await;
    let b = board(&app, &alice).await;
    let mut fx = GenerationFixture::completed_image(&b, &alice.id);
    fx.output_metadata = json!({"format": "png", "width": 64, "height": 32, "generation_id": "x"});
    let id = fx.insert(&app).await;
    fixtures::sql(&app, &format!(
        "UPDATE boards.generations SET additional_files = '[{{\"url\": \"http://f/1\", \"type\": \"thumb\", \"metadata\": {{\"w\": 1}}}}, 7]'::jsonb, external_job_id = 'ext-1' WHERE id = '{id}'"
    )).await;
    let q = "query($id: UUID!) { generation(id: $id) { storageUrl outputMetadata additionalFiles { url type metadata } externalJobId user { id } board { id } } }";
    let data = app.ok(Some(&alice.token), q, json!({"id": id})).await;
    let g = &data["generation"];
    assert_eq!(g["storageUrl"], "http://localhost/x.png");
    assert_eq!(g["outputMetadata"]["height"], 32);
    assert_eq!(
        g["additionalFiles"],
        json!([{"url": "http://f/1", "type": "thumb", "metadata": {"w": 1}}])
    );
    assert_eq!(g["externalJobId"], "ext-1");
    assert_eq!(g["user"]["id"], alice.id.as_str());
    assert_eq!(g["board"]["id"], b.as_str());
}

#[tokio::test]
async fn unknown_stored_enum_values_fail_only_their_field() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice").await;
    let b = board(&app, &alice).await;
    let mut fx = GenerationFixture::completed_image(&b, &alice.id);
    fx.artifact_type = "hologram";
    let id = fx.insert(&app).await;
    let res = app
        .gql(
            Some(&alice.token),
            "query($id: UUID!) { generation(id: $id) { id artifactType } }",
            json!({"id": id}),
        )
        .await;
    assert!(res["data"]["generation"].is_null(), "{res}");
    assert_eq!(error_of(&res).1, "INTERNAL_SERVER_ERROR");
    assert!(
        !res.to_string().contains("hologram"),
        "internal details leaked: {res}"
    );
}

#[tokio::test]
async fn generators_are_listed_with_their_schemas() {
    let app = TestApp::spawn().await;
    let q = "query($t: String) { generators(artifactType: $t) { name description artifactType inputSchema } }";
    let all = app.ok(None, q, json!({})).await;
    let names: Vec<&str> = all["generators"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names[..5],
        [
            "local-image",
            "local-image-filter",
            "local-audio",
            "local-text",
            "local-echo"
        ]
    );
    // Then the provider models of the original's baseline, in catalogue order.
    assert_eq!(names.len(), 5 + 93);
    assert_eq!(names[5], "fal-bria-background-remove");
    let images = app.ok(None, q, json!({"t": "image"})).await;
    let registry = boards_shared::generators::Registry::builtin();
    assert_eq!(
        images["generators"].as_array().unwrap().len(),
        registry.list(Some("image")).count()
    );
    let upper = app.ok(None, q, json!({"t": "IMAGE"})).await;
    assert_eq!(upper["generators"], json!([]));
    let filter = &images["generators"][1];
    assert_eq!(filter["artifactType"], "IMAGE");
    assert_eq!(
        filter["inputSchema"]["properties"]["image"]["$ref"],
        "#/$defs/ImageArtifact"
    );
    assert!(filter["inputSchema"]["$defs"]["ImageArtifact"].is_object());
}

#[tokio::test]
async fn a_generators_yaml_chooses_names_and_order() {
    let dir = std::env::temp_dir().join(format!("boards-gen-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("generators.yaml");
    std::fs::write(&path, "strict_mode: true\ngenerators:\n  - id: local-text\n    name: writer\n  - id: local-image\n").unwrap();
    let app = TestApp::spawn_with(
        crate::util::Options::default()
            .env("BOARDS_GENERATORS_CONFIG_PATH", path.to_str().unwrap()),
    )
    .await;
    let data = app.ok(None, "{ generators { name } }", json!({})).await;
    assert_eq!(
        data["generators"],
        json!([{"name": "writer"}, {"name": "local-image"}])
    );
    let alice = app.user("alice").await;
    let b = board(&app, &alice).await;
    let res = app
        .gql(
            Some(&alice.token),
            CREATE_GEN,
            json!({"input": {"boardId": b, "generatorName": "local-text", "artifactType": "TEXT", "inputParams": {"prompt": "x"}}}),
        )
        .await;
    assert_eq!(error_of(&res).0, "Unknown generator: local-text");
}

#[tokio::test]
async fn generation_lists_answer_the_same_on_the_fast_and_the_async_path() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice").await;
    let b = board(&app, &alice).await;
    for _ in 0..3 {
        GenerationFixture::completed_image(&b, &alice.id)
            .insert(&app)
            .await;
    }
    create_text(&app, &alice, &b, "pending one").await;
    let fields = "__typename id boardId userId generatorName artifactType status progress storageUrl thumbnailUrl additionalFiles { url } inputParams outputMetadata errorMessage createdAt updatedAt completedAt startedAt externalJobId tenantId";
    let fast = format!("query($b: UUID!) {{ board(id: $b) {{ generations {{ ...F }} }} recentGenerations {{ ...F }} }} fragment F on Generation {{ {fields} }}");
    let slow = format!("query($b: UUID!) {{ board(id: $b) {{ generations {{ ...F user {{ id }} }} }} recentGenerations {{ ...F tags {{ id }} }} }} fragment F on Generation {{ {fields} }}");
    let a = app.ok(Some(&alice.token), &fast, json!({"b": b})).await;
    let mut s = app.ok(Some(&alice.token), &slow, json!({"b": b})).await;
    for g in s["board"]["generations"].as_array_mut().unwrap() {
        g.as_object_mut().unwrap().remove("user");
    }
    for g in s["recentGenerations"].as_array_mut().unwrap() {
        g.as_object_mut().unwrap().remove("tags");
    }
    assert_eq!(a, s);
    assert_eq!(a["board"]["generations"].as_array().unwrap().len(), 4);

    // Plain columns only (with an alias and a repeated field) take the direct path.
    let columns = fields.replace(" additionalFiles { url }", "");
    let direct = format!("query($b: UUID!) {{ board(id: $b) {{ generations {{ ...F st: status id }} }} }} fragment F on Generation {{ {columns} }}");
    let viaasync = format!("query($b: UUID!) {{ board(id: $b) {{ generations {{ ...F st: status id user {{ id }} }} }} }} fragment F on Generation {{ {columns} }}");
    let d = app.ok(Some(&alice.token), &direct, json!({"b": b})).await;
    let mut v = app.ok(Some(&alice.token), &viaasync, json!({"b": b})).await;
    for g in v["board"]["generations"].as_array_mut().unwrap() {
        g.as_object_mut().unwrap().remove("user");
    }
    assert_eq!(d, v);
    let keys: Vec<&String> = d["board"]["generations"][0]
        .as_object()
        .unwrap()
        .keys()
        .collect();
    assert_eq!(keys[0], "__typename");
    assert_eq!(keys.last().unwrap().as_str(), "st");
}
