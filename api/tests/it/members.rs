//! Board members in the Boards client's shapes (contract §1.6 items 2-4).

use serde_json::{json, Value};

use crate::{
    boards::create,
    util::{error_of, TestApp},
};

pub const ADD: &str = "mutation($b: UUID!, $e: String!, $r: BoardRole!) {
  addBoardMember(boardId: $b, email: $e, role: $r) {
    id boardId userId role invitedBy joinedAt
    user { id email displayName }
    inviter { id }
  }
}";
pub const SET_ROLE: &str =
    "mutation($id: UUID!, $r: BoardRole!) { updateBoardMemberRole(id: $id, role: $r) { id role } }";
pub const REMOVE: &str = "mutation($id: UUID!) { removeBoardMember(id: $id) { success } }";

const MEMBERS: &str = "query($id: UUID!) { board(id: $id) {
  owner { displayName }
  members { id role user { displayName } inviter { id } }
} }";

#[tokio::test]
async fn members_are_added_changed_and_removed() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice").await;
    let bob = app.user("bob").await;
    let board = create(&app, &alice.token, json!({"title": "B"})).await;
    let board_id = board["id"].as_str().unwrap();

    let added = app
        .ok(
            Some(&alice.token),
            ADD,
            json!({"b": board_id, "e": bob.email, "r": "EDITOR"}),
        )
        .await["addBoardMember"]
        .clone();
    assert_eq!(added["userId"], bob.id.as_str());
    assert_eq!(added["boardId"], board_id);
    assert_eq!(added["role"], "EDITOR");
    assert_eq!(added["invitedBy"], alice.id.as_str());
    assert_eq!(added["user"]["email"], bob.email.as_str());
    assert_eq!(added["inviter"]["id"], alice.id.as_str());
    let member_id = added["id"].as_str().unwrap();

    let data = app
        .ok(Some(&alice.token), MEMBERS, json!({"id": board_id}))
        .await;
    assert_eq!(data["board"]["owner"]["displayName"], "User alice");
    assert_eq!(data["board"]["members"].as_array().unwrap().len(), 1);
    assert_eq!(data["board"]["members"][0]["role"], "EDITOR");
    assert_eq!(
        data["board"]["members"][0]["user"]["displayName"],
        "User bob"
    );

    let data = app
        .ok(
            Some(&alice.token),
            SET_ROLE,
            json!({"id": member_id, "r": "ADMIN"}),
        )
        .await;
    assert_eq!(data["updateBoardMemberRole"]["role"], "ADMIN");

    let data = app
        .ok(Some(&alice.token), REMOVE, json!({"id": member_id}))
        .await;
    assert_eq!(data["removeBoardMember"]["success"], true);
    let data = app
        .ok(Some(&alice.token), MEMBERS, json!({"id": board_id}))
        .await;
    assert_eq!(data["board"]["members"], json!([]));
}

#[tokio::test]
async fn emails_match_case_insensitively() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice").await;
    let bob = app.user("bob").await;
    let board = create(&app, &alice.token, json!({"title": "B"})).await;
    let data = app
        .ok(
            Some(&alice.token),
            ADD,
            json!({"b": board["id"], "e": bob.email.to_uppercase(), "r": "VIEWER"}),
        )
        .await;
    assert_eq!(data["addBoardMember"]["userId"], bob.id.as_str());
}

#[tokio::test]
async fn adding_members_reports_clear_errors() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice").await;
    let bob = app.user("bob").await;
    let board = create(&app, &alice.token, json!({"title": "B"})).await;
    let add = |email: String| {
        let token = alice.token.clone();
        let id = board["id"].clone();
        let app = &app;
        async move {
            app.gql(
                Some(&token),
                ADD,
                json!({"b": id, "e": email, "r": "VIEWER"}),
            )
            .await
        }
    };
    let res = add("nobody@example.com".into()).await;
    let (msg, code) = error_of(&res);
    assert_eq!(code, "NOT_FOUND");
    assert!(msg.starts_with("User not found"), "{msg}");
    let res = add("not-an-email".into()).await;
    assert_eq!(error_of(&res).1, "BAD_USER_INPUT");
    let res = add(alice.email.clone()).await;
    assert_eq!(
        error_of(&res),
        ("User is already the board owner".into(), "CONFLICT".into())
    );
    add(bob.email.clone()).await;
    let res = add(bob.email.clone()).await;
    assert_eq!(
        error_of(&res),
        ("User is already a board member".into(), "CONFLICT".into())
    );
    let res = app
        .gql(
            Some(&alice.token),
            ADD,
            json!({"b": uuid::Uuid::new_v4(), "e": bob.email, "r": "VIEWER"}),
        )
        .await;
    assert_eq!(
        error_of(&res),
        ("Board not found".into(), "NOT_FOUND".into())
    );
}

#[tokio::test]
async fn unknown_memberships_are_not_found() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice").await;
    let id = uuid::Uuid::new_v4();
    let res = app
        .gql(
            Some(&alice.token),
            SET_ROLE,
            json!({"id": id, "r": "ADMIN"}),
        )
        .await;
    assert_eq!(
        error_of(&res),
        ("Board member not found".into(), "NOT_FOUND".into())
    );
    let res = app.gql(Some(&alice.token), REMOVE, json!({"id": id})).await;
    assert_eq!(
        error_of(&res),
        ("Board member not found".into(), "NOT_FOUND".into())
    );
}

