//! The access-control matrix of contract §0.4: every board and member query and mutation, and
//! the REST endpoints (progress stream, uploads, jobs, tenant administration), for the owner,
//! each member role, a stranger of the same tenant, a user of another tenant, an anonymous
//! caller and a refused token (multi-tenant mode, so "another tenant" is real).

use std::collections::HashMap;

use boards_shared::db::models::tenants;
use reqwest::Method;
use serde_json::{json, Value};

use crate::{
    jobs_rest,
    members::{ADD, REMOVE, SET_ROLE},
    tenants::{add_member, rest, ADMIN_TOKEN},
    util::{
        matrix::{self, BAD_TOKEN},
        Options, TestApp, TestUser,
    },
};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Who {
    Owner,
    Viewer,
    Editor,
    Admin,
    Stranger,
    OtherTenant,
    Anonymous,
    /// A token that fails verification (signed with another secret).
    BadToken,
}

const EVERYONE: [Who; 8] = [
    Who::Owner,
    Who::Viewer,
    Who::Editor,
    Who::Admin,
    Who::Stranger,
    Who::OtherTenant,
    Who::Anonymous,
    Who::BadToken,
];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Outcome {
    Allowed,
    /// A read that comes back empty (null / absent) without an error.
    Hidden,
    Denied(&'static str),
}

use Outcome::*;

struct World {
    app: TestApp,
    users: HashMap<Who, TestUser>,
    /// Members not in the matrix, acted upon by member mutations.
    subjects: Vec<TestUser>,
}

impl World {
    async fn new() -> Self {
        // With an admin token, for the tenant administration rows.
        let app = crate::tenants::multi_tenant(Options::default()).await;
        let mut conn = app.db.connect().await.unwrap();
        tenants::ensure(&mut conn, "other", "Other").await.unwrap();
        let mut users = HashMap::new();
        for (who, sub) in [
            (Who::Owner, "owner"),
            (Who::Viewer, "viewer"),
            (Who::Editor, "editor"),
            (Who::Admin, "admin"),
            (Who::Stranger, "stranger"),
        ] {
            users.insert(
                who,
                app.user_with(sub, json!({"tenant": "default"}), Some("default"))
                    .await,
            );
        }
        users.insert(
            Who::OtherTenant,
            app.user_with("outsider", json!({"tenant": "other"}), Some("other"))
                .await,
        );
        let mut subjects = vec![];
        for i in 0..9 {
            subjects.push(
                app.user_with(
                    &format!("subject{i}"),
                    json!({"tenant": "default"}),
                    Some("default"),
                )
                .await,
            );
        }
        Self {
            app,
            users,
            subjects,
        }
    }

    fn tenant(who: Who) -> &'static str {
        if who == Who::OtherTenant {
            "other"
        } else {
            "default"
        }
    }

    async fn as_(&self, who: Who, query: &str, vars: Value) -> Value {
        let token = match who {
            Who::BadToken => Some(BAD_TOKEN),
            _ => self.users.get(&who).map(|u| u.token.as_str()),
        };
        self.app
            .gql_full(token, Some(Self::tenant(who)), query, vars)
            .await
    }

    /// A board of the owner with one member per role plus a subject member; returns
    /// (board id, subject membership id).
    async fn board(&self, public: bool, subject: usize) -> (String, String) {
        let data = self
            .as_(
                Who::Owner,
                "mutation($i: CreateBoardInput!) { createBoard(input: $i) { id } }",
                json!({"i": {"title": "matrix board", "isPublic": public}}),
            )
            .await;
        let id = data["data"]["createBoard"]["id"]
            .as_str()
            .unwrap()
            .to_string();
        for (who, role) in [
            (Who::Viewer, "VIEWER"),
            (Who::Editor, "EDITOR"),
            (Who::Admin, "ADMIN"),
        ] {
            let res = self
                .as_(
                    Who::Owner,
                    ADD,
                    json!({"b": id, "e": self.users[&who].email, "r": role}),
                )
                .await;
            assert!(res.get("errors").is_none(), "{res}");
        }
        let res = self
            .as_(
                Who::Owner,
                ADD,
                json!({"b": id, "e": self.subjects[subject].email, "r": "VIEWER"}),
            )
            .await;
        let member = res["data"]["addBoardMember"]["id"]
            .as_str()
            .unwrap()
            .to_string();
        (id, member)
    }
}

