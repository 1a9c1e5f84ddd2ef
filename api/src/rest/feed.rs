//! What every Server-Sent Event stream of the API does alike, in one driver: the opening
//! frames, the replay after `Last-Event-ID` from the board's kept events, live frames without
//! repeats, `: keep-alive` every 15 s, access re-checks (when the board's access changes and
//! every `api.sse_access_recheck_seconds`; a caller who lost it gets `: access revoked`), and
//! the end on shutdown (`: server shutting down` with `retry: 1000`). A [`Feed`] says what one
//! kind of stream sends: the per-generation progress stream (`progress.rs`) and the board feed
//! (`board_feed.rs`).

use std::time::Duration;

use actix_web::{http::header, web, HttpRequest, HttpResponse};
use boards_shared::events::StreamId;
use bytes::Bytes;
use serde_json::json;
use slog::{info, warn};
use tokio::sync::{
    broadcast::{self, error::RecvError},
    mpsc,
};
use uuid::Uuid;

use crate::{
    sse::{BoardFrame, Live, StreamSlot},
    state::AppState,
};

pub(crate) const KEEP_ALIVE: Duration = Duration::from_secs(15);
/// How often a progress stream reads its row while live events do not flow.
const POLL: Duration = Duration::from_secs(1);
/// The last frame of a stream whose caller lost access to the board (a comment: clients
/// ignore it; the Boards client sees the stream end without a terminal status).
const ACCESS_REVOKED: &[u8] = b": access revoked\n\n";
/// The last frame when the server shuts down: a comment, and `retry:` so that an EventSource
/// reconnects (to another replica) after a second, continuing from `Last-Event-ID`.
const SHUTTING_DOWN: &[u8] = b": server shutting down, reconnect\nretry: 1000\n\n";
/// Kept events read at once while replaying (the replay goes on until none are left).
const REPLAY_BATCH: usize = 1000;

/// One frame for the client, and whether the stream ends after it.
pub(crate) struct Emit {
    pub frame: Bytes,
    pub last: bool,
}

impl Emit {
    pub fn more(frame: Bytes) -> Self {
        Self { frame, last: false }
    }
}

/// An SSE frame: `id:` when the event has a place in the board's replay stream, `event:` when
/// the stream names its events.
pub(crate) fn frame(id: Option<StreamId>, event: Option<&str>, data: &str) -> Bytes {
    let mut out = String::with_capacity(data.len() + 64);
    if let Some(id) = id {
        out.push_str(&format!("id: {id}\n"));
    }
    if let Some(event) = event {
        out.push_str(&format!("event: {event}\n"));
    }
    out.push_str("data: ");
    out.push_str(data);
    out.push_str("\n\n");
    Bytes::from(out)
}

/// The outcome of an access re-check.
pub(crate) enum Recheck {
    /// Still readable; maybe with something to send (what the row says and the events missed).
    Keep(Option<Emit>),
    /// The caller may no longer read the board.
    Revoked,
    /// The subject is gone: this last frame says so.
    Gone(Bytes),
}

/// One kind of stream. `Option<Emit>` results are sent when present; the stream ends after an
/// emit marked `last`.
pub(crate) trait Feed {
    /// What the logs call it.
    const NAME: &'static str;
    /// The board whose access governs the stream.
    fn board(&self) -> Uuid;
    /// The first frame, before any replay (`resuming`: the client sent a usable
    /// `Last-Event-ID`).
    fn opening(&mut self, resuming: bool) -> Option<Emit>;
    /// A live or replayed board event; `None` when this stream does not show it.
    fn event(&mut self, frame: &BoardFrame) -> Option<Emit>;
    /// Every kept event since `Last-Event-ID` was sent.
    fn replayed(&mut self) -> Option<Emit>;
    /// Events since `Last-Event-ID` are no longer kept (or cannot be read): start over.
    async fn reset(&mut self, state: &AppState, reason: &str) -> Option<Emit>;
    /// The stream missed `missed` live events (it read too slowly).
    async fn lagged(&mut self, state: &AppState, missed: u64) -> Option<Emit>;
    /// Whether `user` (`None`: an anonymous reader of a public board) may still read.
    async fn recheck(&mut self, state: &AppState, user: Option<Uuid>) -> anyhow::Result<Recheck>;
    /// Whether the stream reads its row while live events do not flow (Redis down).
    fn polls(&self) -> bool {
        false
    }
    async fn poll(&mut self, _state: &AppState) -> Option<Emit> {
        None
    }
}

/// Sends one frame to the client unless the server shuts down first: a client that stops
/// reading fills the channel, and its stream must still end on shutdown. `false` when the
/// frame was not delivered (the stream is over).
async fn deliver(state: &AppState, tx: &mpsc::Sender<Bytes>, frame: Bytes) -> bool {
    tokio::select! {
        sent = tx.send(frame) => sent.is_ok(),
        _ = state.sse.shutting_down() => false,
    }
}

