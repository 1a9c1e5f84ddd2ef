//! The board feed (`GET /api/sse/boards/{id}/events`, issue 12): what changes on a board reaches
//! everyone looking at it, from the API (generations created and deleted, board and member
//! changes) and from the worker (progress, completion with the artifact); access is checked like
//! the board's and re-checked when it changes.

use std::{pin::Pin, time::Duration};

use boards_shared::{events::StreamId, generators::Registry};
use bytes::Bytes;
use futures::{Stream, StreamExt as _};
use serde_json::{json, Value};

use crate::{
    members::{ADD, REMOVE},
    pipeline::{board, generate, worker},
    util::{TestApp, TestUser},
};

const WITHIN: Duration = Duration::from_secs(20);

type Body = Pin<Box<dyn Stream<Item = reqwest::Result<Bytes>> + Send>>;

/// An open board feed and what was read from it but not yet consumed.
struct Feed {
    body: Body,
    buffer: String,
    /// The `id:` of the last frame returned.
    last_id: Option<String>,
}

impl Feed {
    async fn request(app: &TestApp, token: Option<&str>, board: &str) -> reqwest::Response {
        Self::request_after(app, token, board, None).await
    }

    async fn request_after(
        app: &TestApp,
        token: Option<&str>,
        board: &str,
        last_event_id: Option<&str>,
    ) -> reqwest::Response {
        let mut req = app
            .client
            .get(app.url(&format!("/api/sse/boards/{board}/events")))
            .header("Accept", "text/event-stream");
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(id) = last_event_id {
            req = req.header("Last-Event-ID", id);
        }
        req.send().await.unwrap()
    }

    /// Opens the feed and reads its `ready` frame.
    async fn open(app: &TestApp, user: &TestUser, board: &str) -> Self {
        Self::resume(app, user, board, None).await
    }

    /// Opens the feed with `Last-Event-ID` and reads its `ready` frame.
    async fn resume(app: &TestApp, user: &TestUser, board: &str, after: Option<&str>) -> Self {
        Self::open_with(app, Some(&user.token), board, after).await
    }

    /// Opens the feed without credentials and reads its `ready` frame.
    async fn anonymous(app: &TestApp, board: &str) -> Self {
        Self::open_with(app, None, board, None).await
    }

    async fn open_with(
        app: &TestApp,
        token: Option<&str>,
        board: &str,
        after: Option<&str>,
    ) -> Self {
        let res = Self::request_after(app, token, board, after).await;
        assert_eq!(res.status(), 200);
        let mut feed = Self {
            body: Box::pin(res.bytes_stream()),
            buffer: String::new(),
            last_id: None,
        };
        assert_eq!(feed.next("ready").await, json!({"board_id": board}));
        feed
    }

    /// The next frame (event name and data), skipping comments; `None` when the stream ended.
    async fn frame(&mut self) -> Option<(String, Value)> {
        let deadline = tokio::time::Instant::now() + WITHIN;
        loop {
            while let Some(end) = self.buffer.find("\n\n") {
                let raw: String = self.buffer.drain(..end + 2).collect();
                let mut name = None;
                let mut data = None;
                let mut id = None;
                for line in raw.lines() {
                    if let Some(v) = line.strip_prefix("id: ") {
                        id = Some(v.to_string());
                    } else if let Some(v) = line.strip_prefix("event: ") {
                        name = Some(v.to_string());
                    } else if let Some(v) = line.strip_prefix("data: ") {
                        data = Some(serde_json::from_str(v).unwrap());
                    }
                }
                if let (Some(name), Some(data)) = (name, data) {
                    self.last_id = id;
                    return Some((name, data));
                }
                if raw.starts_with(": access revoked") {
                    return Some(("access_revoked".into(), Value::Null));
                }
            }
            match tokio::time::timeout_at(deadline, self.body.next()).await {
                Ok(Some(Ok(chunk))) => self.buffer.push_str(&String::from_utf8_lossy(&chunk)),
                Ok(Some(Err(_)) | None) => return None,
                Err(_) => panic!("no frame within {WITHIN:?}; buffered: {}", self.buffer),
            }
        }
    }

    /// The data of the next `name` frame, skipping other events.
    async fn next(&mut self, name: &str) -> Value {
        loop {
            match self.frame().await {
                Some((n, data)) if n == name => return data,
                Some(_) => {}
                None => panic!("the feed ended before a `{name}` event"),
            }
        }
    }
}

