//! `boards-bench providers`: waiting on a provider is I/O, not CPU. One worker process (release
//! build) holds N upstream jobs at once against a local fake of fal.ai whose requests finish
//! 5 s after their submit; reports the time until the last completes, the worker's peak RSS,
//! and the status polls per job.

use std::{
    collections::HashSet,
    process::{Command, Stdio},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use anyhow::Context as _;
use boards_shared::testing::{
    fake_fal::{Behaviour, FakeFal},
    rss_kib, TestDb,
};
use futures::StreamExt as _;
use serde_json::{json, Value};

use crate::{gql, start_api_with, token, Args};

#[derive(clap::Args, Clone)]
pub struct ProviderArgs {
    /// Path of the worker binary (release build).
    #[arg(long, default_value = "target/release/boards-worker")]
    worker: String,
    /// Upstream jobs in flight at once.
    #[arg(long, default_value_t = 1000)]
    jobs: usize,
    /// Seconds each upstream job takes.
    #[arg(long, default_value_t = 5)]
    upstream_seconds: u64,
}

use crate::Worker;

pub async fn run(args: &Args, p: &ProviderArgs) -> anyhow::Result<()> {
    let fake = FakeFal::start_quiet(Behaviour {
        finish_after: Some(Duration::from_secs(p.upstream_seconds)),
        ..Behaviour::default()
    })
    .await;
    let db = TestDb::new()
        .await
        .context("creating the benchmark database")?;
    let storage =
        std::env::temp_dir().join(format!("boards-bench-{}", uuid::Uuid::new_v4().simple()));
    let tag = uuid::Uuid::new_v4().simple().to_string()[..8].to_string();
    let prefix = format!("bench-{tag}:");
    let mut env = crate::stack_env(&db, &storage, &tag, p.jobs);
    env.push(("BOARDS_JOB_RELAY_INTERVAL_MS".into(), "200".into()));
    for (k, v) in [
        ("FAL_KEY", "test-fal-key".to_string()),
        ("BOARDS_FAL_BASE_URL", fake.url()),
        ("BOARDS_FAL_REST_URL", fake.url()),
    ] {
        env.push((k.into(), v));
    }
    let api = start_api_with(args, &db, &env).await?;
    let worker = Worker(
        Command::new(&p.worker)
            .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdout(Stdio::null())
            .spawn()
            .with_context(|| format!("starting {} (run `make release` first)", p.worker))?,
    );
    let worker_pid = worker.0.id();
    let signer = crate::signer()?;
    let owner = token(&signer, "providers")?;
    let client = reqwest::Client::new();
    let base = api.base.clone();
    let board = gql(
        &client,
        &base,
        &owner,
        "mutation { createBoard(input: {title: \"providers\"}) { id } }",
        json!({}),
    )
    .await?["createBoard"]["id"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    // Completed events, as they are published.
    let done: Arc<Mutex<HashSet<String>>> = Arc::default();
    {
        let client = redis::Client::open("redis://127.0.0.1:6379")?;
        let mut pubsub = client.get_async_pubsub().await?;
        pubsub
            .psubscribe(boards_shared::events::progress_pattern(&prefix))
            .await?;
        let done = done.clone();
        tokio::spawn(async move {
            let mut messages = pubsub.into_on_message();
            while let Some(m) = messages.next().await {
                let payload: String = m.get_payload().unwrap_or_default();
                let v: Value = serde_json::from_str(&payload).unwrap_or_default();
                if v["status"] == "completed" || v["status"] == "failed" {
                    if let (Some(id), Ok(mut d)) = (v["job_id"].as_str(), done.lock()) {
                        d.insert(id.to_string());
                    }
                }
            }
        });
    }
    let baseline_rss = rss_kib(worker_pid);
    let started = Instant::now();
    let ids: Vec<String> = futures::stream::iter(0..p.jobs)
        .map(|i| {
            let (client, base, owner, board) =
                (client.clone(), base.clone(), owner.clone(), board.clone());
            async move {
                let d = gql(
                    &client,
                    &base,
                    &owner,
                    "mutation($i: CreateGenerationInput!) { createGeneration(input: $i) { id } }",
                    json!({"i": {"boardId": board, "generatorName": "fal-flux-pro-ultra", "artifactType": "IMAGE",
                        "inputParams": {"prompt": format!("job {i}")}}}),
                )
                .await?;
                Ok::<_, anyhow::Error>(
                    d["createGeneration"]["id"]
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
        .collect::<Result<_, _>>()?;
    let created = started.elapsed();
    let mut peak_rss = 0;
    let mut in_flight_peak = 0;
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        peak_rss = peak_rss.max(rss_kib(worker_pid));
        in_flight_peak = in_flight_peak.max(
            fake.submits()
                - done
                    .lock()
                    .map(|d| d.len())
                    .unwrap_or(0)
                    .min(fake.submits()),
        );
        let finished = done
            .lock()
            .map(|d| ids.iter().filter(|id| d.contains(*id)).count())
            .unwrap_or(0);
        if finished == ids.len() {
            break;
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "only {finished} of {} jobs finished",
            ids.len()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let total = started.elapsed();
    let completed = {
        let mut conn = db.connect().await?;
        use diesel::QueryableByName;
        #[derive(QueryableByName)]
        struct N {
            #[diesel(sql_type = diesel::sql_types::BigInt)]
            n: i64,
        }
        let n: N = diesel_async::RunQueryDsl::get_result(
            diesel::sql_query(
                "SELECT count(*) AS n FROM boards.generations WHERE status = 'completed'",
            ),
            &mut conn,
        )
        .await?;
        n.n
    };
    println!("| run | result |");
    println!("|---|---|");
    println!(
        "| {} fal.ai jobs, upstream {} s each, one worker (concurrency {}) | all finished {:.2} s after the first create ({} completed; created in {:.2} s); at most {} upstream jobs in flight |",
        ids.len(), p.upstream_seconds, p.jobs, total.as_secs_f64(), completed, created.as_secs_f64(), in_flight_peak
    );
    println!(
        "| worker RSS | {:.1} MiB idle, {:.1} MiB peak |",
        baseline_rss as f64 / 1024.0,
        peak_rss as f64 / 1024.0
    );
    println!(
        "| status polls | {} in all, {:.1} per job; submits {} (one per job) |",
        fake.polls(),
        fake.polls() as f64 / ids.len() as f64,
        fake.submits()
    );
    drop(worker);
    drop(api);
    let _ = std::fs::remove_dir_all(&storage);
    Ok(())
}
