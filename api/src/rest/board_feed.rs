//! `GET /api/sse/boards/{id}/events` (issue 12): the live feed of one board for everyone looking
//! at it. Every event frame has an `id:` (its place in the board's replay stream), an `event:`
//! (the [`BoardEvent`] type: `generation_created`, `generation_progress`, `generation_deleted`, `generation_tags_changed`,
//! `board_updated`, `board_deleted`, `members_changed`) and the event's JSON as `data:`. The
//! first frame is `event: ready`. **Replay:** with `Last-Event-ID`, the events kept since then
//! (`redis.board_events_max_len` / `_max_age_seconds`) come first, then live ones, none twice;
//! when events since that id were already dropped, `event: reset` says so and carries a
//! snapshot (the board's newest generations as progress documents). A client that fell behind
//! the live feed gets `event: resync` (refetch the board). Access is checked like the
//! board's (404 `Board not found` for unknown and unreadable boards alike) and re-checked when
//! the board's access changes and every `api.sse_access_recheck_seconds`: a caller who lost it
//! gets `: access revoked` and the end of the stream; `board_deleted` ends it too. Streams
//! count against `api.sse_max_streams_per_user` with the per-generation ones.
//!
//! [`BoardEvent`]: boards_shared::events::BoardEvent

use std::time::Duration;

use actix_web::{web, HttpRequest, HttpResponse};
use boards_shared::{
    db::models::{boards, generations},
    domain::access,
    events::{BoardEvent, ProgressEvent, StreamId},
    AppError,
};
use bytes::Bytes;
use serde_json::json;
use slog::{info, warn};
use tokio::sync::{broadcast::error::RecvError, mpsc};
use uuid::Uuid;

use super::{
    current_user, error_response,
    progress::{
        deliver, event_stream, too_many_streams, ACCESS_REVOKED, KEEP_ALIVE, SHUTTING_DOWN,
    },
};
use crate::state::AppState;

#[derive(PartialEq)]
enum Access {
    Readable,
    Unreadable,
    /// The board does not exist (any more).
    Gone,
}

async fn access_of(state: &AppState, id: Uuid, user: Uuid) -> Result<Access, AppError> {
    let mut conn = state.pool.get().await?;
    let Some(board) = boards::find(&mut conn, id).await? else {
        return Ok(Access::Gone);
    };
    let relation = access::relation(&mut conn, &board, Some(user)).await?;
    Ok(if access::can_read(&board, relation) {
        Access::Readable
    } else {
        Access::Unreadable
    })
}

/// Replayed events fetched at once (the replay continues until the stream is exhausted).
const REPLAY_BATCH: usize = 1000;
/// Generations in a `reset` snapshot, newest first.
const SNAPSHOT_GENERATIONS: i64 = 100;

fn frame(id: Option<StreamId>, event: &str, data: &str) -> Bytes {
    Bytes::from(match id {
        Some(id) => format!("id: {id}\nevent: {event}\ndata: {data}\n\n"),
        None => format!("event: {event}\ndata: {data}\n\n"),
    })
}

/// What a feed resuming after `after` sends before the live events: the kept events since then
/// (`Ok(Some(last replayed id))`, or `Ok(None)` if there were none), or a `reset` with a
/// snapshot when some were dropped. `Err` when the feed must end (client gone, board deleted).
async fn replay(
    state: &AppState,
    tx: &mpsc::Sender<Bytes>,
    board: Uuid,
    after: StreamId,
) -> Result<Option<StreamId>, ()> {
    let mut last = None;
    let mut cursor = after;
    loop {
        let history = match state
            .events
            .board_history(board, cursor, REPLAY_BATCH)
            .await
        {
            Ok(h) => h,
            Err(e) => {
                warn!(state.logger, "board feed could not replay"; "board_id" => %board, "error" => %e);
                let data = json!({"board_id": board, "reason": "replay unavailable"}).to_string();
                return if deliver(state, tx, frame(None, "resync", &data)).await {
                    Ok(last)
                } else {
                    Err(())
                };
            }
        };
        if !history.complete {
            let generations = match state.pool.get().await {
                Ok(mut conn) => {
                    generations::list_for_board(&mut conn, board, SNAPSHOT_GENERATIONS, 0)
                        .await
                        .unwrap_or_default()
                }
                Err(_) => vec![],
            };
            let snapshot: Vec<ProgressEvent> =
                generations.iter().map(ProgressEvent::snapshot).collect();
            let data = json!({
                "board_id": board,
                "reason": "the events since Last-Event-ID are no longer kept",
                "generations": snapshot,
            })
            .to_string();
            return if deliver(state, tx, frame(None, "reset", &data)).await {
                Ok(last)
            } else {
                Err(())
            };
        }
        let count = history.events.len();
        for (id, event) in history.events {
            let data = serde_json::to_string(&event).unwrap_or_default();
            if !deliver(state, tx, frame(Some(id), event.name(), &data)).await
                || matches!(event, BoardEvent::BoardDeleted)
            {
                return Err(());
            }
            last = Some(id);
            cursor = id;
        }
        if count < REPLAY_BATCH {
            return Ok(last);
        }
    }
}