#[tokio::test]
async fn a_board_feed_shows_generations_from_request_to_completion_and_board_changes() {
    let app = TestApp::spawn().await;
    let w = worker(&app, Registry::builtin()).await;
    let owner = app.user("owner").await;
    let editor = app.user("editor").await;
    let b = board(&app, &owner).await;
    app.ok(
        Some(&owner.token),
        ADD,
        json!({"b": b, "e": editor.email, "r": "EDITOR"}),
    )
    .await;
    let mut feed = Feed::open(&app, &owner, &b).await;

    // A teammate generates: the owner's feed sees it created, then completed with its artifact.
    let id = generate(
        &app,
        &editor,
        &b,
        "local-echo",
        "TEXT",
        json!({"prompt": "live"}),
    )
    .await;
    let created = feed.next("generation_created").await;
    assert_eq!(
        (created["generation_id"].clone(), created["status"].clone()),
        (json!(id), json!("pending"))
    );
    assert_eq!(created["generator_name"], "local-echo");
    let done = loop {
        let progress = feed.next("generation_progress").await;
        assert_eq!(progress["job_id"], id.as_str());
        if progress["status"] == "completed" {
            break progress;
        }
    };
    assert_eq!(done["progress"], 100.0);
    assert_eq!(done["artifacts"][0]["type"], "text");

    app.ok(
        Some(&owner.token),
        "mutation($i: UpdateBoardInput!) { updateBoard(input: $i) { id } }",
        json!({"i": {"id": b, "title": "renamed"}}),
    )
    .await;
    assert_eq!(feed.next("board_updated").await["type"], "board_updated");
    // Tags on and off.
    let tag = app
        .ok(
            Some(&owner.token),
            "mutation { createTag(input: {name: \"Live\"}) { id } }",
            json!({}),
        )
        .await["createTag"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let vars = json!({"g": id, "t": tag});
    app.ok(
        Some(&editor.token),
        "mutation($g: UUID!, $t: UUID!) { addTagToGeneration(generationId: $g, tagId: $t) { id } }",
        vars.clone(),
    )
    .await;
    assert_eq!(
        feed.next("generation_tags_changed").await,
        json!({"type": "generation_tags_changed", "generation_id": id, "tag_id": tag, "tagged": true})
    );
    app.ok(
        Some(&editor.token),
        "mutation($g: UUID!, $t: UUID!) { removeTagFromGeneration(generationId: $g, tagId: $t) }",
        vars,
    )
    .await;
    assert_eq!(feed.next("generation_tags_changed").await["tagged"], false);
    app.ok(
        Some(&owner.token),
        "mutation($id: UUID!) { deleteGeneration(id: $id) }",
        json!({"id": id}),
    )
    .await;
    assert_eq!(
        feed.next("generation_deleted").await["generation_id"],
        id.as_str()
    );
    // Deleting the board ends the feed after `board_deleted`.
    app.ok(
        Some(&owner.token),
        "mutation($id: UUID!) { deleteBoard(id: $id) { success } }",
        json!({"id": b}),
    )
    .await;
    feed.next("board_deleted").await;
    assert!(feed.frame().await.is_none(), "the feed ends with its board");
    w.stop().await;
}

#[tokio::test]
async fn a_board_feed_is_for_the_boards_readers_and_ends_when_access_is_removed() {
    let app = TestApp::spawn().await;
    let owner = app.user("owner").await;
    let viewer = app.user("viewer").await;
    let stranger = app.user("stranger").await;
    let b = board(&app, &owner).await;
    let added = app
        .ok(
            Some(&owner.token),
            ADD,
            json!({"b": b, "e": viewer.email, "r": "VIEWER"}),
        )
        .await;
    let membership = added["addBoardMember"]["id"].as_str().unwrap().to_string();

    // Unknown, unreadable and malformed ids are alike (for anonymous callers too: the board is
    // private); a token that does not verify is 401.
    for (token, id, status) in [
        (Some(stranger.token.as_str()), b.as_str(), 404),
        (
            Some(owner.token.as_str()),
            "00000000-0000-0000-0000-000000000000",
            404,
        ),
        (Some(owner.token.as_str()), "not-a-uuid", 404),
        (None, b.as_str(), 404),
        (Some("not.a.token"), b.as_str(), 401),
    ] {
        let res = Feed::request(&app, token, id).await;
        assert_eq!(res.status(), status, "{id}");
    }

    let mut feed = Feed::open(&app, &viewer, &b).await;
    app.ok(
        Some(&owner.token),
        ADD,
        json!({"b": b, "e": stranger.email, "r": "VIEWER"}),
    )
    .await;
    assert_eq!(
        feed.next("members_changed").await["type"],
        "members_changed"
    );
    app.ok(Some(&owner.token), REMOVE, json!({"id": membership}))
        .await;
    // The viewer may see that members changed, then the feed ends: access revoked.
    loop {
        match feed.frame().await {
            Some((name, _)) if name == "access_revoked" => break,
            Some((name, _)) if name == "members_changed" => {}
            other => panic!("expected the end of access, got {other:?}"),
        }
    }
    assert!(feed.frame().await.is_none());
}

#[tokio::test]
async fn anyone_may_follow_a_public_board_until_it_becomes_private() {
    let app = TestApp::spawn().await;
    let owner = app.user("owner").await;
    let b = board(&app, &owner).await;
    let public = "mutation($i: UpdateBoardInput!) { updateBoard(input: $i) { id } }";
    app.ok(
        Some(&owner.token),
        public,
        json!({"i": {"id": b, "isPublic": true}}),
    )
    .await;
    let mut feed = Feed::anonymous(&app, &b).await;
    rename(&app, &owner, &b, "for everyone").await;
    assert_eq!(feed.next("board_updated").await["type"], "board_updated");
    app.ok(
        Some(&owner.token),
        public,
        json!({"i": {"id": b, "isPublic": false}}),
    )
    .await;
    loop {
        match feed.frame().await {
            Some((name, _)) if name == "access_revoked" => break,
            Some((name, _)) if name == "board_updated" => {}
            other => panic!("expected the end of access, got {other:?}"),
        }
    }
    assert!(feed.frame().await.is_none());
    assert_eq!(Feed::request(&app, None, &b).await.status(), 404);
}

const RENAME: &str = "mutation($i: UpdateBoardInput!) { updateBoard(input: $i) { id } }";

async fn rename(app: &TestApp, owner: &TestUser, board: &str, title: &str) {
    app.ok(
        Some(&owner.token),
        RENAME,
        json!({"i": {"id": board, "title": title}}),
    )
    .await;
}

#[tokio::test]
async fn a_reconnecting_feed_replays_what_it_missed_once_then_goes_on_live() {
    let app = TestApp::spawn().await;
    let owner = app.user("owner").await;
    let b = board(&app, &owner).await;
    let mut feed = Feed::open(&app, &owner, &b).await;
    let mut ids = vec![];
    for title in ["one", "two"] {
        rename(&app, &owner, &b, title).await;
        feed.next("board_updated").await;
        ids.push(feed.last_id.clone().expect("event frames carry an id"));
    }
    let order: Vec<StreamId> = ids.iter().map(|id| id.parse().unwrap()).collect();
    assert!(order[0] < order[1], "{ids:?}");
    drop(feed);

    // Missed while disconnected.
    for title in ["three", "four"] {
        rename(&app, &owner, &b, title).await;
    }
    let missed_member = app.user("member").await;
    app.ok(
        Some(&owner.token),
        ADD,
        json!({"b": b, "e": missed_member.email, "r": "VIEWER"}),
    )
    .await;
    // Give the publisher a moment to append them (publishing is asynchronous).
    tokio::time::sleep(Duration::from_millis(300)).await;

    let mut feed = Feed::resume(&app, &owner, &b, Some(&ids[1])).await;
    let mut replayed = vec![];
    for _ in 0..3 {
        let (name, _) = feed.frame().await.expect("replayed event");
        replayed.push((name, feed.last_id.clone().unwrap()));
    }
    let names: Vec<&str> = replayed.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["board_updated", "board_updated", "members_changed"]);
    // Then live, and nothing twice.
    rename(&app, &owner, &b, "five").await;
    let (name, _) = feed.frame().await.unwrap();
    assert_eq!(name, "board_updated");
    let live = feed.last_id.clone().unwrap();
    assert!(replayed.iter().all(|(_, id)| *id != live));
}

