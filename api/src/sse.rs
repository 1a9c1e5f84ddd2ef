//! The progress relay: **one** Redis pattern subscription per process (`{prefix}job:*:progress`)
//! fanned out to Server-Sent Event clients through per-generation broadcast channels; the
//! bookkeeping of open streams (a cap per user); and the signals that end streams early:
//! a board whose access rules changed (this process, or another replica through
//! `{prefix}boards:access`) and the server's shutdown.

use std::{
    collections::HashMap,
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc, Mutex,
    },
    time::Duration,
};

use boards_shared::progress;
use futures::StreamExt as _;
use slog::{info, warn, Logger};
use tokio::sync::broadcast;
use tokio_util::sync::{CancellationToken, WaitForCancellationFuture};
use uuid::Uuid;

use crate::state::AppState;

/// Events buffered per generation; a client that falls further behind gets a fresh snapshot.
const BUFFER: usize = 64;
/// Access changes buffered; a stream that falls behind re-checks its access anyway.
const ACCESS_BUFFER: usize = 256;

/// The Redis channel on which API processes tell each other that a board's access changed
/// (payload: `{origin} {board id}`).
pub fn access_channel(prefix: &str) -> String {
    format!("{prefix}boards:access")
}

pub struct SseHub {
    channels: Mutex<HashMap<Uuid, broadcast::Sender<Arc<str>>>>,
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

    pub fn subscribe(&self, id: Uuid) -> broadcast::Receiver<Arc<str>> {
        let Ok(mut channels) = self.channels.lock() else {
            return broadcast::channel(1).1;
        };
        channels
            .entry(id)
            .or_insert_with(|| broadcast::channel(BUFFER).0)
            .subscribe()
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

    /// `{origin} {board}` from another process: its streams of that board re-check access.
    fn remote_access_change(&self, payload: &str) {
        let mut parts = payload.split(' ').map(Uuid::parse_str);
        if let (Some(Ok(origin)), Some(Ok(board))) = (parts.next(), parts.next()) {
            if origin != self.origin {
                let _ = self.access.send(board);
            }
        }
    }

    fn dispatch(&self, id: Uuid, payload: Arc<str>) {
        let sender = self.channels.lock().ok().and_then(|c| c.get(&id).cloned());
        if let Some(s) = sender {
            let _ = s.send(payload);
        }
    }

    /// Keeps the subscription alive (reconnecting with backoff) until `shutdown`.
    pub async fn run(
        self: Arc<Self>,
        redis_url: String,
        prefix: String,
        logger: Logger,
        shutdown: CancellationToken,
    ) {
        let pattern = progress::progress_pattern(&prefix);
        let access = access_channel(&prefix);
        let mut backoff = Duration::from_millis(200);
        let mut warned = false;
        while !shutdown.is_cancelled() {
            let session = async {
                let client = redis::Client::open(redis_url.as_str())?;
                // A black-holed Redis must not hold the relay forever: try again later.
                let connect = async {
                    let mut pubsub = client.get_async_pubsub().await?;
                    pubsub.psubscribe(&pattern).await?;
                    pubsub.subscribe(&access).await?;
                    anyhow::Ok(pubsub)
                };
                let mut pubsub = tokio::time::timeout(Duration::from_secs(5), connect)
                    .await
                    .map_err(|_| anyhow::anyhow!("connecting to Redis timed out"))??;
                self.redis_up.store(true, Ordering::Relaxed);
                if warned {
                    info!(logger, "progress relay reconnected to Redis; streams are live again");
                    warned = false;
                }
                backoff = Duration::from_millis(200);
                let mut messages = pubsub.on_message();
                loop {
                    tokio::select! {
                        _ = shutdown.cancelled() => return anyhow::Ok(()),
                        m = messages.next() => {
                            let Some(m) = m else { anyhow::bail!("subscription closed") };
                            let payload: String = m.get_payload().unwrap_or_default();
                            if m.get_channel_name() == access {
                                self.remote_access_change(&payload);
                                continue;
                            }
                            let Some(id) = progress::id_of_channel(&prefix, m.get_channel_name()) else { continue };
                            self.dispatch(id, payload.into());
                        }
                    }
                }
            }
            .await;
            self.redis_up.store(false, Ordering::Relaxed);
            match session {
                Ok(()) => return,
                Err(e) => {
                    if !warned {
                        warn!(logger, "progress relay lost Redis; SSE streams fall back to polling the database";
                            "error" => format!("{e:#}"));
                        warned = true;
                    }
                    tokio::select! {
                        _ = shutdown.cancelled() => return,
                        _ = tokio::time::sleep(backoff) => {}
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                }
            }
        }
    }
}

/// Tells the progress streams of `board` to re-check their caller's access (its members,
/// visibility or existence changed): at once in this process, and in the other API processes
/// through Redis (best-effort, never awaited; their periodic re-check covers a lost message).
pub fn announce_access_change(state: &AppState, board: Uuid) {
    let _ = state.sse.access.send(board);
    state.publisher.publish(
        access_channel(&state.config.redis.channel_prefix),
        format!("{} {board}", state.sse.origin),
    );
}
