//! `GET /api/sse/generations/{id}/progress` (contract §3.3, with the runtime's fixes): a
//! snapshot of the row first, then live events as they arrive, `id:` on every event,
//! `: keep-alive` every 15 s, and the end of the stream after a terminal event. Without Redis
//! it polls the row instead.

use std::time::Duration;

use actix_web::{http::header, web, HttpRequest, HttpResponse};
use bigdecimal::ToPrimitive as _;
use boards_shared::{
    db::models::{generations, Generation},
    domain::access,
    progress::{is_terminal, phase_of, ProgressEvent},
    AppError,
};
use bytes::Bytes;
use slog::warn;
use tokio::sync::{broadcast::error::RecvError, mpsc};
use uuid::Uuid;

use super::{current_user, error_response};
use crate::state::AppState;

const KEEP_ALIVE: Duration = Duration::from_secs(15);
const POLL: Duration = Duration::from_secs(1);

fn snapshot(g: &Generation) -> ProgressEvent {
    let message = match g.status.as_str() {
        "failed" | "cancelled" => g.error_message.clone(),
        "completed" => Some("Completed".into()),
        _ => None,
    };
    let mut e = ProgressEvent::new(
        g.id,
        &g.status,
        g.progress.to_f64().unwrap_or(0.0),
        phase_of(&g.status),
        message,
    );
    if let (true, Some(url)) = (g.status == "completed", &g.storage_url) {
        e.artifacts = vec![
            serde_json::json!({"url": url, "type": g.artifact_type, "metadata": g.output_metadata}),
        ];
    }
    e
}

fn frame(id: u64, data: &str) -> Bytes {
    Bytes::from(format!("id: {id}\ndata: {data}\n\n"))
}

async fn load(state: &AppState, id: Uuid) -> Result<Option<Generation>, AppError> {
    let mut conn = state.pool.get().await?;
    Ok(generations::find(&mut conn, id).await?)
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
    // Subscribe before reading the row, so that no event falls between snapshot and stream.
    let mut events = state.sse.subscribe(id);
    let generation = match load(&state, id).await {
        Ok(Some(g)) => g,
        Ok(None) => {
            state.sse.release(id);
            return not_found();
        }
        Err(e) => {
            state.sse.release(id);
            return error_response(&e);
        }
    };
    let readable = async {
        let mut conn = state.pool.get().await?;
        let board = boards_shared::db::models::boards::find(&mut conn, generation.board_id).await?;
        Ok::<_, AppError>(match board {
            Some(b) => {
                let rel = access::relation(&mut conn, &b, auth.user_id()).await?;
                access::can_read(&b, rel)
            }
            None => false,
        })
    }
    .await;
    match readable {
        Ok(true) => {}
        Ok(false) => {
            state.sse.release(id);
            return error_response(&AppError::forbidden(
                "You don't have permission to access this generation",
            ));
        }
        Err(e) => {
            state.sse.release(id);
            return error_response(&e);
        }
    }
    let first_id = req
        .headers()
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map_or(0, |n| n + 1);

    let (tx, mut rx) = mpsc::channel::<Bytes>(16);
    let state_task = state.clone();
    actix_web::rt::spawn(async move {
        let state = state_task;
        state.metrics.sse_clients.inc();
        let mut seq = first_id;
        let mut last = snapshot(&generation);
        let send = |seq: &mut u64, data: &str| {
            let f = frame(*seq, data);
            *seq += 1;
            f
        };
        let first = serde_json::to_string(&last).unwrap_or_default();
        let mut open = tx.send(send(&mut seq, &first)).await.is_ok() && !last.is_terminal();
        let mut keep_alive =
            tokio::time::interval_at(tokio::time::Instant::now() + KEEP_ALIVE, KEEP_ALIVE);
        let mut poll = tokio::time::interval(POLL);
        let mut polling_logged = false;
        while open {
            tokio::select! {
                received = events.recv() => match received {
                    Ok(payload) => {
                        let terminal = serde_json::from_str::<serde_json::Value>(&payload)
                            .ok()
                            .and_then(|v| v.get("status").and_then(|s| s.as_str()).map(is_terminal))
                            .unwrap_or(false);
                        open = tx.send(send(&mut seq, &payload)).await.is_ok() && !terminal;
                        keep_alive.reset();
                    }
                    Err(RecvError::Lagged(_)) => {
                        // Too slow for the live feed: send the current state instead.
                        if let Ok(Some(g)) = load(&state, id).await {
                            last = snapshot(&g);
                            let data = serde_json::to_string(&last).unwrap_or_default();
                            open = tx.send(send(&mut seq, &data)).await.is_ok() && !last.is_terminal();
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
                        let now = snapshot(&g);
                        if now.status != last.status || (now.progress - last.progress).abs() > f64::EPSILON {
                            last = now;
                            let data = serde_json::to_string(&last).unwrap_or_default();
                            open = tx.send(send(&mut seq, &data)).await.is_ok() && !last.is_terminal();
                        }
                    }
                }
                _ = keep_alive.tick() => {
                    open = tx.send(Bytes::from_static(b": keep-alive\n\n")).await.is_ok();
                }
                _ = tx.closed() => open = false,
            }
        }
        drop(events);
        state.sse.release(id);
        state.metrics.sse_clients.dec();
    });

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
    let prefix = &state.config.redis.channel_prefix;
    state.publisher.event(prefix, &snapshot(generation));
    state.publisher.publish(
        boards_shared::progress::cancel_channel(prefix),
        generation.id.to_string(),
    );
}
