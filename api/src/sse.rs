//! The progress relay: **one** Redis pattern subscription per process (`{prefix}job:*:progress`)
//! fanned out to Server-Sent Event clients through per-generation broadcast channels.

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
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// Events buffered per generation; a client that falls further behind gets a fresh snapshot.
const BUFFER: usize = 64;

#[derive(Default)]
pub struct SseHub {
    channels: Mutex<HashMap<Uuid, broadcast::Sender<Arc<str>>>>,
    redis_up: AtomicBool,
}

impl SseHub {
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
        let mut backoff = Duration::from_millis(200);
        let mut warned = false;
        while !shutdown.is_cancelled() {
            let session = async {
                let client = redis::Client::open(redis_url.as_str())?;
                // A black-holed Redis must not hold the relay forever: try again later.
                let connect = async {
                    let mut pubsub = client.get_async_pubsub().await?;
                    pubsub.psubscribe(&pattern).await?;
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
                            let Some(id) = progress::id_of_channel(&prefix, m.get_channel_name()) else { continue };
                            let payload: String = m.get_payload().unwrap_or_default();
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
