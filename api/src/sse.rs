//! The progress relay: **one** event subscription per process (progress and access changes,
//! `boards_shared::events`) fanned out to Server-Sent Event clients through per-generation
//! broadcast channels; the bookkeeping of open streams (a cap per user); and the signals that
//! end streams early: a board whose access rules changed (this process, or another replica)
//! and the server's shutdown.

use std::{
    collections::HashMap,
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc, Mutex,
    },
};

use boards_shared::{
    db::models::Generation,
    events::{BoardEvent, Delivery, Event, EventBus, ProgressEvent, StreamId, Topic},
};
use slog::{info, warn, Logger};
use tokio::sync::broadcast;
use tokio_util::sync::{CancellationToken, WaitForCancellationFuture};
use uuid::Uuid;

use crate::state::AppState;

/// Events buffered per generation; a client that falls further behind gets a fresh snapshot.
const BUFFER: usize = 64;
/// Access changes buffered; a stream that falls behind re-checks its access anyway.
const ACCESS_BUFFER: usize = 256;

/// One board event, serialised once for every feed of its board.
#[derive(Debug)]
pub struct BoardFrame {
    /// Its place in the board's replay stream (the SSE `id:`).
    pub id: Option<StreamId>,
    /// The SSE `event:` name.
    pub name: &'static str,
    pub data: String,
    /// The board is gone: feeds end after this frame.
    pub last: bool,
}

pub struct SseHub {
    channels: Mutex<HashMap<Uuid, broadcast::Sender<Arc<str>>>>,
    /// Board feeds by board.
    boards: Mutex<HashMap<Uuid, broadcast::Sender<Arc<BoardFrame>>>>,
    redis_up: AtomicBool,
    /// Boards whose members, visibility or existence changed: their streams re-check access.
    access: broadcast::Sender<Uuid>,
    /// Open streams per user, for `api.sse_max_streams_per_user`.
    open: Mutex<HashMap<Uuid, usize>>,
    /// Cancelled when the server shuts down: every stream sends a last comment and ends.
    shutdown: CancellationToken,
    /// This process on the access channel (its own messages were already delivered locally).
    origin: Uuid,
}

impl Default for SseHub {
    fn default() -> Self {
        Self::new(CancellationToken::new())
    }
}

/// One open stream of a user; dropping it frees the place.
pub struct StreamSlot {
    hub: Arc<SseHub>,
    user: Uuid,
}

impl Drop for StreamSlot {
    fn drop(&mut self) {
        if let Ok(mut open) = self.hub.open.lock() {
            if let Some(n) = open.get_mut(&self.user) {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    open.remove(&self.user);
                }
            }
        }
    }
}

impl SseHub {
    /// A hub whose streams end when `shutdown` is cancelled.
    pub fn new(shutdown: CancellationToken) -> Self {
        Self {
            channels: Mutex::default(),
            boards: Mutex::default(),
            redis_up: AtomicBool::default(),
            access: broadcast::channel(ACCESS_BUFFER).0,
            open: Mutex::default(),
            shutdown,
            origin: Uuid::new_v4(),
        }
    }

    /// A place for one more stream of `user`, unless they already hold `max`.
    pub fn open_stream(self: &Arc<Self>, user: Uuid, max: usize) -> Option<StreamSlot> {
        let mut open = self.open.lock().ok()?;
        let n = open.entry(user).or_insert(0);
        if *n >= max {
            return None;
        }
        *n += 1;
        Some(StreamSlot {
            hub: self.clone(),
            user,
        })
    }

    /// Boards whose access rules changed, as they are announced.
    pub fn access_changes(&self) -> broadcast::Receiver<Uuid> {
        self.access.subscribe()
    }

