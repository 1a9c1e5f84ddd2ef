//! The access-control matrix of contract §0.4 for generations, lineage and tags: every read and
//! mutation for the owner, each member role, a stranger of the same tenant, a user of another
//! tenant, an anonymous caller and a refused token (multi-tenant mode, so "another tenant" is
//! real).

use std::collections::HashMap;

use boards_shared::db::models::tenants;
use serde_json::{json, Value};

use crate::{
    members::ADD,
    util::{
        error_of, fixtures,
        fixtures::GenerationFixture,
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

/// Owner and members of any role: the readers of a private board.
const READERS: [Who; 4] = [Who::Owner, Who::Viewer, Who::Editor, Who::Admin];
/// Owner, editor and admin: who may edit a board's content.
const EDITORS: [Who; 3] = [Who::Owner, Who::Editor, Who::Admin];

#[derive(Clone, Debug, PartialEq, Eq)]
enum Outcome {
    Allowed,
    /// A read that comes back empty (null / empty list) without an error.
    Hidden,
    /// An error with this `extensions.code` and message.
    Denied(&'static str, String),
}

use Outcome::*;

fn unauthenticated(res: &Value) -> Outcome {
    Denied("UNAUTHENTICATED", error_of(res).0)
}

fn forbidden(message: &str) -> Outcome {
    Denied("FORBIDDEN", message.to_string())
}

fn not_found(message: &str) -> Outcome {
    Denied("NOT_FOUND", message.to_string())
}

fn outcome(res: &Value, field: &str) -> Outcome {
    matrix::count(1);
    match res.get("errors") {
        Some(errors) => {
            let code = match errors[0]["extensions"]["code"].as_str().unwrap_or("") {
                "UNAUTHENTICATED" => "UNAUTHENTICATED",
                "FORBIDDEN" => "FORBIDDEN",
                "NOT_FOUND" => "NOT_FOUND",
                other => panic!("unexpected error code {other}: {res}"),
            };
            Denied(code, error_of(res).0)
        }
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

/// Anonymous callers are always refused with `UNAUTHENTICATED` and an "Authentication
/// required…" message; this checks that and returns the outcome to compare.
fn anonymous_refused(res: &Value) -> Outcome {
    let out = unauthenticated(res);
    assert!(
        error_of(res).0.starts_with("Authentication required"),
        "{res}"
    );
    assert!(res["data"].is_null(), "{res}");
    out
}

/// A refused token is `UNAUTHENTICATED` ("Invalid token…") whatever it asks.
fn bad_token_refused(res: &Value) -> Outcome {
    let out = unauthenticated(res);
    assert!(error_of(res).0.starts_with("Invalid token"), "{res}");
    assert!(res["data"].is_null(), "{res}");
    out
}

/// Whether `who` presents a valid token.
fn signed_in(who: Who) -> bool {
    !matches!(who, Who::Anonymous | Who::BadToken)
}

/// What a caller without a valid token gets from a mutation.
fn refused(who: Who, res: &Value) -> Outcome {
    match who {
        Who::BadToken => bad_token_refused(res),
        _ => anonymous_refused(res),
    }
}

/// A read's expected outcome, except for a refused token, which is refused.
fn gate(who: Who, res: &Value, expected: &Outcome) -> Outcome {
    if who == Who::BadToken {
        bad_token_refused(res)
    } else {
        expected.clone()
    }
}

fn ids(list: &Value) -> Vec<String> {
    list.as_array()
        .unwrap_or_else(|| panic!("not a list: {list}"))
        .iter()
        .map(|g| g["id"].as_str().unwrap().to_string())
        .collect()
}

struct World {
    app: TestApp,
    users: HashMap<Who, TestUser>,
}

impl Drop for World {
    fn drop(&mut self) {
        matrix::report();
    }
}

impl World {
    async fn new() -> Self {
        let app =
            TestApp::spawn_with(Options::default().env("BOARDS_MULTI_TENANT_MODE", "true")).await;
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
        Self { app, users }
    }

    fn tenant(who: Who) -> &'static str {
        if who == Who::OtherTenant {
            "other"
        } else {
            "default"
        }
    }

    fn id(&self, who: Who) -> &str {
        &self.users[&who].id
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

    /// Like [`as_`](Self::as_) but panics on errors; returns `data`.
    async fn ok(&self, who: Who, query: &str, vars: Value) -> Value {
        let res = self.as_(who, query, vars).await;
        assert!(res.get("errors").is_none(), "{who:?}: {res}");
        res["data"].clone()
    }

    /// A board of the owner with one member per role.
    async fn board(&self, public: bool) -> String {
        let data = self
            .ok(
                Who::Owner,
                "mutation($i: CreateBoardInput!) { createBoard(input: $i) { id } }",
                json!({"i": {"title": "generation matrix", "isPublic": public}}),
            )
            .await;
        let id = data["createBoard"]["id"].as_str().unwrap().to_string();
        for (who, role) in [
            (Who::Viewer, "VIEWER"),
            (Who::Editor, "EDITOR"),
            (Who::Admin, "ADMIN"),
        ] {
            self.ok(
                Who::Owner,
                ADD,
                json!({"b": id, "e": self.users[&who].email, "r": role}),
            )
            .await;
        }
        id
    }

    /// A pending `local-text` generation created by `who` through the API.
    async fn create_pending(&self, who: Who, board: &str) -> String {
        let data = self.ok(who, CREATE_GEN, create_vars(board)).await;
        data["createGeneration"]["id"].as_str().unwrap().to_string()
    }

    /// A generation row of `who` with `status`, inserted directly.
    async fn fixture(&self, who: Who, board: &str, status: &str, inputs: Value) -> String {
        let mut fx = GenerationFixture::completed_image(board, self.id(who));
        if status != "completed" {
            fx.status = status;
            fx.progress = 0.0;
            fx.storage_url = None;
            fx.output_metadata = json!({});
        }
        fx.input_artifacts = inputs;
        fx.insert(&self.app).await
    }

    /// A tag of `who`'s tenant.
    async fn tag(&self, who: Who, name: &str) -> String {
        let data = self.ok(who, CREATE_TAG, json!({"i": {"name": name}})).await;
        data["createTag"]["id"].as_str().unwrap().to_string()
    }

    /// The generation as the owner sees it (null once deleted).
    async fn generation(&self, id: &str) -> Value {
        self.ok(
            Who::Owner,
            "query($id: UUID!) { generation(id: $id) { id status tags { id } } }",
            json!({"id": id}),
        )
        .await["generation"]
            .clone()
    }
}

const CREATE_GEN: &str =
    "mutation($i: CreateGenerationInput!) { createGeneration(input: $i) { id userId tenantId status } }";

fn create_vars(board: &str) -> Value {
    json!({"i": {"boardId": board, "generatorName": "local-text", "artifactType": "TEXT", "inputParams": {"prompt": "hi"}}})
}

const CREATE_TAG: &str =
    "mutation($i: CreateTagInput!) { createTag(input: $i) { id tenantId name slug } }";
const UPDATE_TAG: &str = "mutation($i: UpdateTagInput!) { updateTag(input: $i) { id name } }";
const DELETE_TAG: &str = "mutation($id: UUID!) { deleteTag(id: $id) }";
const ADD_TAG: &str =
    "mutation($g: UUID!, $t: UUID!) { addTagToGeneration(generationId: $g, tagId: $t) { id } }";
const REMOVE_TAG: &str =
    "mutation($g: UUID!, $t: UUID!) { removeTagFromGeneration(generationId: $g, tagId: $t) }";

const GENERATION: &str = "query($id: UUID!) { generation(id: $id) {
  id board { id } user { id } tags { id }
  inputArtifacts { generationId role artifactType generation { id } }
  ancestry { depth role generation { id } parents { depth role generation { id } } }
} }";
const DESCENDANTS: &str = "query($id: UUID!) { generation(id: $id) {
  id descendants(maxDepth: 5) { depth generation { id } children { depth role generation { id } } }
} }";
const RECENT: &str = "query($b: UUID) { recentGenerations(boardId: $b) { id } }";
const ROOT_LIST: &str = "query($b: UUID) { generations(boardId: $b) { id } }";
const BOARD_LIST: &str =
    "query($b: UUID!) { board(id: $b) { id generationCount generations { id } } }";

#[tokio::test]
async fn generations_and_lineage_of_a_private_board_are_read_by_its_readers_only() {
    let w = World::new().await;
    let board = w.board(false).await;
    let a = w.fixture(Who::Owner, &board, "completed", json!([])).await;
    let b = w
        .fixture(
            Who::Editor,
            &board,
            "completed",
            json!([{"generation_id": a, "role": "image", "artifact_type": "image"}]),
        )
        .await;
    let both = vec![b.clone(), a.clone()];
    for who in EVERYONE {
        let reader = READERS.contains(&who);
        let expected = if reader { Allowed } else { Hidden };

        let res = w.as_(who, GENERATION, json!({"id": b})).await;
        assert_eq!(
            outcome(&res, "generation"),
            gate(who, &res, &expected),
            "generation {who:?}: {res}"
        );
        if reader {
            let g = &res["data"]["generation"];
            assert_eq!(g["board"]["id"], board.as_str(), "{who:?}");
            assert_eq!(g["user"]["id"], w.id(Who::Editor), "{who:?}");
            assert_eq!(
                g["inputArtifacts"],
                json!([{"generationId": a, "role": "image", "artifactType": "IMAGE", "generation": {"id": a}}]),
                "{who:?}"
            );
            assert_eq!(g["ancestry"]["generation"]["id"], b.as_str(), "{who:?}");
            assert_eq!(
                g["ancestry"]["parents"],
                json!([{"depth": 1, "role": "image", "generation": {"id": a}}]),
                "{who:?}"
            );
        }

        let res = w.as_(who, DESCENDANTS, json!({"id": a})).await;
        assert_eq!(
            outcome(&res, "generation"),
            gate(who, &res, &expected),
            "descendants {who:?}: {res}"
        );
        if reader {
            assert_eq!(
                res["data"]["generation"]["descendants"]["children"],
                json!([{"depth": 1, "role": "image", "generation": {"id": b}}]),
                "{who:?}"
            );
        }

        for (name, q, vars) in [
            ("recentGenerations", RECENT, json!({})),
            ("recentGenerations", RECENT, json!({"b": board})),
            ("generations", ROOT_LIST, json!({"b": board})),
            ("generations", ROOT_LIST, json!({})),
        ] {
            let res = w.as_(who, q, vars.clone()).await;
            assert_eq!(
                outcome(&res, name),
                gate(who, &res, &expected),
                "{name} {vars} {who:?}: {res}"
            );
            if reader {
                assert_eq!(ids(&res["data"][name]), both, "{name} {vars} {who:?}");
            }
        }

        let res = w.as_(who, BOARD_LIST, json!({"b": board})).await;
        assert_eq!(
            outcome(&res, "board"),
            gate(who, &res, &expected),
            "Board.generations {who:?}: {res}"
        );
        if reader {
            assert_eq!(res["data"]["board"]["generationCount"], 2);
            assert_eq!(ids(&res["data"]["board"]["generations"]), both);
        }
    }
}

#[tokio::test]
async fn generations_of_a_public_board_are_read_by_everyone_but_lineage_stays_in_the_tenant() {
    let w = World::new().await;
    let board = w.board(true).await;
    let a = w.fixture(Who::Owner, &board, "completed", json!([])).await;
    let b = w
        .fixture(
            Who::Owner,
            &board,
            "completed",
            json!([{"generation_id": a, "role": "image", "artifact_type": "image"}]),
        )
        .await;
    let both = vec![b.clone(), a.clone()];
    for who in EVERYONE {
        if who == Who::BadToken {
            // Public reads need no token, but a refused one is not read as "none".
            for (q, vars) in [
                (GENERATION, json!({"id": b})),
                (DESCENDANTS, json!({"id": a})),
                (RECENT, json!({"b": board})),
                (ROOT_LIST, json!({"b": board})),
                (BOARD_LIST, json!({"b": board})),
            ] {
                let res = w.as_(who, q, vars).await;
                assert_eq!(outcome(&res, ""), bad_token_refused(&res), "{q}");
            }
            continue;
        }
        // Ancestry and descendants follow the caller's tenant (anonymous: X-Tenant).
        let same_tenant = who != Who::OtherTenant;

        let res = w.as_(who, GENERATION, json!({"id": b})).await;
        assert_eq!(
            outcome(&res, "generation"),
            Allowed,
            "generation {who:?}: {res}"
        );
        let g = &res["data"]["generation"];
        assert_eq!(g["board"]["id"], board.as_str(), "{who:?}");
        assert_eq!(
            g["inputArtifacts"][0]["generation"]["id"],
            a.as_str(),
            "{who:?}"
        );
        let parents = if same_tenant {
            json!([{"depth": 1, "role": "image", "generation": {"id": a}}])
        } else {
            json!([])
        };
        assert_eq!(g["ancestry"]["parents"], parents, "ancestry {who:?}");

        let res = w.as_(who, DESCENDANTS, json!({"id": a})).await;
        assert_eq!(outcome(&res, "generation"), Allowed, "{who:?}: {res}");
        let children = if same_tenant {
            json!([{"depth": 1, "role": "image", "generation": {"id": b}}])
        } else {
            json!([])
        };
        assert_eq!(
            res["data"]["generation"]["descendants"]["children"], children,
            "descendants {who:?}"
        );

        // recentGenerations is empty for anonymous callers (contract §2.2), whatever the board.
        for vars in [json!({}), json!({"b": board})] {
            let res = w.as_(who, RECENT, vars.clone()).await;
            if who == Who::Anonymous {
                assert_eq!(outcome(&res, "recentGenerations"), Hidden, "{vars}: {res}");
            } else {
                matrix::count(1);
                assert_eq!(
                    ids(&res["data"]["recentGenerations"]),
                    both,
                    "{vars} {who:?}"
                );
            }
        }
        // A public board's generations are readable by anyone, as through Board.generations.
        let res = w.as_(who, ROOT_LIST, json!({"b": board})).await;
        matrix::count(2);
        assert_eq!(
            ids(&res["data"]["generations"]),
            both,
            "generations {who:?}: {res}"
        );
        let res = w.as_(who, BOARD_LIST, json!({"b": board})).await;
        assert_eq!(
            ids(&res["data"]["board"]["generations"]),
            both,
            "{who:?}: {res}"
        );
        assert_eq!(res["data"]["board"]["generationCount"], 2, "{who:?}");
    }
}

#[tokio::test]
async fn tags_are_read_within_the_callers_tenant_only() {
    let w = World::new().await;
    let ours = w.tag(Who::Owner, "Red").await;
    let theirs = w.tag(Who::OtherTenant, "Blue").await;
    // The same slug may exist in both tenants.
    let ours_shared = w.tag(Who::Owner, "Shared").await;
    let theirs_shared = w.tag(Who::OtherTenant, "Shared").await;
    assert_ne!(ours_shared, theirs_shared);
    let board = w.board(true).await;
    let g = w.fixture(Who::Owner, &board, "completed", json!([])).await;
    w.ok(Who::Owner, ADD_TAG, json!({"g": g, "t": ours})).await;

    let tag = "query($id: UUID!) { tag(id: $id) { id } }";
    let by_slug = "query($s: String!) { tagBySlug(slug: $s) { id } }";
    let tagged = "query($id: UUID!) { generation(id: $id) { tags { id } } }";
    for who in EVERYONE {
        if who == Who::BadToken {
            for (q, vars) in [
                ("{ tags { id } }", json!({})),
                (tag, json!({"id": ours})),
                (by_slug, json!({"s": "red"})),
                (tagged, json!({"id": g})),
            ] {
                let res = w.as_(who, q, vars).await;
                assert_eq!(outcome(&res, ""), bad_token_refused(&res), "{q}");
            }
            continue;
        }
        let list = w.ok(who, "{ tags { id } }", json!({})).await;
        matrix::count(1);
        let expected: Vec<String> = match who {
            Who::Anonymous => vec![],
            Who::OtherTenant => vec![theirs.clone(), theirs_shared.clone()],
            _ => vec![ours.clone(), ours_shared.clone()],
        };
        assert_eq!(ids(&list["tags"]), expected, "tags {who:?}");

        for (id, home) in [(&ours, "default"), (&theirs, "other")] {
            let res = w.as_(who, tag, json!({"id": id})).await;
            let visible = who != Who::Anonymous && World::tenant(who) == home;
            let expected = if visible { Allowed } else { Hidden };
            assert_eq!(outcome(&res, "tag"), expected, "tag {home} {who:?}: {res}");
        }
        for (slug, ours_id, theirs_id) in [
            ("red", Some(&ours), None),
            ("blue", None, Some(&theirs)),
            ("shared", Some(&ours_shared), Some(&theirs_shared)),
        ] {
            let res = w.as_(who, by_slug, json!({"s": slug})).await;
            let expected = match who {
                Who::Anonymous => None,
                Who::OtherTenant => theirs_id,
                _ => ours_id,
            };
            match expected {
                Some(id) => {
                    matrix::count(1);
                    assert_eq!(
                        res["data"]["tagBySlug"]["id"],
                        id.as_str(),
                        "{slug} {who:?}: {res}"
                    )
                }
                None => assert_eq!(outcome(&res, "tagBySlug"), Hidden, "{slug} {who:?}: {res}"),
            }
        }

        // Generation.tags has no tenant check of its own: whoever reads the generation sees them.
        let res = w.ok(who, tagged, json!({"id": g})).await;
        matrix::count(1);
        assert_eq!(
            ids(&res["generation"]["tags"]),
            vec![ours.clone()],
            "{who:?}"
        );
    }
}

#[tokio::test]
async fn create_generation_needs_edit_rights() {
    let w = World::new().await;
    for public in [false, true] {
        let board = w.board(public).await;
        for who in EVERYONE {
            let res = w.as_(who, CREATE_GEN, create_vars(&board)).await;
            let expected = if EDITORS.contains(&who) {
                Allowed
            } else if !signed_in(who) {
                refused(who, &res)
            } else if !public && !READERS.contains(&who) {
                not_found("Board not found")
            } else {
                forbidden("Permission denied: only board owner or editor can create generations")
            };
            assert_eq!(
                outcome(&res, "createGeneration"),
                expected,
                "public={public} {who:?}: {res}"
            );
            if expected == Allowed {
                let g = &res["data"]["createGeneration"];
                assert_eq!(g["userId"], w.id(who));
                assert_eq!(g["status"], "PENDING");
            }
        }
        let data = w.ok(Who::Owner, BOARD_LIST, json!({"b": board})).await;
        assert_eq!(data["board"]["generationCount"], 3, "public={public}");
    }
}

#[tokio::test]
async fn regenerate_and_retry_generation_need_edit_rights() {
    let w = World::new().await;
    for public in [false, true] {
        let board = w.board(public).await;
        let original = w.create_pending(Who::Owner, &board).await;
        for field in ["regenerate", "retryGeneration"] {
            let q = format!("mutation($id: UUID!) {{ {field}(id: $id) {{ id userId status }} }}");
            for who in EVERYONE {
                let res = w.as_(who, &q, json!({"id": original})).await;
                let expected = if EDITORS.contains(&who) {
                    Allowed
                } else if !signed_in(who) {
                    refused(who, &res)
                } else if !public && !READERS.contains(&who) {
                    not_found("Original generation not found")
                } else {
                    forbidden("Permission denied: only board owner or editor can regenerate")
                };
                assert_eq!(
                    outcome(&res, field),
                    expected,
                    "{field} public={public} {who:?}: {res}"
                );
                if expected == Allowed {
                    assert_eq!(res["data"][field]["userId"], w.id(who));
                    assert_ne!(res["data"][field]["id"], original.as_str());
                }
            }
        }
        // The original plus three copies per field.
        let data = w.ok(Who::Owner, BOARD_LIST, json!({"b": board})).await;
        assert_eq!(data["board"]["generationCount"], 7, "public={public}");
    }
}

/// A generation "of" `who` for cancel/delete: through the API when they may create one,
/// else inserted directly (e.g. made while they were an editor).
async fn own_generation(w: &World, who: Who, board: &str, status: &str) -> String {
    if status == "pending" && EDITORS.contains(&who) {
        w.create_pending(who, board).await
    } else {
        w.fixture(who, board, status, json!([])).await
    }
}

/// Owner: any generation; editor/admin: their own; other readers: FORBIDDEN; those who may not
/// read the board: NOT_FOUND, as for an unknown id.
fn manage_expectation(who: Who, creator: Who, verb: &str, public: bool) -> Outcome {
    let allowed = who == Who::Owner || (matches!(who, Who::Editor | Who::Admin) && who == creator);
    if allowed {
        Allowed
    } else if !public && !READERS.contains(&who) {
        not_found("Generation not found")
    } else {
        forbidden(&format!(
            "Permission denied: only board owner or generation creator can {verb}"
        ))
    }
}

#[tokio::test]
async fn cancel_generation_is_for_the_owner_or_the_editor_who_made_it() {
    let w = World::new().await;
    let q = "mutation($id: UUID!) { cancelGeneration(id: $id) { id status } }";
    for public in [false, true] {
        let board = w.board(public).await;
        for who in EVERYONE {
            let mut cases = vec![(Who::Owner, w.create_pending(Who::Owner, &board).await)];
            if signed_in(who) && who != Who::Owner {
                cases.push((who, own_generation(&w, who, &board, "pending").await));
            }
            for (creator, id) in cases {
                let res = w.as_(who, q, json!({"id": id})).await;
                let expected = if !signed_in(who) {
                    refused(who, &res)
                } else {
                    manage_expectation(who, creator, "cancel", public)
                };
                assert_eq!(
                    outcome(&res, "cancelGeneration"),
                    expected,
                    "public={public} {who:?} on {creator:?}'s: {res}"
                );
                let status = if expected == Allowed {
                    "CANCELLED"
                } else {
                    "PENDING"
                };
                assert_eq!(w.generation(&id).await["status"], status, "{who:?}");
            }
        }
    }
}

#[tokio::test]
async fn delete_generation_is_for_the_owner_or_the_editor_who_made_it() {
    let w = World::new().await;
    let q = "mutation($id: UUID!) { deleteGeneration(id: $id) }";
    for public in [false, true] {
        let board = w.board(public).await;
        for who in EVERYONE {
            let mut cases = vec![(
                Who::Owner,
                w.fixture(Who::Owner, &board, "completed", json!([])).await,
            )];
            if signed_in(who) && who != Who::Owner {
                cases.push((who, own_generation(&w, who, &board, "completed").await));
            }
            for (creator, id) in cases {
                let res = w.as_(who, q, json!({"id": id})).await;
                let expected = if !signed_in(who) {
                    refused(who, &res)
                } else {
                    manage_expectation(who, creator, "delete", public)
                };
                let got = match outcome(&res, "deleteGeneration") {
                    Hidden => panic!("deleteGeneration answered false: {res}"),
                    other => other,
                };
                assert_eq!(
                    got, expected,
                    "public={public} {who:?} on {creator:?}'s: {res}"
                );
                let gone = w.generation(&id).await.is_null();
                assert_eq!(gone, expected == Allowed, "{who:?} on {creator:?}'s");
            }
        }
    }
}

#[tokio::test]
async fn any_authenticated_user_creates_tags_in_their_own_tenant() {
    let w = World::new().await;
    for who in EVERYONE {
        let name = format!("{who:?} tag");
        let res = w.as_(who, CREATE_TAG, json!({"i": {"name": name}})).await;
        if !signed_in(who) {
            assert_eq!(outcome(&res, "createTag"), refused(who, &res), "{res}");
            continue;
        }
        assert_eq!(outcome(&res, "createTag"), Allowed, "{who:?}: {res}");
        let tag = &res["data"]["createTag"];
        // The tag is listed for the creator's tenant.
        let mine = w.ok(who, "{ tags { id tenantId } }", json!({})).await;
        assert!(
            mine["tags"]
                .as_array()
                .unwrap()
                .contains(&json!({"id": tag["id"], "tenantId": tag["tenantId"]})),
            "{who:?}: {mine}"
        );
    }
    let default_tags = w.ok(Who::Owner, "{ tags { tenantId } }", json!({})).await;
    let other_tags = w
        .ok(Who::OtherTenant, "{ tags { tenantId } }", json!({}))
        .await;
    assert_eq!(default_tags["tags"].as_array().unwrap().len(), 5);
    assert_eq!(other_tags["tags"].as_array().unwrap().len(), 1);
    assert_ne!(
        default_tags["tags"][0]["tenantId"],
        other_tags["tags"][0]["tenantId"]
    );
}

/// Tag mutations: allowed for authenticated users of the tag's tenant, `Tag not found` for
/// those of another tenant.
fn tag_expectation(who: Who, home: &str) -> Outcome {
    if World::tenant(who) == home {
        Allowed
    } else {
        not_found("Tag not found")
    }
}

#[tokio::test]
async fn update_tag_is_for_any_user_of_the_tags_tenant() {
    let w = World::new().await;
    for who in EVERYONE {
        for (owner, home) in [(Who::Owner, "default"), (Who::OtherTenant, "other")] {
            let id = w.tag(owner, &format!("{who:?} {home}")).await;
            let res = w
                .as_(
                    who,
                    UPDATE_TAG,
                    json!({"i": {"id": id, "name": format!("renamed by {who:?}")}}),
                )
                .await;
            let expected = if !signed_in(who) {
                refused(who, &res)
            } else {
                tag_expectation(who, home)
            };
            assert_eq!(
                outcome(&res, "updateTag"),
                expected,
                "{home} tag, {who:?}: {res}"
            );
            let stored = w
                .ok(
                    owner,
                    "query($id: UUID!) { tag(id: $id) { name } }",
                    json!({"id": id}),
                )
                .await;
            let name = if expected == Allowed {
                format!("renamed by {who:?}")
            } else {
                format!("{who:?} {home}")
            };
            assert_eq!(stored["tag"]["name"], name.as_str(), "{home} tag, {who:?}");
        }
    }
}

#[tokio::test]
async fn delete_tag_is_for_any_user_of_the_tags_tenant() {
    let w = World::new().await;
    for who in EVERYONE {
        for (owner, home) in [(Who::Owner, "default"), (Who::OtherTenant, "other")] {
            let id = w.tag(owner, &format!("{who:?} {home}")).await;
            let res = w.as_(who, DELETE_TAG, json!({"id": id})).await;
            let expected = if !signed_in(who) {
                refused(who, &res)
            } else {
                tag_expectation(who, home)
            };
            let got = match outcome(&res, "deleteTag") {
                Hidden => panic!("deleteTag answered false: {res}"),
                other => other,
            };
            assert_eq!(got, expected, "{home} tag, {who:?}: {res}");
            let stored = w
                .ok(
                    owner,
                    "query($id: UUID!) { tag(id: $id) { id } }",
                    json!({"id": id}),
                )
                .await;
            assert_eq!(
                stored["tag"].is_null(),
                expected == Allowed,
                "{home} tag, {who:?}"
            );
        }
    }
}

/// Tagging a generation of the default tenant: `Generation not found` outside the tenant and
/// when the board is not readable (as for an unknown id), then edit rights.
fn tagging_expectation(who: Who, public: bool) -> Outcome {
    if EDITORS.contains(&who) {
        Allowed
    } else if who == Who::OtherTenant || (who == Who::Stranger && !public) {
        not_found("Generation not found")
    } else {
        forbidden("Permission denied: only board owner or editor can modify generation tags")
    }
}

#[tokio::test]
async fn add_tag_to_generation_needs_the_tenant_read_access_and_edit_rights() {
    let w = World::new().await;
    for public in [false, true] {
        let board = w.board(public).await;
        let g = w.fixture(Who::Owner, &board, "completed", json!([])).await;
        for who in EVERYONE {
            // Each caller uses a tag of their own tenant, so only the generation decides.
            let owner = if who == Who::OtherTenant {
                Who::OtherTenant
            } else {
                Who::Owner
            };
            let tag = w.tag(owner, &format!("{who:?} {public}")).await;
            let res = w.as_(who, ADD_TAG, json!({"g": g, "t": tag})).await;
            let expected = if !signed_in(who) {
                refused(who, &res)
            } else {
                tagging_expectation(who, public)
            };
            assert_eq!(
                outcome(&res, "addTagToGeneration"),
                expected,
                "public={public} {who:?}: {res}"
            );
            let tagged = ids(&w.generation(&g).await["tags"]).contains(&tag);
            assert_eq!(tagged, expected == Allowed, "public={public} {who:?}");
        }
    }
}

#[tokio::test]
async fn remove_tag_from_generation_needs_the_tenant_read_access_and_edit_rights() {
    let w = World::new().await;
    for public in [false, true] {
        let board = w.board(public).await;
        let g = w.fixture(Who::Owner, &board, "completed", json!([])).await;
        let tag = w.tag(Who::Owner, &format!("linked {public}")).await;
        for who in EVERYONE {
            w.ok(Who::Owner, ADD_TAG, json!({"g": g, "t": tag})).await;
            let res = w.as_(who, REMOVE_TAG, json!({"g": g, "t": tag})).await;
            let expected = if !signed_in(who) {
                refused(who, &res)
            } else {
                tagging_expectation(who, public)
            };
            let got = match outcome(&res, "removeTagFromGeneration") {
                Hidden => panic!("removeTagFromGeneration answered false: {res}"),
                other => other,
            };
            assert_eq!(got, expected, "public={public} {who:?}: {res}");
            let tagged = ids(&w.generation(&g).await["tags"]).contains(&tag);
            assert_eq!(tagged, expected != Allowed, "public={public} {who:?}");
        }
    }
}

#[tokio::test]
async fn tagging_needs_the_generation_and_the_tag_in_the_callers_tenant() {
    let w = World::new().await;
    let board = w.board(true).await;
    let g = w.fixture(Who::Owner, &board, "completed", json!([])).await;
    let ours = w.tag(Who::Owner, "ours").await;
    let theirs = w.tag(Who::OtherTenant, "theirs").await;

    // A tag of another tenant is not found, even for the board owner.
    let res = w
        .as_(Who::Owner, ADD_TAG, json!({"g": g, "t": theirs}))
        .await;
    assert_eq!(
        outcome(&res, "addTagToGeneration"),
        not_found("Tag not found"),
        "{res}"
    );

    // A generation stored in another tenant (on the owner's board) is not found for the owner.
    let foreign = w.fixture(Who::Owner, &board, "completed", json!([])).await;
    fixtures::sql(
        &w.app,
        &format!(
            "UPDATE boards.generations SET tenant_id = (SELECT id FROM boards.tenants WHERE slug = 'other') WHERE id = '{foreign}'"
        ),
    )
    .await;
    for q in [ADD_TAG, REMOVE_TAG] {
        let res = w.as_(Who::Owner, q, json!({"g": foreign, "t": ours})).await;
        assert_eq!(
            error_of(&res),
            ("Generation not found".into(), "NOT_FOUND".into()),
            "{q}: {res}"
        );
    }
    // ...while the outsider still may not edit the owner's board.
    let res = w
        .as_(
            Who::OtherTenant,
            ADD_TAG,
            json!({"g": foreign, "t": theirs}),
        )
        .await;
    assert_eq!(
        outcome(&res, "addTagToGeneration"),
        forbidden("Permission denied: only board owner or editor can modify generation tags"),
        "{res}"
    );
}
