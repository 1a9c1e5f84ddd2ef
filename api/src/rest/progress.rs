//! `GET /api/sse/generations/{id}/progress` (contract §3.3, with the runtime's fixes): a
//! snapshot of the row first, then live events as they arrive, `id:` on every event,
//! `: keep-alive` every 15 s, and the end of the stream after a terminal event. Without Redis
//! it polls the row instead. A generation the caller cannot read is answered like an unknown
//! one (404). An open stream re-checks the caller's access when its board's access changes
//! (and every `api.sse_access_recheck_seconds`) and ends with `: access revoked` once it is
//! gone; on shutdown every stream ends with `: server shutting down` and `retry: 1000`.

use std::{sync::Arc, time::Duration};

use actix_web::{http::header, web, HttpRequest, HttpResponse};
use boards_shared::{
    db::models::{generations, Generation},
    domain::access,
    events::{is_terminal, Event, ProgressEvent},
    AppError,
};
use bytes::Bytes;
use serde_json::json;
use slog::{info, warn};
use tokio::sync::{broadcast::error::RecvError, mpsc};
use uuid::Uuid;

use super::{current_user, error_response};
use crate::state::AppState;

pub(crate) const KEEP_ALIVE: Duration = Duration::from_secs(15);
const POLL: Duration = Duration::from_secs(1);
/// The last frame of a stream whose caller lost access to the generation's board (a comment:
/// clients ignore it; the Boards client sees the stream end without a terminal status).
pub(crate) const ACCESS_REVOKED: &[u8] = b": access revoked\n\n";
/// The last frame when the server shuts down: a comment, and `retry:` so that an EventSource
/// reconnects (to another replica) after a second, continuing from `Last-Event-ID`.
pub(crate) const SHUTTING_DOWN: &[u8] = b": server shutting down, reconnect\nretry: 1000\n\n";

fn snapshot(g: &Generation) -> ProgressEvent {
    ProgressEvent::snapshot(g)
}

/// One live event for a stream whose highest progress so far is `high`: an event below it
/// (the `cancelled` event is built from the row, whose progress is written less often than
/// events are published) is sent at `high` instead, so progress never goes back on a stream,
/// terminal events included. Returns the payload to send and whether the event is terminal.
fn monotonic(payload: Arc<str>, high: &mut f64) -> (Arc<str>, bool) {
    let Ok(mut event) = serde_json::from_str::<serde_json::Value>(&payload) else {
        return (payload, false);
    };
    let terminal = event
        .get("status")
        .and_then(|s| s.as_str())
        .is_some_and(is_terminal);
    let progress = event.get("progress").and_then(serde_json::Value::as_f64);
    match progress {
        Some(p) if p < *high => {
            event["progress"] = serde_json::json!(*high);
            let rewritten = serde_json::to_string(&event).map_or(payload, Arc::from);
            (rewritten, terminal)
        }
        Some(p) => {
            *high = p;
            (payload, terminal)
        }
        None => (payload, terminal),
    }
}

/// Sends one frame to the client unless the server shuts down first: a client that stops
/// reading fills the channel, and its stream must still end on shutdown. `false` when the
/// frame was not delivered (the stream is over).
pub(crate) async fn deliver(state: &AppState, tx: &mpsc::Sender<Bytes>, frame: Bytes) -> bool {
    tokio::select! {
        sent = tx.send(frame) => sent.is_ok(),
        _ = state.sse.shutting_down() => false,
    }
}

fn frame(id: u64, data: &str) -> Bytes {
    Bytes::from(format!("id: {id}\ndata: {data}\n\n"))
}

async fn load(state: &AppState, id: Uuid) -> Result<Option<Generation>, AppError> {
    let mut conn = state.pool.get().await?;
    Ok(generations::find(&mut conn, id).await?)
}

/// The generation, when it exists and `user` may read its board.
async fn readable(state: &AppState, id: Uuid, user: Uuid) -> Result<Option<Generation>, AppError> {
    let mut conn = state.pool.get().await?;
    let Some(generation) = generations::find(&mut conn, id).await? else {
        return Ok(None);
    };
    let Some(board) =
        boards_shared::db::models::boards::find(&mut conn, generation.board_id).await?
    else {
        return Ok(None);
    };
    let relation = access::relation(&mut conn, &board, Some(user)).await?;
    Ok(access::can_read(&board, relation).then_some(generation))
}

