//! `GET /api/sse/generations/{id}/progress` (contract §3.3, with the runtime's fixes): a
//! snapshot of the row first, then live events as they arrive, and the end of the stream after
//! a terminal event; without Redis it polls the row instead. A generation the caller cannot
//! read is answered like an unknown one (404). Live events carry `id:`, their place in the
//! board's replay stream: with `Last-Event-ID` the stream replays the generation's events kept
//! since then instead of the snapshot (and sends the snapshot when they are no longer kept).
//! Keep-alives, access re-checks and the end on shutdown are the shared driver's (`feed.rs`).

use actix_web::{web, HttpRequest, HttpResponse};
use boards_shared::{
    db::models::{generations, Generation},
    domain::access,
    events::{BoardEvent, Event, ProgressEvent, StreamId},
    AppError,
};
use uuid::Uuid;

use super::{
    current_user, error_response,
    feed::{self, frame, Emit, Feed, Reader, Recheck},
};
use crate::{
    sse::{BoardFrame, Key},
    state::AppState,
};

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

async fn load(state: &AppState, id: Uuid) -> Option<Generation> {
    let mut conn = state.pool.get().await.ok()?;
    generations::find(&mut conn, id).await.ok().flatten()
}

/// One generation's stream. Progress never goes back on it: an event below the highest
/// progress sent (the `cancelled` event is built from the row, whose progress is written less
/// often than events are published) is sent at that height instead, terminal events included.
struct Progress {
    id: Uuid,
    board: Uuid,
    /// What the row said when the stream opened.
    opened: ProgressEvent,
    /// The last state sent and the highest progress sent.
    last: Option<ProgressEvent>,
    high: f64,
}

impl Progress {
    fn new(generation: &Generation) -> Self {
        Self {
            id: generation.id,
            board: generation.board_id,
            opened: ProgressEvent::snapshot(generation),
            last: None,
            high: 0.0,
        }
    }

    /// `event` at no less than the highest progress sent, as a frame.
    fn emit(&mut self, id: Option<StreamId>, event: &ProgressEvent, json: Option<&str>) -> Emit {
        let data = if event.progress < self.high {
            let mut raised = event.clone();
            raised.progress = self.high;
            let data = serde_json::to_string(&raised).unwrap_or_default();
            self.last = Some(raised);
            data
        } else {
            self.high = event.progress;
            self.last = Some(event.clone());
            json.map_or_else(
                || serde_json::to_string(event).unwrap_or_default(),
                str::to_string,
            )
        };
        Emit {
            frame: frame(id, None, &data),
            last: event.is_terminal(),
        }
    }

    /// The row's state, if it says more than what was sent: finished, or further along (events
    /// are best-effort: one may have been lost).
    fn row(&mut self, g: &Generation, any_change: bool) -> Option<Emit> {
        let now = ProgressEvent::snapshot(g);
        let changed = match &self.last {
            None => true,
            Some(last) if any_change => {
                now.status != last.status || (now.progress - last.progress).abs() > f64::EPSILON
            }
            Some(_) => now.is_terminal() || now.progress > self.high,
        };
        changed.then(|| self.emit(None, &now, None))
    }
}

impl Feed for Progress {
    const NAME: &'static str = "progress";

    fn board(&self) -> Uuid {
        self.board
    }

    fn opening(&mut self, resuming: bool) -> Option<Emit> {
        let snapshot = self.opened.clone();
        (!resuming).then(|| self.emit(None, &snapshot, None))
    }

    fn event(&mut self, f: &BoardFrame) -> Option<Emit> {
        let (event, json) = f.progress().filter(|(p, _)| p.job_id == self.id)?;
        Some(self.emit(f.id, event, Some(json)))
    }

    fn replayed(&mut self) -> Option<Emit> {
        // Finished without a kept terminal event (or before the client's id): say so and end.
        let snapshot = self.opened.clone();
        snapshot
            .is_terminal()
            .then(|| self.emit(None, &snapshot, None))
    }

    async fn reset(&mut self, state: &AppState, _reason: &str) -> Option<Emit> {
        // The client's shape has no reset: the current state is the snapshot.
        let g = load(state, self.id).await?;
        self.last = None;
        self.row(&g, true)
    }