impl Drop for World {
    fn drop(&mut self) {
        matrix::report();
    }
}

/// What a caller with a refused token gets, whatever it asks: UNAUTHENTICATED.
fn gate(who: Who, expected: Outcome) -> Outcome {
    if who == Who::BadToken {
        Denied("UNAUTHENTICATED")
    } else {
        expected
    }
}

fn outcome(res: &Value, field: &str) -> Outcome {
    matrix::count(1);
    match res.get("errors") {
        Some(errors) => Denied(
            match errors[0]["extensions"]["code"].as_str().unwrap_or("") {
                "UNAUTHENTICATED" => "UNAUTHENTICATED",
                "FORBIDDEN" => "FORBIDDEN",
                "NOT_FOUND" => "NOT_FOUND",
                other => panic!("unexpected error code {other}: {res}"),
            },
        ),
        None => {
            let v = &res["data"][field];
            if v.is_null() || v == &json!([]) || v == &json!(0) {
                Hidden
            } else {
                Allowed
            }
        }
    }
}

const READERS: [Who; 4] = [Who::Owner, Who::Viewer, Who::Editor, Who::Admin];

/// A mutation on a private board: FORBIDDEN for readers without the right, NOT_FOUND (as for
/// an unknown id) for those who may not even read the board.
fn expect(who: Who, allowed: &[Who]) -> Outcome {
    if allowed.contains(&who) {
        Allowed
    } else if matches!(who, Who::Anonymous | Who::BadToken) {
        Denied("UNAUTHENTICATED")
    } else if READERS.contains(&who) {
        Denied("FORBIDDEN")
    } else {
        Denied("NOT_FOUND")
    }
}

#[tokio::test]
async fn reads_of_a_private_board() {
    let w = World::new().await;
    let (board, _) = w.board(false, 0).await;
    for who in EVERYONE {
        let expected = if READERS.contains(&who) {
            Allowed
        } else {
            Hidden
        };
        let q = "query($id: UUID!) { board(id: $id) { id owner { id } members { user { id } inviter { id } } generationCount generations { id } } }";
        assert_eq!(
            outcome(&w.as_(who, q, json!({"id": board})).await, "board"),
            gate(who, expected),
            "board {who:?}"
        );
        let q = "{ myBoards { id } }";
        assert_eq!(
            outcome(&w.as_(who, q, json!({})).await, "myBoards"),
            gate(who, expected),
            "myBoards {who:?}"
        );
        let q = "{ searchBoards(query: \"matrix\") { id } }";
        assert_eq!(
            outcome(&w.as_(who, q, json!({})).await, "searchBoards"),
            gate(who, expected),
            "search {who:?}"
        );
        let q = "{ publicBoards { id } }";
        assert_eq!(
            outcome(&w.as_(who, q, json!({})).await, "publicBoards"),
            gate(who, Hidden),
            "public {who:?}"
        );
    }
}

#[tokio::test]
async fn reads_of_a_public_board() {
    let w = World::new().await;
    let (board, _) = w.board(true, 0).await;
    for who in EVERYONE {
        let q = "query($id: UUID!) { board(id: $id) { id owner { id } members { user { id } } generationCount } }";
        let res = w.as_(who, q, json!({"id": board})).await;
        assert_eq!(
            outcome(&res, "board"),
            gate(who, Allowed),
            "board {who:?}: {res}"
        );
        let q = "{ searchBoards(query: \"matrix\") { id } }";
        assert_eq!(
            outcome(&w.as_(who, q, json!({})).await, "searchBoards"),
            gate(who, Allowed),
            "search {who:?}"
        );
        let q = "{ publicBoards { id } }";
        assert_eq!(
            outcome(&w.as_(who, q, json!({})).await, "publicBoards"),
            gate(who, Allowed),
            "public {who:?}"
        );
        let expected = if READERS.contains(&who) {
            Allowed
        } else {
            Hidden
        };
        let q = "{ myBoards { id } }";
        assert_eq!(
            outcome(&w.as_(who, q, json!({})).await, "myBoards"),
            gate(who, expected),
            "myBoards {who:?}"
        );
    }
}