#[tokio::test]
async fn a_member_may_leave_a_board() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice").await;
    let bob = app.user("bob").await;
    let board = create(&app, &alice.token, json!({"title": "B"})).await;
    let added: Value = app
        .ok(
            Some(&alice.token),
            ADD,
            json!({"b": board["id"], "e": bob.email, "r": "VIEWER"}),
        )
        .await;
    let id = added["addBoardMember"]["id"].clone();
    let data = app.ok(Some(&bob.token), REMOVE, json!({"id": id})).await;
    assert_eq!(data["removeBoardMember"]["success"], true);
}

#[tokio::test]
async fn an_inviter_still_resolves_after_leaving_the_board() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice").await;
    let bob = app.user("bob").await;
    let carol = app.user("carol").await;
    let board = create(&app, &alice.token, json!({"title": "B"})).await;
    let added = app
        .ok(
            Some(&alice.token),
            ADD,
            json!({"b": board["id"], "e": bob.email, "r": "ADMIN"}),
        )
        .await;
    // Bob (admin) invites Carol; then Bob's membership is removed: Carol's inviter still resolves.
    app.ok(
        Some(&bob.token),
        ADD,
        json!({"b": board["id"], "e": carol.email, "r": "VIEWER"}),
    )
    .await;
    app.ok(
        Some(&alice.token),
        REMOVE,
        json!({"id": added["addBoardMember"]["id"]}),
    )
    .await;
    let data = app
        .ok(Some(&alice.token), MEMBERS, json!({"id": board["id"]}))
        .await;
    assert_eq!(
        data["board"]["members"][0]["inviter"]["id"],
        bob.id.as_str()
    );
}

#[tokio::test]
async fn the_owner_cannot_be_demoted_or_removed_through_a_stray_membership() {
    use diesel_async::RunQueryDsl;
    let app = TestApp::spawn().await;
    let alice = app.user("alice").await;
    let board = create(&app, &alice.token, json!({"title": "B"})).await;
    // Only possible by writing the table directly (addBoardMember refuses the owner).
    let mut conn = app.db.connect().await.unwrap();
    let member_id = uuid::Uuid::new_v4();
    diesel::sql_query(format!(
        "INSERT INTO boards.board_members (id, board_id, user_id, role) VALUES ('{member_id}', '{}', '{}', 'viewer')",
        board["id"].as_str().unwrap(),
        alice.id
    ))
    .execute(&mut conn)
    .await
    .unwrap();
    let res = app
        .gql(
            Some(&alice.token),
            SET_ROLE,
            json!({"id": member_id, "r": "ADMIN"}),
        )
        .await;
    assert_eq!(error_of(&res).0, "Cannot change the board owner's role");
    let res = app
        .gql(Some(&alice.token), REMOVE, json!({"id": member_id}))
        .await;
    assert_eq!(error_of(&res).0, "Cannot remove the board owner");
}

#[tokio::test]
async fn users_answer_the_same_on_the_direct_and_the_juniper_path() {
    // The juniper path is forced with `User.boards`, which costs a full page per user: this
    // test is about answers, not cost.
    let app = TestApp::spawn_with(
        crate::util::Options::default().env("BOARDS_GRAPHQL_MAX_COST", "100000000"),
    )
    .await;
    let alice = app.user("alice").await;
    let bob = app.user("bob").await;
    let board = create(&app, &alice.token, json!({"title": "B"})).await;
    app.ok(
        Some(&alice.token),
        ADD,
        json!({"b": board["id"], "e": bob.email, "r": "EDITOR"}),
    )
    .await;
    let fields = "__typename id tenantId authProvider authSubject email displayName avatarUrl createdAt updatedAt";
    let direct = format!("query($id: UUID!) {{ board(id: $id) {{ owner {{ ...U n: email }} members {{ user {{ ...U n: email }} inviter {{ ...U }} }} }} }} fragment U on User {{ {fields} }}");
    let juniper = format!("query($id: UUID!) {{ board(id: $id) {{ owner {{ ...U n: email boards {{ id }} }} members {{ user {{ ...U n: email boards {{ id }} }} inviter {{ ...U boards {{ id }} }} }} }} }} fragment U on User {{ {fields} }}");
    let d = app
        .ok(Some(&alice.token), &direct, json!({"id": board["id"]}))
        .await;
    let mut j = app
        .ok(Some(&alice.token), &juniper, json!({"id": board["id"]}))
        .await;
    j["board"]["owner"]
        .as_object_mut()
        .unwrap()
        .remove("boards");
    for m in j["board"]["members"].as_array_mut().unwrap() {
        m["user"].as_object_mut().unwrap().remove("boards");
        m["inviter"].as_object_mut().unwrap().remove("boards");
    }
    assert_eq!(d, j);
    assert_eq!(d["board"]["owner"]["n"], alice.email.as_str());
}
