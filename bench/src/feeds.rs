//! `boards-bench feeds`: board feeds (issue 12) on the release API. Many boards with several
//! open feeds each while board events flow at a fixed rate (delivery latency from publish to
//! every feed of the event's board, API RSS per stream), then the replay of many missed events
//! to a reconnecting feed. Events are `generation_progress` events published on Redis through
//! the same `EventBus` the worker uses; each carries its publication time.

use std::time::{Duration, Instant};

use anyhow::Context as _;
use boards_shared::{
    events::{BoardEvent, Event, EventBus, ProgressEvent},
    testing::{rss_kib, TestDb},
};
use futures::StreamExt as _;
use serde_json::json;
use uuid::Uuid;

use crate::{delay_since, gql, histogram, ms, sse_lines, start_api_with, token, Args};

#[derive(clap::Args, Clone)]
pub struct FeedArgs {
    /// Boards with open feeds.
    #[arg(long, default_value_t = 1000)]
    boards: usize,
    /// Open feeds per board.
    #[arg(long, default_value_t = 5)]
    feeds: usize,
    /// Board events per second during the run.
    #[arg(long, default_value_t = 200)]
    rate: u64,
    /// Seconds of the run.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Events missed by the reconnecting feed.
    #[arg(long, default_value_t = 1000)]
    replay: usize,
}

/// One raw feed: reports when it is open, then the delay of each event since its `timestamp`.
async fn feed(
    port: u16,
    board: String,
    token: String,
    delays: tokio::sync::mpsc::UnboundedSender<f64>,
    connected: tokio::sync::mpsc::UnboundedSender<()>,
) -> anyhow::Result<()> {
    let path = format!("/api/sse/boards/{board}/events");
    let mut lines = sse_lines(port, &path, &token, None).await?;
    while let Some(line) = lines.next_line().await? {
        if line == "event: ready" {
            let _ = connected.send(());
        }
        if let Some(data) = line.strip_prefix("data: ") {
            let v: serde_json::Value = serde_json::from_str(data).unwrap_or_default();
            if let Some(delay) = delay_since(&v) {
                let _ = delays.send(delay);
            }
        }
    }
    Ok(())
}

fn event(board: Uuid) -> Event {
    Event::Board {
        board,
        event: BoardEvent::GenerationProgress(ProgressEvent::new(
            Uuid::new_v4(),
            "processing",
            50.0,
            "processing",
            None,
        )),
        id: None,
    }
}

/// Reads one feed until `count` events after `ready`; returns the time from the request to the
/// last one and the last event id seen.
async fn read_events(
    port: u16,
    board: &str,
    token: &str,
    last_event_id: Option<&str>,
    count: usize,
) -> anyhow::Result<(Duration, Option<String>)> {
    let started = Instant::now();
    let path = format!("/api/sse/boards/{board}/events");
    let mut lines = sse_lines(port, &path, token, last_event_id).await?;
    let (mut seen, mut last) = (0, None);
    while seen < count {
        let line = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
            .await
            .context("the feed went quiet")??
            .context("the feed ended")?;
        if let Some(id) = line.strip_prefix("id: ") {
            last = Some(id.to_string());
        }
        if line == "event: generation_progress" {
            seen += 1;
        }
        anyhow::ensure!(line != "event: reset", "the replay was reset");
    }
    Ok((started.elapsed(), last))
}