#[tokio::test]
async fn update_board() {
    let w = World::new().await;
    let (board, _) = w.board(false, 0).await;
    let q = "mutation($i: UpdateBoardInput!) { updateBoard(input: $i) { id } }";
    for who in EVERYONE {
        let res = w
            .as_(
                who,
                q,
                json!({"i": {"id": board, "title": format!("{who:?}")}}),
            )
            .await;
        assert_eq!(
            outcome(&res, "updateBoard"),
            expect(who, &[Who::Owner, Who::Admin]),
            "{who:?}: {res}"
        );
    }
}

#[tokio::test]
async fn delete_board() {
    let w = World::new().await;
    let q = "mutation($id: UUID!) { deleteBoard(id: $id) { success } }";
    for who in EVERYONE {
        let (board, _) = w.board(false, 0).await;
        let res = w.as_(who, q, json!({"id": board})).await;
        assert_eq!(
            outcome(&res, "deleteBoard"),
            expect(who, &[Who::Owner]),
            "{who:?}: {res}"
        );
    }
}

#[tokio::test]
async fn add_board_member() {
    let w = World::new().await;
    for (i, who) in EVERYONE.into_iter().enumerate() {
        let (board, _) = w.board(false, 0).await;
        let target = &w.subjects[i + 1].email;
        let res = w
            .as_(who, ADD, json!({"b": board, "e": target, "r": "VIEWER"}))
            .await;
        assert_eq!(
            outcome(&res, "addBoardMember"),
            expect(who, &[Who::Owner, Who::Admin]),
            "{who:?}: {res}"
        );
    }
}

#[tokio::test]
async fn update_board_member_role() {
    let w = World::new().await;
    for who in EVERYONE {
        let (_, member) = w.board(false, 0).await;
        let res = w
            .as_(who, SET_ROLE, json!({"id": member, "r": "EDITOR"}))
            .await;
        assert_eq!(
            outcome(&res, "updateBoardMemberRole"),
            expect(who, &[Who::Owner, Who::Admin]),
            "{who:?}: {res}"
        );
    }
}

#[tokio::test]
async fn remove_board_member() {
    let w = World::new().await;
    for who in EVERYONE {
        let (_, member) = w.board(false, 0).await;
        let res = w.as_(who, REMOVE, json!({"id": member})).await;
        assert_eq!(
            outcome(&res, "removeBoardMember"),
            expect(who, &[Who::Owner, Who::Admin]),
            "{who:?}: {res}"
        );
    }
    // The member itself may always leave.
    let (_, member) = w.board(false, 0).await;
    let subject = &w.subjects[0];
    let res = w
        .app
        .gql_full(
            Some(&subject.token),
            Some("default"),
            REMOVE,
            json!({"id": member}),
        )
        .await;
    assert_eq!(outcome(&res, "removeBoardMember"), Allowed, "{res}");
}

#[tokio::test]
async fn users_are_visible_within_their_tenant_only() {
    let w = World::new().await;
    let q = "query($id: UUID!) { user(id: $id) { id } }";
    let owner_id = &w.users[&Who::Owner].id;
    for who in EVERYONE {
        let expected = match who {
            Who::OtherTenant | Who::Anonymous => Hidden,
            _ => Allowed,
        };
        assert_eq!(
            outcome(&w.as_(who, q, json!({"id": owner_id})).await, "user"),
            gate(who, expected),
            "{who:?}"
        );
    }
}