/// Sends `emit` if any; `false` when the stream is over (after a last frame, or the client left).
async fn send(state: &AppState, tx: &mpsc::Sender<Bytes>, emit: Option<Emit>) -> bool {
    match emit {
        Some(Emit { frame, last }) => deliver(state, tx, frame).await && !last,
        None => true,
    }
}

fn too_many_streams(max: usize) -> HttpResponse {
    HttpResponse::TooManyRequests().json(json!({
        "detail": format!(
            "Too many open progress streams: at most {max} per user. Close one and try again."
        ),
        "code": "TOO_MANY_REQUESTS",
    }))
}

/// The `text/event-stream` response whose frames a stream's task sends through `rx` (no
/// caching, no proxy buffering).
fn event_stream(mut rx: mpsc::Receiver<Bytes>) -> HttpResponse {
    let body = futures::stream::poll_fn(move |cx| {
        rx.poll_recv(cx).map(|o| o.map(Ok::<_, actix_web::Error>))
    });
    HttpResponse::Ok()
        .content_type("text/event-stream; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .insert_header(("X-Accel-Buffering", "no"))
        .streaming(body)
}

/// What an accepted stream holds: its live frames and access changes (both subscribed before
/// the access check, so nothing falls between), its place in the user's cap, and the
/// `Last-Event-ID` it resumes after.
struct Opened {
    user: Option<Uuid>,
    live: Live,
    access: broadcast::Receiver<Uuid>,
    slot: StreamSlot,
    resume: Option<StreamId>,
}

/// The replay id the client resumes after (`Last-Event-ID`); anything else (absent, a counter
/// from before replay existed, or an id from the future that would hide every live event) is
/// no id: the stream starts afresh.
fn last_event_id(req: &HttpRequest) -> Option<StreamId> {
    let now_ms = u64::try_from(chrono::Utc::now().timestamp_millis()).unwrap_or(0);
    req.headers()
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<StreamId>().ok())
        .filter(|id| id.ms <= now_ms.saturating_add(60_000))
}

/// Who a stream is for: a user, or an anonymous reader (of a public board) counted by address.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Reader {
    pub user: Option<Uuid>,
    /// Whose places in the stream cap it takes: the user's, or the address's.
    pub cap_key: Uuid,
}

impl Reader {
    pub fn user(user: Uuid) -> Self {
        Self {
            user: Some(user),
            cap_key: user,
        }
    }

    /// An anonymous reader, capped per client address (per /64 for IPv6).
    pub fn anonymous(state: &AppState, req: &HttpRequest) -> Self {
        let address = crate::caller::client_ip(req, &state.config.api.trusted_proxies)
            .map(boards_shared::ratelimit::ip_bucket)
            .unwrap_or_default();
        Self {
            user: None,
            cap_key: {
                use std::hash::{Hash as _, Hasher as _};
                // Deterministic within the process (SipHash with fixed keys), which is all
                // the cap needs; the marker keeps these apart from user ids.
                let mut h = std::collections::hash_map::DefaultHasher::new();
                address.hash(&mut h);
                Uuid::from_u64_pair(h.finish(), 0xa11_0a11)
            },
        }
    }
}

/// Takes one of the reader's stream places (429 when they hold all of them) and starts the
/// stream: the response.
pub(crate) fn accept<F: Feed + 'static>(
    state: web::Data<AppState>,
    req: &HttpRequest,
    reader: Reader,
    (live, access): (Live, broadcast::Receiver<Uuid>),
    feed: F,
) -> HttpResponse {
    let max = state.config.api.sse_max_streams_per_user;
    let Some(slot) = state.sse.open_stream(reader.cap_key, max) else {
        return too_many_streams(max);
    };
    let opened = Opened {
        user: reader.user,
        live,
        access,
        slot,
        resume: last_event_id(req),
    };
    start(state, opened, feed)
}

/// Starts the stream's task and answers with its response.
fn start<F: Feed + 'static>(state: web::Data<AppState>, opened: Opened, feed: F) -> HttpResponse {
    let (tx, rx) = mpsc::channel::<Bytes>(16);
    actix_web::rt::spawn(run(state, opened, feed, tx));
    event_stream(rx)
}

/// Whether frame `id` was already sent (replayed, or live twice).
fn seen(id: Option<StreamId>, last_sent: Option<StreamId>) -> bool {
    matches!((id, last_sent), (Some(new), Some(last)) if new <= last)
}

