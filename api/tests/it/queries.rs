//! No N+1: the client's board queries cost a constant number of SQL statements.

use serde_json::json;

use crate::{
    boards::create,
    client_ops::{get_board, get_boards},
    members::ADD,
    util::TestApp,
};

/// Statements of one warm request (a first request may fill per-process caches).
async fn cost(app: &TestApp, token: &str, query: &str, vars: serde_json::Value) -> u64 {
    app.ok(Some(token), query, vars.clone()).await;
    let before = app.queries();
    app.ok(Some(token), query, vars).await;
    app.queries() - before
}

#[tokio::test]
async fn get_boards_costs_the_same_for_5_and_50_boards() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice").await;
    let bob = app.user("bob").await;
    // Half owned by alice, half owned by bob with alice as a member (owners differ, roles load).
    let mut made = 0;
    let mut add = |n: usize| {
        let (app, alice, bob) = (&app, &alice, &bob);
        let start = made;
        made += n;
        async move {
            for i in start..start + n {
                if i % 2 == 0 {
                    create(app, &alice.token, json!({"title": format!("a{i}")})).await;
                } else {
                    let b = create(app, &bob.token, json!({"title": format!("b{i}")})).await;
                    app.ok(
                        Some(&bob.token),
                        ADD,
                        json!({"b": b["id"], "e": alice.email, "r": "VIEWER"}),
                    )
                    .await;
                }
            }
        }
    };
    add(5).await;
    let small = cost(&app, &alice.token, &get_boards(), json!({"limit": 100})).await;
    add(45).await;
    let large = cost(&app, &alice.token, &get_boards(), json!({"limit": 100})).await;
    assert_eq!(
        small, large,
        "GetBoards: {small} statements for 5 boards, {large} for 50"
    );
    assert!(large <= 8, "GetBoards used {large} statements");
}

#[tokio::test]
async fn get_board_costs_the_same_for_1_and_10_members() {
    let app = TestApp::spawn().await;
    let owner = app.user("owner").await;
    let board = create(&app, &owner.token, json!({"title": "B"})).await;
    let id = board["id"].as_str().unwrap();
    let first = app.user("m0").await;
    app.ok(
        Some(&owner.token),
        ADD,
        json!({"b": id, "e": first.email, "r": "VIEWER"}),
    )
    .await;
    let vars = json!({"id": id, "limit": 100, "offset": 0});
    let small = cost(&app, &owner.token, &get_board(), vars.clone()).await;
    for i in 1..10 {
        let m = app.user(&format!("m{i}")).await;
        app.ok(
            Some(&owner.token),
            ADD,
            json!({"b": id, "e": m.email, "r": "EDITOR"}),
        )
        .await;
    }
    let large = cost(&app, &owner.token, &get_board(), vars.clone()).await;
    assert_eq!(
        small, large,
        "GetBoard: {small} statements with 1 member, {large} with 10"
    );
    // A member (not the owner) reading costs the same too.
    let viewer = app.user("m0").await;
    let as_member = cost(&app, &viewer.token, &get_board(), vars).await;
    assert!(as_member <= large + 1, "member read used {as_member}");
}

#[tokio::test]
async fn get_board_costs_the_same_for_1_and_100_generations() {
    use crate::util::fixtures::GenerationFixture;
    let app = TestApp::spawn().await;
    let owner = app.user("owner").await;
    let board = create(&app, &owner.token, json!({"title": "B"})).await;
    let id = board["id"].as_str().unwrap();
    for i in 0..10 {
        let m = app.user(&format!("m{i}")).await;
        app.ok(
            Some(&owner.token),
            ADD,
            json!({"b": id, "e": m.email, "r": "EDITOR"}),
        )
        .await;
    }
    GenerationFixture::completed_image(id, &owner.id)
        .insert(&app)
        .await;
    let vars = json!({"id": id, "limit": 100, "offset": 0});
    let small = cost(&app, &owner.token, &get_board(), vars.clone()).await;
    for _ in 0..99 {
        GenerationFixture::completed_image(id, &owner.id)
            .insert(&app)
            .await;
    }
    app.ok(Some(&owner.token), &get_board(), vars.clone()).await;
    let before = app.queries();
    let data = app.ok(Some(&owner.token), &get_board(), vars).await;
    let large = app.queries() - before;
    assert_eq!(data["board"]["generations"].as_array().unwrap().len(), 100);
    assert_eq!(
        small, large,
        "GetBoard: {small} statements with 1 generation, {large} with 100"
    );
}