    /// Resolves when the server starts shutting down.
    pub fn shutting_down(&self) -> WaitForCancellationFuture<'_> {
        self.shutdown.cancelled()
    }

    pub fn subscribe(&self, id: Uuid) -> broadcast::Receiver<Arc<str>> {
        let Ok(mut channels) = self.channels.lock() else {
            return broadcast::channel(1).1;
        };
        channels
            .entry(id)
            .or_insert_with(|| broadcast::channel(BUFFER).0)
            .subscribe()
    }

    /// The events of board `id` from now on.
    pub fn subscribe_board(&self, id: Uuid) -> broadcast::Receiver<Arc<BoardFrame>> {
        let Ok(mut boards) = self.boards.lock() else {
            return broadcast::channel(1).1;
        };
        boards
            .entry(id)
            .or_insert_with(|| broadcast::channel(BUFFER).0)
            .subscribe()
    }

    /// Drops the feed channel of board `id` once nobody listens.
    pub fn release_board(&self, id: Uuid) {
        if let Ok(mut boards) = self.boards.lock() {
            if boards.get(&id).is_some_and(|s| s.receiver_count() == 0) {
                boards.remove(&id);
            }
        }
    }

    fn dispatch_board(&self, board: Uuid, id: Option<StreamId>, event: &BoardEvent) {
        let sender = self.boards.lock().ok().and_then(|b| b.get(&board).cloned());
        if let (Some(s), Ok(data)) = (sender, serde_json::to_string(event)) {
            let _ = s.send(Arc::new(BoardFrame {
                id,
                name: event.name(),
                data,
                last: matches!(event, BoardEvent::BoardDeleted),
            }));
        }
    }

    /// Drops the channel of `id` once nobody listens.
    pub fn release(&self, id: Uuid) {
        if let Ok(mut channels) = self.channels.lock() {
            if channels.get(&id).is_some_and(|s| s.receiver_count() == 0) {
                channels.remove(&id);
            }
        }
    }

    /// Whether live events flow (else streams poll the database).
    pub fn redis_up(&self) -> bool {
        self.redis_up.load(Ordering::Relaxed)
    }

    /// A board's access changed in another process: its streams here re-check access.
    fn remote_access_change(&self, origin: Uuid, board: Uuid) {
        if origin != self.origin {
            let _ = self.access.send(board);
        }
    }

    fn dispatch(&self, event: &ProgressEvent) {
        let sender = self
            .channels
            .lock()
            .ok()
            .and_then(|c| c.get(&event.job_id).cloned());
        // Serialised once per event, whatever the number of its streams.
        if let (Some(s), Ok(payload)) = (sender, serde_json::to_string(event)) {
            let _ = s.send(payload.into());
        }
    }

    /// Relays progress and access changes from the process's one subscription until
    /// `shutdown`; while it is disconnected, streams poll the database.
    pub async fn run(
        self: Arc<Self>,
        events: EventBus,
        logger: Logger,
        shutdown: CancellationToken,
    ) {
        let mut deliveries =
            events.subscribe(&[Topic::Progress, Topic::Access, Topic::Board], shutdown);
        let mut warned = false;
        while let Some(delivery) = deliveries.recv().await {
            match delivery {
                Delivery::Event(Event::Progress(event)) => self.dispatch(&event),
                Delivery::Event(Event::AccessChanged { origin, board }) => {
                    self.remote_access_change(origin, board);
                }
                Delivery::Event(Event::Board { board, event, id }) => {
                    self.dispatch_board(board, id, &event)
                }
                Delivery::Event(Event::Cancel(_)) => {}
                Delivery::Connected => {
                    self.redis_up.store(true, Ordering::Relaxed);
                    if warned {
                        info!(
                            logger,
                            "progress relay reconnected to Redis; streams are live again"
                        );
                        warned = false;
                    }
                }
                Delivery::Disconnected(error) => {
                    self.redis_up.store(false, Ordering::Relaxed);
                    if !warned {
                        warn!(logger, "progress relay lost Redis; SSE streams fall back to polling the database";
                            "error" => error);
                        warned = true;
                    }
                }
            }
        }
        self.redis_up.store(false, Ordering::Relaxed);
    }
}

/// Tells the progress streams of `board` to re-check their caller's access (its members,
/// visibility or existence changed): at once in this process, and in the other API processes
/// through Redis (best-effort, never awaited; their periodic re-check covers a lost message).
pub fn announce_access_change(state: &AppState, board: Uuid) {
    let _ = state.sse.access.send(board);
    state.events.publish(Event::AccessChanged {
        origin: state.sse.origin,
        board,
    });
}

/// Publishes `event` to the feeds of `board` (every API process, this one included, through
/// its subscription; best-effort).
pub fn announce_board(state: &AppState, board: Uuid, event: BoardEvent) {
    state.events.publish(Event::Board {
        board,
        event,
        id: None,
    });
}

/// A new generation on its board's feed: created, and its current state.
pub fn announce_generation_created(state: &AppState, generation: &Generation) {
    announce_board(
        state,
        generation.board_id,
        BoardEvent::GenerationCreated {
            generation_id: generation.id,
            generator_name: generation.generator_name.clone(),
            status: generation.status.clone(),
        },
    );
    if generation.status != "pending" {
        announce_board(
            state,
            generation.board_id,
            BoardEvent::GenerationProgress(ProgressEvent::snapshot(generation)),
        );
    }
}