/// The replay after `after`: the kept events, or a reset. `Err` when the stream is over;
/// otherwise what live frames are deduplicated against: the newest id the client has (`after`,
/// or the last replayed), or none after a reset (the client starts over, every live event is
/// news).
async fn replay<F: Feed>(
    state: &AppState,
    tx: &mpsc::Sender<Bytes>,
    feed: &mut F,
    after: StreamId,
) -> Result<Option<StreamId>, ()> {
    let board = feed.board();
    let mut cursor = after;
    loop {
        let history = match state
            .events
            .board_history(board, cursor, REPLAY_BATCH)
            .await
        {
            Ok(h) => h,
            Err(e) => {
                warn!(state.logger, "stream could not replay"; "stream" => F::NAME,
                    "board_id" => %board, "error" => %e);
                let emit = feed.reset(state, "replay unavailable").await;
                return if send(state, tx, emit).await {
                    Ok(None)
                } else {
                    Err(())
                };
            }
        };
        if !history.complete {
            let emit = feed
                .reset(state, "the events since Last-Event-ID are no longer kept")
                .await;
            return if send(state, tx, emit).await {
                Ok(None)
            } else {
                Err(())
            };
        }
        let count = history.events.len();
        for (id, event) in history.events {
            let shown = feed.event(&BoardFrame::new(Some(id), event));
            if !send(state, tx, shown).await {
                return Err(());
            }
            cursor = id;
        }
        if count < REPLAY_BATCH {
            let emit = feed.replayed();
            return if send(state, tx, emit).await {
                Ok(Some(cursor))
            } else {
                Err(())
            };
        }
    }
}

async fn run<F: Feed>(
    state: web::Data<AppState>,
    opened: Opened,
    mut feed: F,
    tx: mpsc::Sender<Bytes>,
) {
    let Opened {
        user,
        mut live,
        mut access,
        slot,
        resume,
    } = opened;
    let _slot = slot;
    state.metrics.sse_clients.inc();
    let board = feed.board();
    let first = feed.opening(resume.is_some());
    let mut open = send(&state, &tx, first).await;
    // The newest event sent: live events up to it were replayed already.
    let mut last_sent = resume;
    if let (true, Some(after)) = (open, resume) {
        match replay(&state, &tx, &mut feed, after).await {
            Ok(last) => last_sent = last,
            Err(()) => open = false,
        }
    }
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
            received = live.recv() => match received {
                Ok(f) if !seen(f.id, last_sent) => {
                    let shown = feed.event(&f);
                    if shown.is_some() {
                        keep_alive.reset();
                    }
                    open = send(&state, &tx, shown).await;
                    last_sent = f.id.or(last_sent);
                }
                Ok(_) => {}
                Err(RecvError::Lagged(missed)) => {
                    let emit = feed.lagged(&state, missed).await;
                    open = send(&state, &tx, emit).await;
                }
                Err(RecvError::Closed) => open = false,
            },
            _ = poll.tick(), if feed.polls() && !state.sse.redis_up() => {
                if !polling_logged {
                    warn!(state.logger, "Redis unavailable: stream polls the database";
                        "stream" => F::NAME, "board_id" => %board);
                    polling_logged = true;
                }
                let emit = feed.poll(&state).await;
                open = send(&state, &tx, emit).await;
            }
            _ = keep_alive.tick() => {
                open = deliver(&state, &tx, Bytes::from_static(b": keep-alive\n\n")).await;
            }
            changed = access.recv(), if access_feed => match changed {
                Ok(changed) => check_access = changed == board,
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
            match feed.recheck(&state, user).await {
                Ok(Recheck::Keep(emit)) => open = send(&state, &tx, emit).await,
                Ok(Recheck::Revoked) => {
                    info!(state.logger, "stream ended: access revoked";
                        "stream" => F::NAME, "board_id" => %board,
                        "user_id" => user.map(|u| u.to_string()).unwrap_or_default());
                    let _ = tx.try_send(Bytes::from_static(ACCESS_REVOKED));
                    open = false;
                }
                Ok(Recheck::Gone(last)) => {
                    let _ = deliver(&state, &tx, last).await;
                    open = false;
                }
                // Keep streaming: the next check decides.
                Err(e) => warn!(state.logger, "stream could not re-check access";
                    "stream" => F::NAME, "board_id" => %board, "error" => %e),
            }
        }
    }
    drop(live);
    state.metrics.sse_clients.dec();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_carry_an_id_and_a_name_only_when_they_have_one() {
        let id: StreamId = "1733050000000-2".parse().unwrap();
        assert_eq!(
            frame(Some(id), Some("board_updated"), "{}"),
            Bytes::from_static(b"id: 1733050000000-2\nevent: board_updated\ndata: {}\n\n")
        );
        assert_eq!(frame(None, None, "{}"), Bytes::from_static(b"data: {}\n\n"));
        assert!(seen(Some(id), Some(id)));
        assert!(!seen(None, Some(id)));
        assert!(!seen(Some(id), None));
    }
}
