//! The event relay: **one** event subscription per process (board events, a generation's
//! progress among them, and access changes; `boards_shared::events`) fanned out to
//! Server-Sent Event streams through one broadcast channel per board feed and per generation;
//! the bookkeeping of open streams (a cap per user); and the signals that end streams early: a
//! board whose access rules changed (this process, or another replica) and the server's
//! shutdown.

use std::{
    collections::HashMap,
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc, Mutex, OnceLock,
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

/// Events buffered per stream key; a stream that falls further behind catches up another way
/// (a snapshot, or `resync`).
const BUFFER: usize = 64;
/// Access changes buffered; a stream that falls behind re-checks its access anyway.
const ACCESS_BUFFER: usize = 256;

/// One board event, shared by every stream of this process that shows it and serialised at
/// most once per shape, when a stream first asks.
#[derive(Debug)]
pub struct BoardFrame {
    /// Its place in the board's replay stream (the SSE `id:`).
    pub id: Option<StreamId>,
    pub event: BoardEvent,
    data: OnceLock<String>,
    progress: OnceLock<String>,
}

impl BoardFrame {
    pub fn new(id: Option<StreamId>, event: BoardEvent) -> Self {
        Self {
            id,
            event,
            data: OnceLock::new(),
            progress: OnceLock::new(),
        }
    }

    /// The SSE `event:` name on a board feed.
    pub fn name(&self) -> &'static str {
        self.event.name()
    }

    /// The board feed's `data:`: the event's JSON.
    pub fn data(&self) -> &str {
        self.data
            .get_or_init(|| serde_json::to_string(&self.event).unwrap_or_default())
    }

    /// The board is gone: feeds end after this frame.
    pub fn is_last(&self) -> bool {
        matches!(self.event, BoardEvent::BoardDeleted)
    }

    /// A generation's progress, with its per-generation stream JSON (the client's shape).
    pub fn progress(&self) -> Option<(&ProgressEvent, &str)> {
        match &self.event {
            BoardEvent::GenerationProgress(p) => Some((
                p,
                self.progress
                    .get_or_init(|| serde_json::to_string(p).unwrap_or_default()),
            )),
            _ => None,
        }
    }
}

/// What a stream listens to: one generation's progress, or everything on one board.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Key {
    Generation(Uuid),
    Board(Uuid),
}

/// The live frames of one [`Key`]; dropping it frees the key's channel once nobody listens.
pub struct Live {
    rx: Option<broadcast::Receiver<Arc<BoardFrame>>>,
    hub: Arc<SseHub>,
    key: Key,
}

impl Live {
    pub async fn recv(&mut self) -> Result<Arc<BoardFrame>, broadcast::error::RecvError> {
        match self.rx.as_mut() {
            Some(rx) => rx.recv().await,
            None => Err(broadcast::error::RecvError::Closed),
        }
    }
}

impl Drop for Live {
    fn drop(&mut self) {
        drop(self.rx.take());
        if let Ok(mut channels) = self.hub.channels.lock() {
            if channels
                .get(&self.key)
                .is_some_and(|s| s.receiver_count() == 0)
            {
                channels.remove(&self.key);
            }
        }
    }
}

pub struct SseHub {
    /// Live frames by stream key.
    channels: Mutex<HashMap<Key, broadcast::Sender<Arc<BoardFrame>>>>,
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

    /// The frames of `key` from now on.
    pub fn subscribe(self: &Arc<Self>, key: Key) -> Live {
        let rx = self.channels.lock().ok().map(|mut channels| {
            channels
                .entry(key)
                .or_insert_with(|| broadcast::channel(BUFFER).0)
                .subscribe()
        });
        Live {
            rx,
            hub: self.clone(),
            key,
        }
    }

    /// Whether live events flow (else progress streams poll the database).
    pub fn redis_up(&self) -> bool {
        self.redis_up.load(Ordering::Relaxed)
    }

    /// A board's access changed in another process: its streams here re-check access.
    fn remote_access_change(&self, origin: Uuid, board: Uuid) {
        if origin != self.origin {
            let _ = self.access.send(board);
        }
    }

    /// Hands one board event to the feeds of its board and, for progress, to the streams of
    /// its generation: one shared frame for all of them.
    fn dispatch(&self, board: Uuid, id: Option<StreamId>, event: BoardEvent) {
        let generation = match &event {
            BoardEvent::GenerationProgress(p) => Some(Key::Generation(p.job_id)),
            _ => None,
        };
        let senders: Vec<_> = match self.channels.lock() {
            Ok(channels) => [Some(Key::Board(board)), generation]
                .into_iter()
                .flatten()
                .filter_map(|k| channels.get(&k).cloned())
                .collect(),
            Err(_) => return,
        };
        if senders.is_empty() {
            return;
        }
        let frame = Arc::new(BoardFrame::new(id, event));
        for sender in senders {
            let _ = sender.send(frame.clone());
        }
    }

    /// Relays board events (a generation's progress among them) and access changes from the
    /// process's one subscription until `shutdown`; while it is disconnected, progress
    /// streams poll the database.
    pub async fn run(
        self: Arc<Self>,
        events: EventBus,
        logger: Logger,
        shutdown: CancellationToken,
    ) {
        let mut deliveries = events.subscribe(&[Topic::Access, Topic::Board], shutdown);
        let mut warned = false;
        while let Some(delivery) = deliveries.recv().await {
            match delivery {
                Delivery::Event(Event::AccessChanged { origin, board }) => {
                    self.remote_access_change(origin, board);
                }
                Delivery::Event(Event::Board { board, event, id }) => {
                    self.dispatch(board, id, event);
                }
                Delivery::Event(Event::Progress(_) | Event::Cancel(_)) => {}
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