pub async fn run(args: &Args, f: &FeedArgs) -> anyhow::Result<()> {
    let db = TestDb::new()
        .await
        .context("creating the benchmark database")?;
    let storage =
        std::env::temp_dir().join(format!("boards-bench-{}", uuid::Uuid::new_v4().simple()));
    let tag = uuid::Uuid::new_v4().simple().to_string()[..8].to_string();
    let mut env = crate::stack_env(&db, &storage, &tag, 1);
    env.push(("BOARDS_SSE_MAX_STREAMS_PER_USER".into(), "100000".into()));
    env.push((
        "BOARDS_REDIS_BOARD_EVENTS_MAX_LEN".into(),
        (f.replay * 2).to_string(),
    ));
    let api = start_api_with(args, &db, &env).await?;
    let api_pid = api.child.id();
    let port: u16 = api
        .base
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .context("the API's port")?;
    let config = boards_shared::Config::load_from(&env.iter().cloned().collect())?;
    let pool = boards_shared::redis_pool::build_redis_pool(&config.redis)?;
    let bus = EventBus::from_config(&config.redis, pool, boards_shared::logging::discard());
    let signer = crate::signer()?;
    let owner = token(&signer, "feeds")?;
    let client = reqwest::Client::new();
    let base = api.base.clone();

    let boards: Vec<String> = futures::stream::iter(0..f.boards)
        .map(|i| {
            let (client, base, owner) = (client.clone(), base.clone(), owner.clone());
            async move {
                let d = gql(
                    &client,
                    &base,
                    &owner,
                    "mutation($i: CreateBoardInput!) { createBoard(input: $i) { id } }",
                    json!({"i": {"title": format!("feeds {i}")}}),
                )
                .await?;
                anyhow::Ok(
                    d["createBoard"]["id"]
                        .as_str()
                        .unwrap_or_default()
                        .to_string(),
                )
            }
        })
        .buffer_unordered(32)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<anyhow::Result<_>>()?;

    println!("| run | result |");
    println!("|---|---|");

    // 1. Fan-out: every board's feeds open, then events at a fixed rate over all boards.
    let rss_before = rss_kib(api_pid);
    let (delays_tx, mut delays_rx) = tokio::sync::mpsc::unbounded_channel();
    let (open_tx, mut open_rx) = tokio::sync::mpsc::unbounded_channel();
    let streams = f.boards * f.feeds;
    for (i, board) in boards
        .iter()
        .flat_map(|b| std::iter::repeat_n(b, f.feeds))
        .enumerate()
    {
        tokio::spawn(feed(
            port,
            board.clone(),
            owner.clone(),
            delays_tx.clone(),
            open_tx.clone(),
        ));
        if i % 250 == 249 {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    let open = crate::wait_open(&mut open_rx, streams).await;
    let rss_open = rss_kib(api_pid);
    let ids: Vec<Uuid> = boards.iter().filter_map(|b| b.parse().ok()).collect();
    let total = f.rate * f.seconds;
    let every = Duration::from_secs_f64(1.0 / f.rate.max(1) as f64);
    let started = tokio::time::Instant::now();
    for n in 0..total {
        tokio::time::sleep_until(started + every * n as u32).await;
        bus.publish(event(ids[n as usize % ids.len()]));
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let mut fan = histogram()?;
    while let Ok(delay) = delays_rx.try_recv() {
        fan.record((delay.max(0.0) * 1000.0) as u64)?;
    }
    println!(
        "| board feeds: {open} of {streams} open ({} boards × {}) on one API process | API RSS {:.1} MiB before, {:.1} MiB with the feeds open ({:.1} KiB per stream) |",
        f.boards,
        f.feeds,
        rss_before as f64 / 1024.0,
        rss_open as f64 / 1024.0,
        (rss_open.saturating_sub(rss_before)) as f64 / open.max(1) as f64
    );
    println!(
        "| board events at {} /s for {} s ({total} events, {} deliveries of {} expected) | p50 {:.2} ms, p90 {:.2} ms, p99 {:.2} ms, max {:.2} ms from publish to feed |",
        f.rate,
        f.seconds,
        fan.len(),
        total as usize * f.feeds,
        ms(&fan, 0.5),
        ms(&fan, 0.9),
        ms(&fan, 0.99),
        fan.max() as f64 / 1000.0
    );

    // 2. Replay: a feed sees one event, disconnects, misses N, reconnects with Last-Event-ID.
    let board = &boards[0];
    let target: Uuid = board.parse()?;
    let reader = {
        let (board, owner) = (board.clone(), owner.clone());
        tokio::spawn(async move { read_events(port, &board, &owner, None, 1).await })
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    bus.publish(event(target));
    let (_, last) = reader.await??;
    let last = last.context("the event had no id")?;
    for _ in 0..f.replay {
        bus.publish(event(target));
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let mut replays = histogram()?;
    for _ in 0..5 {
        let (took, _) = read_events(port, board, &owner, Some(&last), f.replay).await?;
        replays.record(took.as_micros() as u64)?;
    }
    println!(
        "| replay of {} missed events on reconnect (Last-Event-ID), 5 reconnects | median {:.2} ms, max {:.2} ms from request to the last event |",
        f.replay,
        ms(&replays, 0.5),
        replays.max() as f64 / 1000.0
    );
    let _ = std::fs::remove_dir_all(&storage);
    boards_shared::testing::delete_redis_keys("redis://127.0.0.1:6379", &format!("bench-{tag}:"));
    Ok(())
}
