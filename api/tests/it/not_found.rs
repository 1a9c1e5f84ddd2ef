//! A mutation on something the caller may not even read answers exactly like one on an unknown
//! id (NOT_FOUND, same message), so an id on a private board reveals nothing; a caller who can
//! read but not change it still gets FORBIDDEN. One test per mutation family.

use serde_json::{json, Value};

use crate::{
    boards::create,
    members::{ADD, REMOVE, SET_ROLE},
    util::{error_of, fixtures::GenerationFixture, TestApp, TestUser},
};

struct Setup {
    app: TestApp,
    stranger: TestUser,
    /// (private board, public board)
    boards: (String, String),
    /// A membership on each board.
    members: (String, String),
    /// A pending generation on each board.
    generations: (String, String),
}

async fn setup() -> Setup {
    let app = TestApp::spawn().await;
    let owner = app.user("owner").await;
    let member = app.user("member").await;
    let stranger = app.user("stranger").await;
    let mut boards = vec![];
    let mut members = vec![];
    let mut generations = vec![];
    for public in [false, true] {
        let b = create(
            &app,
            &owner.token,
            json!({"title": "B", "isPublic": public}),
        )
        .await["id"]
            .as_str()
            .unwrap()
            .to_string();
        let m = app
            .ok(
                Some(&owner.token),
                ADD,
                json!({"b": b, "e": member.email, "r": "VIEWER"}),
            )
            .await["addBoardMember"]["id"]
            .as_str()
            .unwrap()
            .to_string();
        let mut fixture = GenerationFixture::completed_image(&b, &owner.id);
        fixture.status = "pending";
        generations.push(fixture.insert(&app).await);
        boards.push(b);
        members.push(m);
    }
    let pair = |v: &[String]| (v[0].clone(), v[1].clone());
    Setup {
        boards: pair(&boards),
        members: pair(&members),
        generations: pair(&generations),
        app,
        stranger,
    }
}

impl Setup {
    /// The stranger runs `query` with `id` set to the private thing, an unknown id and the
    /// public thing: the first two answer the same NOT_FOUND `message`, the third FORBIDDEN.
    async fn check(
        &self,
        query: &str,
        vars: impl Fn(&str) -> Value,
        ids: (&str, &str),
        message: &str,
    ) {
        let unknown = uuid::Uuid::new_v4().to_string();
        let token = Some(self.stranger.token.as_str());
        let private = self.app.gql(token, query, vars(ids.0)).await;
        let missing = self.app.gql(token, query, vars(&unknown)).await;
        assert_eq!(
            error_of(&private),
            (message.to_string(), "NOT_FOUND".to_string()),
            "{query}: {private}"
        );
        assert_eq!(error_of(&private), error_of(&missing), "{query}");
        let public = self.app.gql(token, query, vars(ids.1)).await;
        assert_eq!(error_of(&public).1, "FORBIDDEN", "{query}: {public}");
    }
}

#[tokio::test]
async fn board_mutations_hide_private_boards_from_those_who_cannot_read_them() {
    let s = setup().await;
    let boards = (s.boards.0.as_str(), s.boards.1.as_str());
    s.check(
        "mutation($i: UpdateBoardInput!) { updateBoard(input: $i) { id } }",
        |id| json!({"i": {"id": id, "title": "mine now"}}),
        boards,
        "Board not found",
    )
    .await;
    s.check(
        "mutation($id: UUID!) { deleteBoard(id: $id) { success } }",
        |id| json!({"id": id}),
        boards,
        "Board not found",
    )
    .await;
    s.check(
        ADD,
        |id| json!({"b": id, "e": "stranger@example.com", "r": "ADMIN"}),
        boards,
        "Board not found",
    )
    .await;
}

#[tokio::test]
async fn member_mutations_hide_memberships_of_private_boards() {
    let s = setup().await;
    let members = (s.members.0.as_str(), s.members.1.as_str());
    s.check(
        SET_ROLE,
        |id| json!({"id": id, "r": "ADMIN"}),
        members,
        "Board member not found",
    )
    .await;
    s.check(
        REMOVE,
        |id| json!({"id": id}),
        members,
        "Board member not found",
    )
    .await;
}

#[tokio::test]
async fn generation_mutations_hide_generations_of_private_boards() {
    let s = setup().await;
    let boards = (s.boards.0.as_str(), s.boards.1.as_str());
    s.check(
        "mutation($i: CreateGenerationInput!) { createGeneration(input: $i) { id } }",
        |id| json!({"i": {"boardId": id, "generatorName": "local-text", "artifactType": "TEXT", "inputParams": {"prompt": "p"}}}),
        boards,
        "Board not found",
    )
    .await;
    let generations = (s.generations.0.as_str(), s.generations.1.as_str());
    for field in ["regenerate", "retryGeneration"] {
        s.check(
            &format!("mutation($id: UUID!) {{ {field}(id: $id) {{ id }} }}"),
            |id| json!({"id": id}),
            generations,
            "Original generation not found",
        )
        .await;
    }
    s.check(
        "mutation($id: UUID!) { cancelGeneration(id: $id) { id } }",
        |id| json!({"id": id}),
        generations,
        "Generation not found",
    )
    .await;
    s.check(
        "mutation($id: UUID!) { deleteGeneration(id: $id) }",
        |id| json!({"id": id}),
        generations,
        "Generation not found",
    )
    .await;
}

#[tokio::test]
async fn tagging_hides_generations_of_private_boards() {
    let s = setup().await;
    let tag = s
        .app
        .ok(
            Some(&s.stranger.token),
            "mutation { createTag(input: {name: \"mine\"}) { id } }",
            json!({}),
        )
        .await["createTag"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let generations = (s.generations.0.as_str(), s.generations.1.as_str());
    for field in [
        "addTagToGeneration(generationId: $g, tagId: $t) { id }",
        "removeTagFromGeneration(generationId: $g, tagId: $t)",
    ] {
        s.check(
            &format!("mutation($g: UUID!, $t: UUID!) {{ {field} }}"),
            |id| json!({"g": id, "t": tag}),
            generations,
            "Generation not found",
        )
        .await;
    }
}
