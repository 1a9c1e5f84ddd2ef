//! The in-process backend (tests): one broadcast channel; each subscription forwards the
//! topics it asked for.

use std::sync::{
    atomic::{AtomicU64, Ordering},
    Arc,
};

use tokio::sync::{broadcast, mpsc};
use tokio_util::sync::CancellationToken;

use super::{Backend, Delivery, Event, Topic, SUBSCRIPTION_BUFFER};

pub struct MemoryBackend {
    tx: broadcast::Sender<Event>,
    /// Events a slow subscription missed.
    dropped: Arc<AtomicU64>,
}

impl MemoryBackend {
    pub fn new() -> Self {
        Self {
            tx: broadcast::channel(SUBSCRIPTION_BUFFER).0,
            dropped: Arc::default(),
        }
    }
}

impl Backend for MemoryBackend {
    fn publish(&self, event: Event) {
        // No subscriber is not a loss: nobody was listening, as on Redis.
        let _ = self.tx.send(event);
    }

    fn subscribe(
        &self,
        topics: Vec<Topic>,
        shutdown: CancellationToken,
    ) -> mpsc::Receiver<Delivery> {
        let (out, rx) = mpsc::channel(SUBSCRIPTION_BUFFER);
        let mut events = self.tx.subscribe();
        let dropped = self.dropped.clone();
        tokio::spawn(async move {
            if out.send(Delivery::Connected).await.is_err() {
                return;
            }
            loop {
                let event = tokio::select! {
                    _ = shutdown.cancelled() => return,
                    e = events.recv() => e,
                };
                match event {
                    Ok(e) if topics.contains(&e.topic()) => {
                        if out.send(Delivery::Event(e)).await.is_err() {
                            return;
                        }
                    }
                    Ok(_) => {}
                    Err(broadcast::error::RecvError::Lagged(n)) => {
                        dropped.fetch_add(n, Ordering::Relaxed);
                    }
                    Err(broadcast::error::RecvError::Closed) => return,
                }
            }
        });
        rx
    }

    fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}
