//! Identity fields of users (`email`, `authProvider`, `authSubject`) are shown only to the user
//! themself and to users who share a board with them — on the direct (fast) and the juniper
//! path alike, and at a constant number of SQL statements.

use serde_json::{json, Value};

use crate::{
    boards::create,
    members::ADD,
    util::{fixtures::GenerationFixture, TestApp, TestUser},
};

const FIELDS: &str = "id email authProvider authSubject displayName";

/// `publicBoards` with every place a user appears; `slow` adds a computed field so that
/// juniper resolves the users instead of the direct path.
fn public_boards(slow: bool) -> String {
    let extra = if slow { "boards { id }" } else { "" };
    format!(
        "{{ publicBoards(limit: 10) {{ title owner {{ ...U }} members {{ user {{ ...U }} inviter {{ ...U }} }}
           generations(limit: 10) {{ user {{ ...U }} }} }} }}
         fragment U on User {{ {FIELDS} {extra} }}"
    )
}

/// Drops the `boards` fields the slow variant added.
fn strip_boards(v: &mut Value) {
    match v {
        Value::Object(map) => {
            map.remove("boards");
            map.values_mut().for_each(strip_boards);
        }
        Value::Array(items) => items.iter_mut().for_each(strip_boards),
        _ => {}
    }
}

fn shown(user: &Value, who: &TestUser) -> bool {
    assert_eq!(user["id"], who.id.as_str());
    assert_eq!(
        user["displayName"],
        format!("User {}", who.email.trim_end_matches("@example.com"))
    );
    if user["email"].is_null() {
        assert_eq!(user["authProvider"], "", "{user}");
        assert_eq!(user["authSubject"], "", "{user}");
        false
    } else {
        assert_eq!(user["email"], who.email.as_str());
        assert_eq!(user["authProvider"], "jwt");
        true
    }
}

#[tokio::test]
async fn identity_fields_are_shown_only_to_the_user_and_to_board_mates() {
    // The slow variant selects `User.boards` (a full page per user): this test is about
    // answers, not cost.
    let app = TestApp::spawn_with(
        crate::util::Options::default().env("BOARDS_GRAPHQL_MAX_COST", "100000000"),
    )
    .await;
    let alice = app.user("alice").await;
    let dave = app.user("dave").await;
    let carol = app.user("carol").await;
    let bob = app.user("bob").await;
    // Alice's public board has Dave as a member; her private board has Carol.
    let public = create(&app, &alice.token, json!({"title": "P", "isPublic": true})).await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let private = create(&app, &alice.token, json!({"title": "X"})).await["id"]
        .as_str()
        .unwrap()
        .to_string();
    for (board, user) in [(&public, &dave), (&private, &carol)] {
        app.ok(
            Some(&alice.token),
            ADD,
            json!({"b": board, "e": user.email, "r": "VIEWER"}),
        )
        .await;
    }
    GenerationFixture::completed_image(&public, &alice.id)
        .insert(&app)
        .await;

    // (viewer, sees Alice, sees Dave)
    for (viewer, sees_alice, sees_dave) in [
        (None, false, false),
        (Some(&bob), false, false),
        (Some(&carol), true, false),
        (Some(&dave), true, true),
        (Some(&alice), true, true),
    ] {
        let token = viewer.map(|v| v.token.as_str());
        let fast = app.ok(token, &public_boards(false), json!({})).await;
        let mut slow = app.ok(token, &public_boards(true), json!({})).await;
        strip_boards(&mut slow);
        assert_eq!(fast, slow, "fast and juniper paths differ for {viewer:?}");
        let board = &fast["publicBoards"][0];
        let name = viewer.map_or("anonymous", |v| v.email.as_str());
        assert_eq!(
            shown(&board["owner"], &alice),
            sees_alice,
            "{name}: {board}"
        );
        assert_eq!(
            shown(&board["members"][0]["user"], &dave),
            sees_dave,
            "{name}"
        );
        assert_eq!(
            shown(&board["members"][0]["inviter"], &alice),
            sees_alice,
            "{name}"
        );
        assert_eq!(
            shown(&board["generations"][0]["user"], &alice),
            sees_alice,
            "{name}"
        );
    }

    // `user(id)` within the tenant follows the same rule.
    let q = format!("query($id: UUID!) {{ user(id: $id) {{ {FIELDS} }} }}");
    let as_bob = app.ok(Some(&bob.token), &q, json!({"id": alice.id})).await;
    assert!(!shown(&as_bob["user"], &alice));
    let as_carol = app
        .ok(Some(&carol.token), &q, json!({"id": alice.id}))
        .await;
    assert!(shown(&as_carol["user"], &alice));
    // And `me` always shows the caller.
    let me = app
        .ok(
            Some(&bob.token),
            &format!("{{ me {{ {FIELDS} }} }}"),
            json!({}),
        )
        .await;
    assert!(shown(&me["me"], &bob));
}

#[tokio::test]
async fn identity_checks_cost_the_same_for_5_and_50_owners() {
    let app = TestApp::spawn().await;
    let viewer = app.user("viewer").await;
    let q = format!("{{ publicBoards(limit: 100) {{ id owner {{ {FIELDS} }} }} }}");
    let mut made = 0;
    let mut cost = vec![];
    for n in [5, 50] {
        for i in made..n {
            let owner = app.user(&format!("owner{i}")).await;
            create(
                &app,
                &owner.token,
                json!({"title": format!("b{i}"), "isPublic": true}),
            )
            .await;
            // Every other owner shares a private board with the viewer.
            if i % 2 == 0 {
                let b = create(&app, &owner.token, json!({"title": "shared"})).await;
                app.ok(
                    Some(&owner.token),
                    ADD,
                    json!({"b": b["id"], "e": viewer.email, "r": "VIEWER"}),
                )
                .await;
            }
        }
        made = n;
        app.ok(Some(&viewer.token), &q, json!({})).await;
        let before = app.queries();
        let data = app.ok(Some(&viewer.token), &q, json!({})).await;
        cost.push(app.queries() - before);
        let owners = data["publicBoards"].as_array().unwrap();
        assert_eq!(owners.len(), n);
        let visible = owners
            .iter()
            .filter(|b| !b["owner"]["email"].is_null())
            .count();
        assert_eq!(visible, n.div_ceil(2), "{data}");
    }
    assert_eq!(cost[0], cost[1], "statements for 5 and 50 owners: {cost:?}");
}
