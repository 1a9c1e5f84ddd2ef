//! The Boards client's board and member operations (contract §1.5), as it writes them
//! (fragments interpolated, `__typename` added by urql's cache).

use serde_json::json;

use crate::util::TestApp;

pub const USER_FRAGMENT: &str =
    "fragment UserFragment on User { __typename id email displayName avatarUrl createdAt }";
pub const BOARD_FRAGMENT: &str = "fragment BoardFragment on Board { __typename id tenantId ownerId title description isPublic settings metadata createdAt updatedAt generationCount }";
pub const GENERATION_FRAGMENT: &str = "fragment GenerationFragment on Generation { __typename id boardId userId generatorName artifactType status progress storageUrl thumbnailUrl inputParams outputMetadata errorMessage createdAt updatedAt completedAt }";

pub fn get_boards() -> String {
    format!(
        "query GetBoards($limit: Int, $offset: Int) {{ myBoards(limit: $limit, offset: $offset) {{ ...BoardFragment owner {{ ...UserFragment }} }} }} {BOARD_FRAGMENT} {USER_FRAGMENT}"
    )
}

pub fn get_board() -> String {
    format!(
        "query GetBoard($id: UUID!, $limit: Int, $offset: Int) {{ board(id: $id) {{ ...BoardFragment owner {{ ...UserFragment }} members {{ __typename id boardId userId role invitedBy joinedAt user {{ ...UserFragment }} inviter {{ ...UserFragment }} }} generations(limit: $limit, offset: $offset) {{ ...GenerationFragment }} }} }} {BOARD_FRAGMENT} {USER_FRAGMENT} {GENERATION_FRAGMENT}"
    )
}

pub fn create_board() -> String {
    format!("mutation CreateBoard($input: CreateBoardInput!) {{ createBoard(input: $input) {{ ...BoardFragment owner {{ ...UserFragment }} }} }} {BOARD_FRAGMENT} {USER_FRAGMENT}")
}

pub fn update_board() -> String {
    format!("mutation UpdateBoard($input: UpdateBoardInput!) {{ updateBoard(input: $input) {{ ...BoardFragment }} }} {BOARD_FRAGMENT}")
}

const DELETE_BOARD: &str =
    "mutation DeleteBoard($id: UUID!) { deleteBoard(id: $id) { __typename success } }";

pub fn add_board_member() -> String {
    format!("mutation AddBoardMember($boardId: UUID!, $email: String!, $role: BoardRole!) {{ addBoardMember(boardId: $boardId, email: $email, role: $role) {{ __typename id boardId userId role invitedBy joinedAt user {{ ...UserFragment }} }} }} {USER_FRAGMENT}")
}

const UPDATE_MEMBER_ROLE: &str = "mutation UpdateBoardMemberRole($id: UUID!, $role: BoardRole!) { updateBoardMemberRole(id: $id, role: $role) { __typename id role } }";
const REMOVE_MEMBER: &str =
    "mutation RemoveBoardMember($id: UUID!) { removeBoardMember(id: $id) { __typename success } }";

#[tokio::test]
async fn the_client_board_lifecycle_works_unchanged() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice").await;
    let bob = app.user("bob").await;
    let t = Some(alice.token.as_str());

    let created = app
        .ok(t, &create_board(), json!({"input": {"title": "Moodboard", "description": "ideas", "isPublic": false, "settings": {"layout": {"cols": 3}}}}))
        .await["createBoard"]
        .clone();
    assert_eq!(created["__typename"], "Board");
    assert_eq!(created["owner"]["id"], alice.id.as_str());
    assert_eq!(created["generationCount"], 0);
    let id = created["id"].as_str().unwrap();

    let list = app
        .ok(t, &get_boards(), json!({"limit": 50, "offset": 0}))
        .await;
    assert_eq!(list["myBoards"][0]["id"], id);
    assert_eq!(list["myBoards"][0]["owner"]["email"], alice.email.as_str());

    let updated = app
        .ok(t, &update_board(), json!({"input": {"id": id, "title": "Moodboard 2", "settings": {"layout": {"cols": 4}}}}))
        .await;
    assert_eq!(updated["updateBoard"]["title"], "Moodboard 2");
    assert_eq!(
        updated["updateBoard"]["settings"],
        json!({"layout": {"cols": 4}})
    );

    let member = app
        .ok(
            t,
            &add_board_member(),
            json!({"boardId": id, "email": bob.email, "role": "EDITOR"}),
        )
        .await["addBoardMember"]
        .clone();
    assert_eq!(member["__typename"], "BoardMember");
    assert_eq!(member["user"]["id"], bob.id.as_str());
    let member_id = member["id"].as_str().unwrap();

    let board = app
        .ok(
            t,
            &get_board(),
            json!({"id": id, "limit": 100, "offset": 0}),
        )
        .await["board"]
        .clone();
    assert_eq!(board["members"][0]["role"], "EDITOR");
    assert_eq!(board["members"][0]["inviter"]["id"], alice.id.as_str());
    assert_eq!(board["generations"], json!([]));

    let role = app
        .ok(
            t,
            UPDATE_MEMBER_ROLE,
            json!({"id": member_id, "role": "ADMIN"}),
        )
        .await;
    assert_eq!(
        role["updateBoardMemberRole"],
        json!({"__typename": "BoardMember", "id": member_id, "role": "ADMIN"})
    );

    let removed = app.ok(t, REMOVE_MEMBER, json!({"id": member_id})).await;
    assert_eq!(removed["removeBoardMember"]["success"], true);

    let deleted = app.ok(t, DELETE_BOARD, json!({"id": id})).await;
    assert_eq!(deleted["deleteBoard"]["success"], true);
    let gone = app
        .ok(
            t,
            &get_board(),
            json!({"id": id, "limit": 100, "offset": 0}),
        )
        .await;
    assert!(gone["board"].is_null());
}

#[tokio::test]
async fn get_current_user_validates_and_answers() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice").await;
    let q = format!("query GetCurrentUser {{ me {{ ...UserFragment }} }} {USER_FRAGMENT}");
    let data = app.ok(Some(&alice.token), &q, json!({})).await;
    assert_eq!(data["me"]["id"], alice.id.as_str());
}
