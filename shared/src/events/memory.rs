//! The in-process backend (tests): one broadcast channel; each subscription forwards the
//! topics it asked for. Board events get stream ids and are kept per board (the newest
//! `max_len`), as the Redis backend keeps them.

use std::{
    collections::{HashMap, VecDeque},
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc, Mutex,
    },
};

use tokio::sync::{broadcast, mpsc};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::{Backend, BoardEvent, Delivery, Event, History, StreamId, Topic, SUBSCRIPTION_BUFFER};

#[derive(Default)]
struct Kept {
    events: VecDeque<(StreamId, BoardEvent)>,
    /// The newest id dropped for length.
    max_deleted: Option<StreamId>,
}

pub struct MemoryBackend {
    tx: broadcast::Sender<Event>,
    /// Events a slow subscription missed.
    dropped: Arc<AtomicU64>,
    boards: Mutex<HashMap<Uuid, Kept>>,
    last_id: Mutex<StreamId>,
    max_len: usize,
}

impl MemoryBackend {
    pub fn new(max_len: usize) -> Self {
        Self {
            tx: broadcast::channel(SUBSCRIPTION_BUFFER).0,
            dropped: Arc::default(),
            boards: Mutex::default(),
            last_id: Mutex::new(StreamId { ms: 0, seq: 0 }),
            max_len: max_len.max(1),
        }
    }

    /// The next id: now in milliseconds, or the last one's successor (ids only grow).
    fn next_id(&self) -> StreamId {
        let now = u64::try_from(chrono::Utc::now().timestamp_millis()).unwrap_or(0);
        let mut last = self.last_id.lock().unwrap_or_else(|e| e.into_inner());
        *last = if now > last.ms {
            StreamId { ms: now, seq: 0 }
        } else {
            StreamId {
                ms: last.ms,
                seq: last.seq + 1,
            }
        };
        *last
    }
}

#[async_trait::async_trait]
impl Backend for MemoryBackend {
    async fn board_history(
        &self,
        board: Uuid,
        after: StreamId,
        limit: usize,
    ) -> anyhow::Result<History> {
        let boards = self.boards.lock().unwrap_or_else(|e| e.into_inner());
        let Some(kept) = boards.get(&board) else {
            return Ok(History {
                events: vec![],
                complete: true,
            });
        };
        Ok(History {
            events: kept
                .events
                .iter()
                .filter(|(id, _)| *id > after)
                .take(limit)
                .cloned()
                .collect(),
            complete: kept.max_deleted.is_none_or(|d| d <= after),
        })
    }

    fn publish(&self, mut event: Event) {
        if let Event::Board {
            board,
            event: e,
            id,
        } = &mut event
        {
            let new_id = self.next_id();
            *id = Some(new_id);
            let mut boards = self.boards.lock().unwrap_or_else(|e| e.into_inner());
            let kept = boards.entry(*board).or_default();
            kept.events.push_back((new_id, e.clone()));
            while kept.events.len() > self.max_len {
                kept.max_deleted = kept.events.pop_front().map(|(id, _)| id);
            }
        }
        // A generation's progress also goes to its own channel, as the Redis script does.
        let progress = match &event {
            Event::Board {
                event: BoardEvent::GenerationProgress(p),
                ..
            } => Some(Event::Progress(p.clone())),
            _ => None,
        };
        // No subscriber is not a loss: nobody was listening, as on Redis.
        let _ = self.tx.send(event);
        if let Some(progress) = progress {
            let _ = self.tx.send(progress);
        }
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