pub(crate) fn too_many_streams(max: usize) -> HttpResponse {
    HttpResponse::TooManyRequests().json(json!({
        "detail": format!(
            "Too many open progress streams: at most {max} per user. Close one and try again."
        ),
        "code": "TOO_MANY_REQUESTS",
    }))
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
    let not_found = || error_response(&AppError::not_found("Generation not found"));
    let Ok(id) = Uuid::parse_str(path.as_str()) else {
        return not_found();
    };
    let Some(user) = auth.user_id() else {
        return error_response(&AppError::unauthenticated("Authentication required"));
    };
    // Subscribe before reading the row, so that no event and no access change falls between
    // the check and the stream.
    let mut events = state.sse.subscribe(id);
    let mut access_changes = state.sse.access_changes();
    // Unknown and unreadable generations are answered alike: the id's existence is private.
    let generation = match readable(&state, id, user).await {
        Ok(Some(g)) => g,
        Ok(None) => {
            drop(events);
            state.sse.release(id);
            return not_found();
        }
        Err(e) => {
            drop(events);
            state.sse.release(id);
            return error_response(&e);
        }
    };
    let max = state.config.api.sse_max_streams_per_user;
    let Some(slot) = state.sse.open_stream(user, max) else {
        drop(events);
        state.sse.release(id);
        return too_many_streams(max);
    };
    let board_id = generation.board_id;
    let first_id = req
        .headers()
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map_or(0, |n| n + 1);

    let (tx, rx) = mpsc::channel::<Bytes>(16);
    let state_task = state.clone();
    actix_web::rt::spawn(async move {
        let _slot = slot;
        let state = state_task;
        state.metrics.sse_clients.inc();
        let mut seq = first_id;
        let mut last = snapshot(&generation);
        // The highest progress this stream has sent: nothing later goes below it.
        let mut high = last.progress;
        let send = |seq: &mut u64, data: &str| {
            let f = frame(*seq, data);
            *seq += 1;
            f
        };
        let first = serde_json::to_string(&last).unwrap_or_default();
        let mut open = deliver(&state, &tx, send(&mut seq, &first)).await && !last.is_terminal();
        let mut keep_alive =
            tokio::time::interval_at(tokio::time::Instant::now() + KEEP_ALIVE, KEEP_ALIVE);
        let mut poll = tokio::time::interval(POLL);
        let mut polling_logged = false;
        let recheck_every = Duration::from_secs(state.config.api.sse_access_recheck_seconds);
        let mut recheck =
            tokio::time::interval_at(tokio::time::Instant::now() + recheck_every, recheck_every);
        let mut access_feed = true;
        while open {
            let mut check_access = false;
            tokio::select! {
                received = events.recv() => match received {
                    Ok(payload) => {
                        let (payload, terminal) = monotonic(payload, &mut high);
                        open = deliver(&state, &tx, send(&mut seq, &payload)).await && !terminal;
                        keep_alive.reset();
                    }
                    Err(RecvError::Lagged(_)) => {
                        // Too slow for the live feed: send the current state instead.
                        if let Ok(Some(g)) = load(&state, id).await {
                            last = snapshot(&g);
                            last.progress = last.progress.max(high);
                            high = last.progress;
                            let data = serde_json::to_string(&last).unwrap_or_default();
                            open = deliver(&state, &tx, send(&mut seq, &data)).await && !last.is_terminal();
                        }
                    }
                    Err(RecvError::Closed) => open = false,
                },
                _ = poll.tick(), if !state.sse.redis_up() => {
                    if !polling_logged {
                        warn!(state.logger, "Redis unavailable: progress stream polls the database"; "generation_id" => %id);
                        polling_logged = true;
                    }
                    if let Ok(Some(g)) = load(&state, id).await {
                        let mut now = snapshot(&g);
                        now.progress = now.progress.max(high);
                        if now.status != last.status || (now.progress - last.progress).abs() > f64::EPSILON {
                            last = now;
                            high = last.progress;
                            let data = serde_json::to_string(&last).unwrap_or_default();
                            open = deliver(&state, &tx, send(&mut seq, &data)).await && !last.is_terminal();
                        }
                    }
                }
                _ = keep_alive.tick() => {
                    open = deliver(&state, &tx, Bytes::from_static(b": keep-alive\n\n")).await;
                }
                changed = access_changes.recv(), if access_feed => match changed {
                    Ok(board) => check_access = board == board_id,
                    Err(RecvError::Lagged(_)) => check_access = true,
                    Err(RecvError::Closed) => access_feed = false,
                },
                _ = recheck.tick() => check_access = true,
                _ = state.sse.shutting_down() => {
                    // Best-effort: a client that does not read gets no last frame.
                    let _ = tx.try_send(Bytes::from_static(SHUTTING_DOWN));
                    open = false;
                }
                _ = tx.closed() => open = false,
            }
            if check_access && open {
                match readable(&state, id, user).await {
                    Ok(Some(g)) => {
                        // Events are best-effort: if one was lost (Redis dropped it, or the
                        // subscription silently died), the row tells. A finished job ends the
                        // stream; progress that moved on is sent.
                        let mut now = snapshot(&g);
                        if now.is_terminal() || now.progress > high {
                            now.progress = now.progress.max(high);
                            high = now.progress;
                            let data = serde_json::to_string(&now).unwrap_or_default();
                            open = deliver(&state, &tx, send(&mut seq, &data)).await
                                && !now.is_terminal();
                            last = now;
                        }
                    }
                    Ok(None) => {
                        info!(state.logger, "progress stream ended: access revoked";
                            "generation_id" => %id, "user_id" => %user);
                        let _ = tx.try_send(Bytes::from_static(ACCESS_REVOKED));
                        open = false;
                    }
                    // Keep streaming: the next check decides.
                    Err(e) => warn!(state.logger, "progress stream could not re-check access";
                        "generation_id" => %id, "error" => ?e),
                }
            }
        }
        drop(events);
        state.sse.release(id);
        state.metrics.sse_clients.dec();
    });

    event_stream(rx)
}