/// The REST side of the matrix: the progress stream of a generation on a private board and a
/// REST upload to that board, per caller, as HTTP statuses.
#[tokio::test]
async fn rest_progress_stream_and_upload() {
    let w = World::new().await;
    let (board, _) = w.board(false, 0).await;
    let owner = &w.users[&Who::Owner];
    let generation = crate::util::fixtures::GenerationFixture::completed_image(&board, &owner.id)
        .insert(&w.app)
        .await;
    let png = {
        let mut bytes = std::io::Cursor::new(Vec::new());
        image::RgbImage::new(4, 4)
            .write_to(&mut bytes, image::ImageFormat::Png)
            .unwrap();
        bytes.into_inner()
    };
    let mut cells = 0;
    for who in EVERYONE {
        let token = match who {
            Who::BadToken => Some(BAD_TOKEN.to_string()),
            _ => w.users.get(&who).map(|u| u.token.clone()),
        };
        let with_auth = |req: reqwest::RequestBuilder| {
            let req = req.header("X-Tenant", World::tenant(who));
            match &token {
                Some(t) => req.bearer_auth(t),
                None => req,
            }
        };
        let sse = with_auth(
            w.app.client.get(
                w.app
                    .url(&format!("/api/sse/generations/{generation}/progress")),
            ),
        )
        .send()
        .await
        .unwrap()
        .status()
        .as_u16();
        let expected_sse = match who {
            Who::Anonymous | Who::BadToken => 401,
            w if READERS.contains(&w) => 200,
            _ => 404,
        };
        assert_eq!(sse, expected_sse, "progress stream {who:?}");
        let form = reqwest::multipart::Form::new()
            .text("board_id", board.clone())
            .text("artifact_type", "image")
            .part(
                "file",
                reqwest::multipart::Part::bytes(png.clone())
                    .file_name("x.png")
                    .mime_str("image/png")
                    .unwrap(),
            );
        let upload = with_auth(
            w.app
                .client
                .post(w.app.url("/api/uploads/artifact"))
                .multipart(form),
        )
        .send()
        .await
        .unwrap()
        .status()
        .as_u16();
        let expected_upload = match who {
            Who::Anonymous | Who::BadToken => 401,
            Who::Owner | Who::Editor | Who::Admin => 200,
            Who::Viewer => 403,
            _ => 404,
        };
        assert_eq!(upload, expected_upload, "REST upload {who:?}");
        cells += 2;
    }
    matrix::count(cells);
}

