//! `boards-bench pipeline`: the job pipeline on the release binaries (one API, one worker):
//! sustained throughput with the no-op generator, end-to-end latency at a fixed rate, progress
//! latency from the worker's publish to an SSE client, and SSE fan-out to many streams.

use std::{
    collections::HashMap,
    process::{Command, Stdio},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use anyhow::Context as _;
use boards_shared::testing::TestDb;
use futures::StreamExt as _;
use serde_json::{json, Value};

use crate::{delay_since, gql, histogram, ms, sse_lines, start_api_with, token, Args};

#[derive(clap::Args, Clone)]
pub struct PipelineArgs {
    /// Path of the worker binary (release build).
    #[arg(long, default_value = "target/release/boards-worker")]
    worker: String,
    /// Jobs of the throughput run.
    #[arg(long, default_value_t = 3000)]
    jobs: usize,
    /// Jobs per second of the latency run.
    #[arg(long, default_value_t = 100)]
    rate: u64,
    /// Seconds of the latency run.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// SSE streams of the fan-out run.
    #[arg(long, default_value_t = 5000)]
    streams: usize,
    /// Jobs the worker runs at once.
    #[arg(long, default_value_t = 64)]
    worker_concurrency: usize,
}

use crate::Worker;

use boards_shared::testing::rss_kib;

/// What the Redis listener saw: when each job's `completed` event arrived.
#[derive(Default)]
struct Seen {
    completed: HashMap<String, Instant>,
}

async fn listen(redis_url: &str, prefix: &str, seen: Arc<Mutex<Seen>>) -> anyhow::Result<()> {
    let client = redis::Client::open(redis_url)?;
    let mut pubsub = client.get_async_pubsub().await?;
    pubsub
        .psubscribe(boards_shared::events::progress_pattern(prefix))
        .await?;
    tokio::spawn(async move {
        let mut messages = pubsub.into_on_message();
        while let Some(m) = messages.next().await {
            let payload: String = m.get_payload().unwrap_or_default();
            let v: Value = serde_json::from_str(&payload).unwrap_or_default();
            if v["status"] == "completed" {
                if let (Some(id), Ok(mut s)) = (v["job_id"].as_str(), seen.lock()) {
                    s.completed.insert(id.to_string(), Instant::now());
                }
            }
        }
    });
    Ok(())
}

const CREATE: &str = "mutation($i: CreateGenerationInput!) { createGeneration(input: $i) { id } }";

async fn create(
    client: &reqwest::Client,
    base: &str,
    token: &str,
    board: &str,
    params: Value,
) -> anyhow::Result<String> {
    let d = gql(
        client,
        base,
        token,
        CREATE,
        json!({"i": {"boardId": board, "generatorName": "local-echo", "artifactType": "TEXT", "inputParams": params}}),
    )
    .await?;
    Ok(d["createGeneration"]["id"]
        .as_str()
        .unwrap_or_default()
        .to_string())
}

/// A raw SSE client: returns, per `data:` event, the delay since the event's `timestamp`.
async fn sse_client(
    port: u16,
    path: String,
    token: String,
    delays: tokio::sync::mpsc::UnboundedSender<(String, f64)>,
    connected: tokio::sync::mpsc::UnboundedSender<()>,
) -> anyhow::Result<()> {
    let mut lines = sse_lines(port, &path, &token, None).await?;
    let mut announced = false;
    while let Some(line) = lines.next_line().await? {
        if let Some(data) = line.strip_prefix("data: ") {
            if !announced {
                let _ = connected.send(());
                announced = true;
            }
            let v: Value = serde_json::from_str(data).unwrap_or_default();
            if let Some(delay) = delay_since(&v) {
                let status = v["status"].as_str().unwrap_or_default().to_string();
                let _ = delays.send((status, delay));
            }
        }
    }
    Ok(())
}

pub async fn run(args: &Args, p: &PipelineArgs) -> anyhow::Result<()> {
    let db = TestDb::new()
        .await
        .context("creating the benchmark database")?;
    let storage =
        std::env::temp_dir().join(format!("boards-bench-{}", uuid::Uuid::new_v4().simple()));
    let tag = uuid::Uuid::new_v4().simple().to_string()[..8].to_string();
    let prefix = format!("bench-{tag}:");
    let mut env = crate::stack_env(&db, &storage, &tag, p.worker_concurrency);
    env.push(("BOARDS_JOB_RELAY_INTERVAL_MS".into(), "500".into()));
    // The fan-out opens thousands of streams as one user, to measure what one process
    // holds; in production they come from many users (the per-user cap is 20).
    env.push(("BOARDS_SSE_MAX_STREAMS_PER_USER".into(), "100000".into()));
    let api = start_api_with(args, &db, &env).await?;
    let api_pid = api.child.id();
    let _worker = Worker(
        Command::new(&p.worker)
            .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdout(Stdio::null())
            .spawn()
            .with_context(|| format!("starting {} (run `make release` first)", p.worker))?,
    );
    let signer = crate::signer()?;
    let owner = token(&signer, "pipeline")?;
    let client = reqwest::Client::new();
    let base = api.base.clone();
    let board = gql(
        &client,
        &base,
        &owner,
        "mutation { createBoard(input: {title: \"bench\"}) { id } }",
        json!({}),
    )
    .await?["createBoard"]["id"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let seen = Arc::new(Mutex::new(Seen::default()));
    listen("redis://127.0.0.1:6379", &prefix, seen.clone()).await?;
    // Warm-up: the worker connects and declares its queues.
    let warm = create(&client, &base, &owner, &board, json!({"prompt": "warm"})).await?;
    let deadline = Instant::now() + Duration::from_secs(30);
    while !seen
        .lock()
        .map(|s| s.completed.contains_key(&warm))
        .unwrap_or(false)
    {
        anyhow::ensure!(
            Instant::now() < deadline,
            "the warm-up job did not complete"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    println!("| run | result |");
    println!("|---|---|");

    // 1. Throughput: N jobs created by 32 concurrent clients, until the last one completes.
    let started = Instant::now();
    let ids: Vec<String> = futures::stream::iter(0..p.jobs)
        .map(|i| {
            let (client, base, owner, board) =
                (client.clone(), base.clone(), owner.clone(), board.clone());
            async move {
                create(
                    &client,
                    &base,
                    &owner,
                    &board,
                    json!({"prompt": format!("job {i}")}),
                )
                .await
            }
        })
        .buffer_unordered(32)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<Result<_, _>>()?;
    let created = started.elapsed();
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        let done = seen
            .lock()
            .map(|s| {
                ids.iter()
                    .filter(|id| s.completed.contains_key(*id))
                    .count()
            })
            .unwrap_or(0);
        if done == ids.len() {
            break;
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "only {done} of {} jobs completed",
            ids.len()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let last = seen
        .lock()
        .map(|s| {
            ids.iter()
                .filter_map(|id| s.completed.get(id))
                .max()
                .copied()
        })
        .ok()
        .flatten();
    let total = last.map_or(started.elapsed(), |l| l - started);
    println!(
        "| throughput, {} local-echo jobs (createGeneration → COMPLETED) | {:.0} jobs/s (created in {:.2} s at {:.0}/s, all completed after {:.2} s) |",
        ids.len(),
        ids.len() as f64 / total.as_secs_f64(),
        created.as_secs_f64(),
        ids.len() as f64 / created.as_secs_f64(),
        total.as_secs_f64()
    );

    // 2. End-to-end latency at a fixed rate: from sending createGeneration to the completed event.
    let interval = Duration::from_secs_f64(1.0 / p.rate as f64);
    let n = (p.rate * p.seconds) as usize;
    let begin = Instant::now();
    let mut tasks = vec![];
    for i in 0..n {
        tokio::time::sleep_until((begin + interval * i as u32).into()).await;
        let (client, base, owner, board) =
            (client.clone(), base.clone(), owner.clone(), board.clone());
        tasks.push(tokio::spawn(async move {
            let sent = Instant::now();
            create(&client, &base, &owner, &board, json!({"prompt": "latency"}))
                .await
                .map(|id| (id, sent))
        }));
    }
    let mut sent = vec![];
    for t in tasks {
        sent.push(t.await??);
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let mut e2e = histogram()?;
    let mut missing = 0;
    if let Ok(s) = seen.lock() {
        for (id, at) in &sent {
            match s.completed.get(id) {
                Some(done) => e2e.record((*done - *at).as_micros() as u64)?,
                None => missing += 1,
            }
        }
    }
    println!(
        "| end-to-end latency at {} jobs/s for {} s | p50 {:.2} ms, p90 {:.2} ms, p99 {:.2} ms, max {:.2} ms ({missing} not completed within 2 s after the run) |",
        p.rate, p.seconds, ms(&e2e, 0.5), ms(&e2e, 0.9), ms(&e2e, 0.99), e2e.max() as f64 / 1000.0
    );

    // 3. Progress latency: worker publish (event timestamp) → SSE client, 20 jobs × 10 events.
    let (delays_tx, mut delays_rx) = tokio::sync::mpsc::unbounded_channel();
    let (conn_tx, mut conn_rx) = tokio::sync::mpsc::unbounded_channel();
    let port: u16 = base
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    let mut progress_ids = vec![];
    for _ in 0..20 {
        let id = create(
            &client,
            &base,
            &owner,
            &board,
            json!({"prompt": "progress", "delay_ms": 2000}),
        )
        .await?;
        tokio::spawn(sse_client(
            port,
            format!("/api/sse/generations/{id}/progress"),
            owner.clone(),
            delays_tx.clone(),
            conn_tx.clone(),
        ));
        progress_ids.push(id);
    }
    tokio::time::sleep(Duration::from_secs(5)).await;
    let mut progress = histogram()?;
    while let Ok((status, delay)) = delays_rx.try_recv() {
        if status == "processing" && delay >= 0.0 {
            progress.record((delay * 1000.0) as u64)?;
        }
    }
    while conn_rx.try_recv().is_ok() {}
    println!(
        "| progress latency, worker publish → SSE client ({} events) | p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms |",
        progress.len(), ms(&progress, 0.5), ms(&progress, 0.99), progress.max() as f64 / 1000.0
    );

    // 4. SSE fan-out: many streams on one generation, then its progress events.
    let rss_before = rss_kib(api_pid);
    let target = create(
        &client,
        &base,
        &owner,
        &board,
        json!({"prompt": "fan-out", "delay_ms": 20000}),
    )
    .await?;
    let (fan_tx, mut fan_rx) = tokio::sync::mpsc::unbounded_channel();
    let (open_tx, mut open_rx) = tokio::sync::mpsc::unbounded_channel();
    for i in 0..p.streams {
        tokio::spawn(sse_client(
            port,
            format!("/api/sse/generations/{target}/progress"),
            owner.clone(),
            fan_tx.clone(),
            open_tx.clone(),
        ));
        if i % 250 == 249 {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    let open = crate::wait_open(&mut open_rx, p.streams).await;
    let rss_open = rss_kib(api_pid);
    // Drop the snapshots; then collect the live events for a few seconds.
    tokio::time::sleep(Duration::from_millis(500)).await;
    while fan_rx.try_recv().is_ok() {}
    tokio::time::sleep(Duration::from_secs(6)).await;
    let mut fan = histogram()?;
    while let Ok((status, delay)) = fan_rx.try_recv() {
        if status == "processing" && delay >= 0.0 {
            fan.record((delay * 1000.0) as u64)?;
        }
    }
    println!(
        "| SSE fan-out: {open} of {} streams open on one API process | API RSS {:.1} MiB before, {:.1} MiB with the streams open ({:.1} KiB per stream) |",
        p.streams,
        rss_before as f64 / 1024.0,
        rss_open as f64 / 1024.0,
        (rss_open.saturating_sub(rss_before)) as f64 / open.max(1) as f64
    );
    println!(
        "| SSE fan-out delivery ({} events to {open} streams) | p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms after publish |",
        fan.len(), ms(&fan, 0.5), ms(&fan, 0.99), fan.max() as f64 / 1000.0
    );
    let _ = std::fs::remove_dir_all(&storage);
    boards_shared::testing::delete_redis_keys("redis://127.0.0.1:6379", &format!("bench-{tag}:"));
    let config = boards_shared::Config::load_from(&env.iter().cloned().collect())?;
    boards_shared::testing::delete_topology(&config, &["default"]);
    Ok(())
}