#[tokio::test]
async fn a_feed_resuming_after_events_that_were_dropped_gets_a_reset_with_a_snapshot() {
    let app = TestApp::spawn_with(
        crate::util::Options::default()
            .no_broker()
            .env("BOARDS_REDIS_BOARD_EVENTS_MAX_LEN", "2"),
    )
    .await;
    let owner = app.user("owner").await;
    let b = board(&app, &owner).await;
    let g = generate(
        &app,
        &owner,
        &b,
        "local-echo",
        "TEXT",
        json!({"prompt": "x"}),
    )
    .await;
    let mut feed = Feed::open(&app, &owner, &b).await;
    rename(&app, &owner, &b, "one").await;
    feed.next("board_updated").await;
    let first = feed.last_id.clone().unwrap();
    drop(feed);
    for title in ["two", "three", "four"] {
        rename(&app, &owner, &b, title).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut feed = Feed::resume(&app, &owner, &b, Some(&first)).await;
    let reset = feed.next("reset").await;
    assert_eq!(reset["board_id"], b.as_str());
    assert_eq!(reset["generations"][0]["job_id"], g.as_str());
    assert_eq!(reset["generations"][0]["status"], "pending");
    // The feed goes on live after the reset.
    rename(&app, &owner, &b, "five").await;
    feed.next("board_updated").await;
}