/// The job API (`POST /api/jobs/generations`, the checks of `createGeneration`) and tenant
/// administration (`/api/tenants/{id}/members`, `/api/setup/tenant[s]`): the owner administers
/// `default`, the outsider `other`; nobody else administers anything.
#[tokio::test]
async fn rest_jobs_and_tenant_administration() {
    let w = World::new().await;
    let (private, _) = w.board(false, 0).await;
    let (public, _) = w.board(true, 1).await;
    let mut conn = w.app.db.connect().await.unwrap();
    let mut tenant_id = async |slug: &str| {
        tenants::find_by_slug(&mut conn, slug)
            .await
            .unwrap()
            .unwrap()
            .id
            .to_string()
    };
    let default_id = tenant_id("default").await;
    let other_id = tenant_id("other").await;
    add_member(&w.app, &default_id, "owner", "admin").await;
    add_member(&w.app, &other_id, "outsider", "admin").await;

    let mut cells = 0;
    for who in EVERYONE {
        let token = match who {
            Who::BadToken => Some(BAD_TOKEN.to_string()),
            _ => w.users.get(&who).map(|u| u.token.clone()),
        };
        let token = token.as_deref();
        let signed_out = matches!(who, Who::Anonymous | Who::BadToken);

        for (board, is_public) in [(&private, false), (&public, true)] {
            let body = jobs_rest::body(board, "local-text", "text", json!({"prompt": "hi"}));
            let (status, res) = rest(
                &w.app,
                Method::POST,
                "/api/jobs/generations",
                token,
                Some(World::tenant(who)),
                Some(body),
            )
            .await;
            let expected = match who {
                _ if signed_out => 401,
                Who::Owner | Who::Editor | Who::Admin => 200,
                Who::Viewer => 403,
                _ if is_public => 403,
                _ => 404,
            };
            assert_eq!(status, expected, "jobs public={is_public} {who:?}: {res}");
            if status == 200 {
                let id = res["generation_id"].as_str().unwrap();
                let owner = w
                    .as_(
                        Who::Owner,
                        "query($id: UUID!) { generation(id: $id) { userId boardId } }",
                        json!({"id": id}),
                    )
                    .await;
                assert_eq!(
                    owner["data"]["generation"],
                    json!({"userId": w.users[&who].id, "boardId": board}),
                    "{who:?}"
                );
            }
            cells += 1;
        }

        for (tenant, admin) in [(&default_id, Who::Owner), (&other_id, Who::OtherTenant)] {
            let expected = if signed_out {
                401
            } else if who == admin {
                200
            } else {
                403
            };
            for path in [
                format!("/api/tenants/{tenant}/members"),
                format!("/api/setup/tenant/{tenant}"),
            ] {
                let (status, res) = rest(&w.app, Method::GET, &path, token, None, None).await;
                assert_eq!(status, expected, "GET {path} {who:?}: {res}");
                cells += 1;
            }
            // Writes: a member added (201 for the admin), the tenant renamed to itself.
            let (status, res) = rest(
                &w.app,
                Method::POST,
                &format!("/api/tenants/{tenant}/members"),
                token,
                None,
                Some(json!({"auth_subject": format!("added-by-{who:?}"), "role": "member"})),
            )
            .await;
            let created = if expected == 200 { 201 } else { expected };
            assert_eq!(status, created, "add member to {tenant} {who:?}: {res}");
            let (status, res) = rest(
                &w.app,
                Method::PUT,
                &format!("/api/setup/tenant/{tenant}"),
                token,
                None,
                Some(json!({"name": format!("renamed by {who:?}")})),
            )
            .await;
            assert_eq!(status, expected, "rename {tenant} {who:?}: {res}");
            cells += 2;
        }

        // The tenants a caller administers; creating one needs the admin token.
        let (status, res) =
            rest(&w.app, Method::GET, "/api/setup/tenants", token, None, None).await;
        let listed: Vec<&str> = if signed_out {
            assert_eq!(status, 401, "{who:?}: {res}");
            vec![]
        } else {
            assert_eq!(status, 200, "{who:?}: {res}");
            res["tenants"]
                .as_array()
                .unwrap()
                .iter()
                .map(|t| t["slug"].as_str().unwrap())
                .collect()
        };
        let expected: Vec<&str> = match who {
            Who::Owner => vec!["default"],
            Who::OtherTenant => vec!["other"],
            _ => vec![],
        };
        assert_eq!(listed, expected, "{who:?}");
        let (status, res) = rest(
            &w.app,
            Method::POST,
            "/api/setup/tenant",
            token,
            None,
            Some(json!({"name": "Mine", "slug": format!("mine-{who:?}").to_lowercase()})),
        )
        .await;
        assert_eq!(status, if signed_out { 401 } else { 403 }, "{who:?}: {res}");
        cells += 2;
    }
    matrix::count(cells);

    // Only the admins' writes landed.
    let app = &w.app;
    let members = |tenant: String| async move {
        let (_, res) = rest(
            app,
            Method::GET,
            &format!("/api/tenants/{tenant}/members"),
            Some(ADMIN_TOKEN),
            None,
            None,
        )
        .await;
        let mut subjects: Vec<String> = res["members"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["auth_subject"].as_str().unwrap().to_string())
            .collect();
        subjects.sort();
        subjects
    };
    assert_eq!(
        members(default_id.clone()).await,
        ["added-by-Owner", "owner"]
    );
    assert_eq!(
        members(other_id.clone()).await,
        ["added-by-OtherTenant", "outsider"]
    );
    let mut conn = w.app.db.connect().await.unwrap();
    for (slug, name) in [
        ("default", "renamed by Owner"),
        ("other", "renamed by OtherTenant"),
    ] {
        let t = tenants::find_by_slug(&mut conn, slug)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(t.name, name);
    }
}