pub async fn stream(
    req: HttpRequest,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> HttpResponse {
    let auth = match current_user(&state, &req).await {
        Ok(a) => a,
        Err(res) => return res,
    };
    let not_found = || error_response(&AppError::not_found("Board not found"));
    let Ok(id) = Uuid::parse_str(path.as_str()) else {
        return not_found();
    };
    let Some(user) = auth.user_id() else {
        return error_response(&AppError::unauthenticated("Authentication required"));
    };
    // Subscribe before the access check, so that no event falls between the check and the feed.
    let mut events = state.sse.subscribe_board(id);
    let mut access_changes = state.sse.access_changes();
    let refused = match access_of(&state, id, user).await {
        Ok(Access::Readable) => None,
        Ok(_) => Some(not_found()),
        Err(e) => Some(error_response(&e)),
    };
    let max = state.config.api.sse_max_streams_per_user;
    let slot = match refused {
        Some(res) => Err(res),
        None => state
            .sse
            .open_stream(user, max)
            .ok_or_else(|| too_many_streams(max)),
    };
    let slot = match slot {
        Ok(slot) => slot,
        Err(res) => {
            drop(events);
            state.sse.release_board(id);
            return res;
        }
    };
    let resume = req
        .headers()
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<StreamId>().ok());

    let (tx, rx) = mpsc::channel::<Bytes>(16);
    let state_task = state.clone();
    actix_web::rt::spawn(async move {
        let _slot = slot;
        let state = state_task;
        state.metrics.sse_clients.inc();
        let ready = json!({"board_id": id}).to_string();
        let mut open = deliver(&state, &tx, frame(None, "ready", &ready)).await;
        // The newest event sent: live events up to it were replayed already.
        let mut last_sent = resume;
        if let (true, Some(after)) = (open, resume) {
            match replay(&state, &tx, id, after).await {
                Ok(last) => last_sent = last.or(last_sent),
                Err(()) => open = false,
            }
        }
        let mut keep_alive =
            tokio::time::interval_at(tokio::time::Instant::now() + KEEP_ALIVE, KEEP_ALIVE);
        let recheck_every = Duration::from_secs(state.config.api.sse_access_recheck_seconds);
        let mut recheck =
            tokio::time::interval_at(tokio::time::Instant::now() + recheck_every, recheck_every);
        let mut access_feed = true;
        while open {
            let mut check_access = false;
            tokio::select! {
                received = events.recv() => match received {
                    Ok(f) => {
                        let seen = matches!((f.id, last_sent), (Some(new), Some(last)) if new <= last);
                        if !seen {
                            open = deliver(&state, &tx, frame(f.id, f.name, &f.data)).await && !f.last;
                            last_sent = f.id.or(last_sent);
                            keep_alive.reset();
                        }
                    }
                    Err(RecvError::Lagged(missed)) => {
                        let data = json!({"board_id": id, "missed": missed}).to_string();
                        open = deliver(&state, &tx, frame(None, "resync", &data)).await;
                    }
                    Err(RecvError::Closed) => open = false,
                },
                _ = keep_alive.tick() => {
                    open = deliver(&state, &tx, Bytes::from_static(b": keep-alive\n\n")).await;
                }
                changed = access_changes.recv(), if access_feed => match changed {
                    Ok(board) => check_access = board == id,
                    Err(RecvError::Lagged(_)) => check_access = true,
                    Err(RecvError::Closed) => access_feed = false,
                },
                _ = recheck.tick() => check_access = true,
                _ = state.sse.shutting_down() => {
                    let _ = tx.try_send(Bytes::from_static(SHUTTING_DOWN));
                    open = false;
                }
                _ = tx.closed() => open = false,
            }
            if check_access && open {
                match access_of(&state, id, user).await {
                    Ok(Access::Readable) => {}
                    // Deleted (its `board_deleted` event may still be on its way): say so.
                    Ok(Access::Gone) => {
                        let data = json!({"type": "board_deleted"}).to_string();
                        let _ = deliver(&state, &tx, frame(None, "board_deleted", &data)).await;
                        open = false;
                    }
                    Ok(Access::Unreadable) => {
                        info!(state.logger, "board feed ended: access revoked";
                            "board_id" => %id, "user_id" => %user);
                        let _ = tx.try_send(Bytes::from_static(ACCESS_REVOKED));
                        open = false;
                    }
                    Err(e) => warn!(state.logger, "board feed could not re-check access";
                        "board_id" => %id, "error" => ?e),
                }
            }
        }
        drop(events);
        state.sse.release_board(id);
        state.metrics.sse_clients.dec();
    });

    event_stream(rx)
}