    async fn lagged(&mut self, state: &AppState, _missed: u64) -> Option<Emit> {
        // Too slow for the live feed: send the current state instead.
        let g = load(state, self.id).await?;
        self.last = None;
        self.row(&g, true)
    }

    async fn recheck(&mut self, state: &AppState, user: Option<Uuid>) -> anyhow::Result<Recheck> {
        let Some(user) = user else {
            return Ok(Recheck::Revoked);
        };
        Ok(match readable(state, self.id, user).await? {
            Some(g) => Recheck::Keep(self.row(&g, false)),
            None => Recheck::Revoked,
        })
    }

    fn polls(&self) -> bool {
        true
    }

    async fn poll(&mut self, state: &AppState) -> Option<Emit> {
        let g = load(state, self.id).await?;
        self.row(&g, true)
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
    let not_found = || error_response(&AppError::not_found("Generation not found"));
    let Ok(id) = Uuid::parse_str(path.as_str()) else {
        return not_found();
    };
    let Some(user) = auth.user_id() else {
        return error_response(&AppError::unauthenticated("Authentication required"));
    };
    // Subscribe before reading the row, so that no event and no access change falls between
    // the check and the stream.
    let live = state.sse.subscribe(Key::Generation(id));
    let access = state.sse.access_changes();
    // Unknown and unreadable generations are answered alike: the id's existence is private.
    let generation = match readable(&state, id, user).await {
        Ok(Some(g)) => g,
        Ok(None) => return not_found(),
        Err(e) => return error_response(&e),
    };
    feed::accept(
        state,
        &req,
        Reader::user(user),
        (live, access),
        Progress::new(&generation),
    )
}

/// Queues a terminal `cancelled` event and the worker cancel signal for `generation`
/// (best-effort, never waits on Redis: workers also see the cancel at their next heartbeat).
pub fn announce_cancel(state: &AppState, generation: &Generation) {
    crate::sse::announce_board(
        state,
        generation.board_id,
        BoardEvent::GenerationProgress(ProgressEvent::snapshot(generation)),
    );
    state.events.publish(Event::Cancel(generation.id));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stream() -> Progress {
        let id = Uuid::new_v4();
        Progress {
            id,
            board: Uuid::new_v4(),
            opened: ProgressEvent::new(id, "pending", 0.0, "queued", None),
            last: None,
            high: 0.0,
        }
    }

    fn data(emit: &Emit) -> serde_json::Value {
        let text = std::str::from_utf8(&emit.frame).unwrap();
        let json = text.split("data: ").nth(1).unwrap().trim_end();
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn progress_never_goes_back_on_a_stream() {
        let mut s = stream();
        let at = |status: &str, p: f64| ProgressEvent::new(s.id, status, p, "processing", None);
        let (first, cancelled) = (at("processing", 18.0), at("cancelled", 9.0));
        let sent = s.emit(None, &first, None);
        assert!(!sent.last);
        assert_eq!(data(&sent)["progress"], 18.0);
        let sent = s.emit(Some("5-0".parse().unwrap()), &cancelled, None);
        assert!(sent.last, "a terminal event ends the stream");
        assert_eq!(data(&sent)["progress"], 18.0);
        assert_eq!(data(&sent)["status"], "cancelled");
        assert!(std::str::from_utf8(&sent.frame)
            .unwrap()
            .starts_with("id: 5-0\n"));
    }

    #[test]
    fn a_generation_stream_shows_only_its_generations_progress() {
        let mut s = stream();
        let other = ProgressEvent::new(Uuid::new_v4(), "processing", 50.0, "processing", None);
        let mine = ProgressEvent::new(s.id, "processing", 50.0, "processing", None);
        let id = Some("7-1".parse().unwrap());
        assert!(s
            .event(&BoardFrame::new(id, BoardEvent::GenerationProgress(other)))
            .is_none());
        assert!(s
            .event(&BoardFrame::new(id, BoardEvent::BoardUpdated))
            .is_none());
        let shown = s
            .event(&BoardFrame::new(
                id,
                BoardEvent::GenerationProgress(mine.clone()),
            ))
            .unwrap();
        assert_eq!(data(&shown), serde_json::to_value(&mine).unwrap());
        // The client's shape: the progress document, no `type`, no `event:` line.
        assert!(!std::str::from_utf8(&shown.frame)
            .unwrap()
            .contains("event:"));
    }
}