/// The `text/event-stream` response whose frames a stream's task sends through `rx` (no
/// caching, no proxy buffering).
pub(crate) fn event_stream(mut rx: mpsc::Receiver<Bytes>) -> HttpResponse {
    let body = futures::stream::poll_fn(move |cx| {
        rx.poll_recv(cx).map(|o| o.map(Ok::<_, actix_web::Error>))
    });
    HttpResponse::Ok()
        .content_type("text/event-stream; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .insert_header(("X-Accel-Buffering", "no"))
        .streaming(body)
}

/// Queues a terminal `cancelled` event and the worker cancel signal for `generation`
/// (best-effort, never waits on Redis: workers also see the cancel at their next heartbeat).
pub fn announce_cancel(state: &AppState, generation: &Generation) {
    let event = snapshot(generation);
    crate::sse::announce_board(
        state,
        generation.board_id,
        boards_shared::events::BoardEvent::GenerationProgress(event.clone()),
    );
    state.events.publish(Event::Progress(event));
    state.events.publish(Event::Cancel(generation.id));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_never_goes_back_on_a_stream() {
        let mut high = 0.0;
        let ev = |status: &str, p: f64| -> Arc<str> {
            Arc::from(format!(
                r#"{{"job_id":"x","status":"{status}","progress":{p},"phase":"p"}}"#
            ))
        };
        let (out, terminal) = monotonic(ev("processing", 18.0), &mut high);
        assert_eq!((high, terminal), (18.0, false));
        assert!(out.contains("18"));
        let (out, terminal) = monotonic(ev("cancelled", 9.0), &mut high);
        assert!(terminal);
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(v["progress"], 18.0);
        assert_eq!(v["status"], "cancelled");
        // Key order is kept (the client does not care, but logs and diffs do).
        assert!(
            out.starts_with(r#"{"job_id":"x","status":"cancelled""#),
            "{out}"
        );
    }
}
