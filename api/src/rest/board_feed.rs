//! `GET /api/sse/boards/{id}/events` (issue 12): the live feed of one board for everyone looking
//! at it. Every event frame has an `id:` (its place in the board's replay stream), an `event:`
//! (the [`BoardEvent`] type: `generation_created`, `generation_progress`, `generation_deleted`, `generation_tags_changed`,
//! `board_updated`, `board_deleted`, `members_changed`) and the event's JSON as `data:`. The
//! first frame is `event: ready`. **Replay:** with `Last-Event-ID`, the events kept since then
//! (`redis.board_events_max_len` / `_max_age_seconds`) come first, then live ones, none twice;
//! when events since that id were already dropped, `event: reset` says so and carries a
//! snapshot (the board's newest generations as progress documents). A client that fell behind
//! the live feed gets `event: resync` (refetch the board). Access is checked like the
//! board's: members, and anyone when it is public, signed in or not (404 `Board not found` for
//! unknown and unreadable boards alike; 401 for a token that does not verify), re-checked when
//! the board's access changes and every `api.sse_access_recheck_seconds`: a caller who lost it
//! gets `: access revoked` and the end of the stream; `board_deleted` ends it too. Streams
//! count against `api.sse_max_streams_per_user` with the per-generation ones (anonymous
//! readers per client address).
//!
//! [`BoardEvent`]: boards_shared::events::BoardEvent

use actix_web::{web, HttpRequest, HttpResponse};
use boards_shared::{
    db::models::{boards, generations},
    domain::access,
    events::ProgressEvent,
    AppError,
};
use serde_json::json;
use uuid::Uuid;

use super::{
    error_response,
    feed::{self, frame, Emit, Feed, Reader, Recheck},
};
use crate::{
    sse::{BoardFrame, Key},
    state::AppState,
};

#[derive(PartialEq)]
enum Access {
    Readable,
    Unreadable,
    /// The board does not exist (any more).
    Gone,
}

async fn access_of(state: &AppState, id: Uuid, user: Option<Uuid>) -> Result<Access, AppError> {
    let mut conn = state.pool.get().await?;
    let Some(board) = boards::find(&mut conn, id).await? else {
        return Ok(Access::Gone);
    };
    let relation = access::relation(&mut conn, &board, user).await?;
    Ok(if access::can_read(&board, relation) {
        Access::Readable
    } else {
        Access::Unreadable
    })
}

/// Generations in a `reset` snapshot, newest first.
const SNAPSHOT_GENERATIONS: i64 = 100;

/// One board's feed.
struct BoardFeed {
    board: Uuid,
}

impl Feed for BoardFeed {
    const NAME: &'static str = "board";

    fn board(&self) -> Uuid {
        self.board
    }

    fn opening(&mut self, _resuming: bool) -> Option<Emit> {
        let ready = json!({"board_id": self.board}).to_string();
        Some(Emit::more(frame(None, Some("ready"), &ready)))
    }

    fn event(&mut self, f: &BoardFrame) -> Option<Emit> {
        Some(Emit {
            frame: frame(f.id, Some(f.name()), f.data()),
            last: f.is_last(),
        })
    }

    fn replayed(&mut self) -> Option<Emit> {
        None
    }

    async fn reset(&mut self, state: &AppState, reason: &str) -> Option<Emit> {
        let generations = match state.pool.get().await {
            Ok(mut conn) => {
                generations::list_for_board(&mut conn, self.board, SNAPSHOT_GENERATIONS, 0)
                    .await
                    .unwrap_or_default()
            }
            Err(_) => vec![],
        };
        let snapshot: Vec<ProgressEvent> =
            generations.iter().map(ProgressEvent::snapshot).collect();
        let data = json!({
            "board_id": self.board,
            "reason": reason,
            "generations": snapshot,
        })
        .to_string();
        Some(Emit::more(frame(None, Some("reset"), &data)))
    }

    async fn lagged(&mut self, _state: &AppState, missed: u64) -> Option<Emit> {
        let data = json!({"board_id": self.board, "missed": missed}).to_string();
        Some(Emit::more(frame(None, Some("resync"), &data)))
    }

    async fn recheck(&mut self, state: &AppState, user: Option<Uuid>) -> anyhow::Result<Recheck> {
        Ok(match access_of(state, self.board, user).await? {
            Access::Readable => Recheck::Keep(None),
            Access::Unreadable => Recheck::Revoked,
            // Deleted (its `board_deleted` event may still be on its way): say so.
            Access::Gone => {
                let data = json!({"type": "board_deleted"}).to_string();
                Recheck::Gone(frame(None, Some("board_deleted"), &data))
            }
        })
    }
}

pub async fn stream(
    req: HttpRequest,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> HttpResponse {
    // Like the board itself: members, and anyone (signed in or not) when it is public. A
    // token that does not verify is refused, as everywhere.
    let auth = match crate::caller::authenticate(&state, &req).await {
        Ok(a) => a,
        Err(e) => return error_response(&e),
    };
    let not_found = || error_response(&AppError::not_found("Board not found"));
    let Ok(id) = Uuid::parse_str(path.as_str()) else {
        return not_found();
    };
    let user = auth.user_id();
    let reader = match user {
        Some(u) => Reader::user(u),
        None => Reader::anonymous(&state, &req),
    };
    // Subscribe before the access check, so that no event falls between the check and the feed.
    let live = state.sse.subscribe(Key::Board(id));
    let access = state.sse.access_changes();
    match access_of(&state, id, user).await {
        Ok(Access::Readable) => {}
        Ok(_) => return not_found(),
        Err(e) => return error_response(&e),
    }
    feed::accept(state, &req, reader, (live, access), BoardFeed { board: id })
}
