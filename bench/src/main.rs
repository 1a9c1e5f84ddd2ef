//! `boards-bench`: HTTP benchmarks of the release `boards-api` binary against real PostgreSQL.
//!
//! It creates a database of its own (cloned from the migrated template), starts the API as a
//! child process, seeds the client's scenarios through GraphQL and SQL, and drives load from
//! this process: a closed loop (max throughput with C connections) and an open loop at a fixed
//! rate (latency measured from each request's scheduled start, so queueing is not hidden).

use std::{
    net::TcpListener,
    process::{Child, Command, Stdio},
    sync::Arc,
    time::{Duration, Instant},
};

use anyhow::{bail, Context as _};
use boards_shared::{auth::JwtProvider, config::AuthConfig, testing::TestDb};
use clap::Parser;
use diesel_async::RunQueryDsl;
use hdrhistogram::Histogram;
use serde_json::{json, Value};

pub(crate) const SECRET: &str = "bench-secret-0123456789-0123456789";

mod feeds;
mod pipeline;
mod providers;
mod uploads;

#[derive(Parser, Clone)]
#[command(about = "Benchmarks of boards-api and boards-worker")]
struct Cli {
    #[command(subcommand)]
    command: Option<Bench>,
    #[command(flatten)]
    args: Args,
}

#[derive(clap::Subcommand, Clone)]
enum Bench {
    /// GetBoard / GetBoards over HTTP (the default).
    Http,
    /// Job pipeline: throughput, end-to-end latency, progress latency, SSE fan-out.
    Pipeline(pipeline::PipelineArgs),
    /// Uploads: MiB/s to local and S3 storage, curl ceiling, API RSS under concurrent uploads.
    Uploads(uploads::UploadArgs),
    /// Provider jobs: 1,000 upstream jobs in flight in one worker against a fake fal.ai.
    Providers(providers::ProviderArgs),
    /// Board feeds: many boards × feeds while events flow, and replay on reconnect.
    Feeds(feeds::FeedArgs),
}

#[derive(clap::Args, Clone)]
struct Args {
    /// Path of the API binary (release build).
    #[arg(long, default_value = "target/release/boards-api")]
    api: String,
    /// Seconds of each closed-loop run.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Concurrent connections of the closed loop.
    #[arg(long, default_value_t = 32)]
    connections: usize,
    /// Requests per second of the open-loop run.
    #[arg(long, default_value_t = 500)]
    rate: u64,
    /// API worker threads (0 = one per CPU).
    #[arg(long, default_value_t = 0)]
    api_workers: usize,
    /// Tokens of the HTTP benchmark: `hs256` (the `jwt` provider with a shared secret) or
    /// `rs256` (the `oidc` provider, keys from a JWKS served by a local identity provider).
    #[arg(long, value_enum, default_value_t = AuthMode::Hs256)]
    auth: AuthMode,
}

#[derive(clap::ValueEnum, Clone, Copy, PartialEq, Eq, Debug)]
enum AuthMode {
    Hs256,
    Rs256,
}

/// Issues the benchmark's tokens, for whichever provider the API runs with.
pub(crate) enum Tokens {
    Hs256(JwtProvider),
    Rs256 {
        key: boards_shared::testing::fake_idp::SigningKey,
        idp: boards_shared::testing::fake_idp::FakeIdp,
    },
}

impl Tokens {
    fn sign(&self, sub: &str) -> anyhow::Result<String> {
        let claims = json!({
            "iss": "boards", "aud": "boards-api", "sub": sub,
            "exp": chrono::Utc::now().timestamp() + 24 * 3600,
            "email": format!("{sub}@bench.example"), "name": sub,
        });
        match self {
            Tokens::Hs256(signer) => signer.sign(&claims),
            Tokens::Rs256 { key, idp } => {
                let mut claims = claims;
                claims["iss"] = json!(idp.issuer());
                Ok(key.sign(&claims))
            }
        }
    }

    /// The API environment for this provider.
    fn env(&self) -> Vec<(String, String)> {
        match self {
            Tokens::Hs256(_) => vec![],
            Tokens::Rs256 { idp, .. } => vec![
                ("BOARDS_AUTH_PROVIDER".into(), "oidc".into()),
                (
                    "BOARDS_AUTH_CONFIG".into(),
                    json!({"issuer": idp.issuer(), "client_id": "boards-api"}).to_string(),
                ),
            ],
        }
    }
}

pub(crate) struct Api {
    pub(crate) child: Child,
    pub(crate) base: String,
}

impl Drop for Api {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub(crate) fn free_port() -> anyhow::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

pub(crate) async fn start_api_with(
    args: &Args,
    db: &TestDb,
    extra: &[(String, String)],
) -> anyhow::Result<Api> {
    let port = free_port()?;
    let child = Command::new(&args.api)
        .arg("serve")
        .env("BOARDS_DATABASE_URL", db.url())
        .env("BOARDS_API_PORT", port.to_string())
        .env("BOARDS_API_WORKERS", args.api_workers.to_string())
        .env("BOARDS_AUTH_PROVIDER", "jwt")
        .env("BOARDS_JWT_SECRET", SECRET)
        .env("BOARDS_LOG_LEVEL", "warning")
        .env("BOARDS_LOG_FORMAT", "json")
        .env("BOARDS_DATABASE_POOL_SIZE", "16")
        .env("BOARDS_DATABASE_MAX_OVERFLOW", "16")
        .envs(extra.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .stdout(Stdio::null())
        .spawn()
        .with_context(|| format!("starting {} (run `make release` first)", args.api))?;
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    for _ in 0..200 {
        if client.get(format!("{base}/health")).send().await.is_ok() {
            return Ok(Api { child, base });
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    bail!("the API did not start")
}

/// A worker process, killed when dropped.
pub(crate) struct Worker(pub(crate) std::process::Child);

impl Drop for Worker {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The environment of a benchmark's API and worker: its own database, storage folder, queue
/// and channel names (`bench-{tag}`), quiet JSON logs, JWT auth with the benchmark's secret,
/// a generation quota no benchmark reaches.
pub(crate) fn stack_env(
    db: &TestDb,
    storage: &std::path::Path,
    tag: &str,
    worker_concurrency: usize,
) -> Vec<(String, String)> {
    vec![
        ("BOARDS_AMQP_PREFIX".into(), format!("bench-{tag}")),
        (
            "BOARDS_REDIS_CHANNEL_PREFIX".into(),
            format!("bench-{tag}:"),
        ),
        (
            "BOARDS_STORAGE_LOCAL_BASE_PATH".into(),
            storage.to_string_lossy().to_string(),
        ),
        (
            "BOARDS_WORKER_CONCURRENCY".into(),
            worker_concurrency.to_string(),
        ),
        ("BOARDS_WORKER_HEALTH_PORT".into(), "0".into()),
        ("BOARDS_LOG_LEVEL".into(), "warning".into()),
        ("BOARDS_LOG_FORMAT".into(), "json".into()),
        ("BOARDS_DATABASE_URL".into(), db.url().to_string()),
        ("BOARDS_AUTH_PROVIDER".into(), "jwt".into()),
        ("BOARDS_JWT_SECRET".into(), SECRET.into()),
        // One user starts every job: the limiter still runs (its Redis call is measured) but
        // never refuses.
        ("BOARDS_RATE_LIMIT_GENERATIONS".into(), "1000000/1".into()),
    ]
}

struct Seeded {
    owner_token: String,
    board_id: String,
    lister_token: String,
}

/// Signs the benchmark's tokens (the API runs with the same secret).
pub(crate) fn signer() -> anyhow::Result<JwtProvider> {
    JwtProvider::from_config(&AuthConfig {
        provider: "jwt".into(),
        config: json!({}),
        jwt_secret: Some(boards_shared::config::Secret::new(SECRET)),
        jwt_tenant_claim: None,
        leeway_seconds: 60,
        env: Default::default(),
    })
}

pub(crate) fn token(signer: &JwtProvider, sub: &str) -> anyhow::Result<String> {
    signer.sign(&json!({
        "iss": "boards", "aud": "boards-api", "sub": sub,
        "exp": chrono::Utc::now().timestamp() + 24 * 3600,
        "email": format!("{sub}@bench.example"), "name": sub,
    }))
}

async fn gql(
    client: &reqwest::Client,
    base: &str,
    token: &str,
    query: &str,
    vars: Value,
) -> anyhow::Result<Value> {
    let res: Value = client
        .post(format!("{base}/graphql"))
        .bearer_auth(token)
        .json(&json!({"query": query, "variables": vars}))
        .send()
        .await?
        .json()
        .await?;
    if res.get("errors").is_some() {
        bail!("GraphQL error: {res}");
    }
    Ok(res["data"].clone())
}

async fn seed(api: &Api, db: &TestDb, tokens: &Tokens) -> anyhow::Result<Seeded> {
    let client = reqwest::Client::new();
    let base = api.base.as_str();
    let owner = tokens.sign("owner")?;
    let create = "mutation($i: CreateBoardInput!) { createBoard(input: $i) { id } }";
    let add = "mutation($b: UUID!, $e: String!) { addBoardMember(boardId: $b, email: $e, role: EDITOR) { id } }";
    let me = "{ me { id } }";
    let owner_id = gql(&client, base, &owner, me, json!({})).await?["me"]["id"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let board = gql(&client, base, &owner, create, json!({"i": {"title": "Benchmark board", "description": "100 generations, 10 members", "settings": {"layout": "grid"}}})).await?;
    let board_id = board["createBoard"]["id"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    for i in 0..10 {
        let member = tokens.sign(&format!("member{i}"))?;
        gql(&client, base, &member, me, json!({})).await?;
        gql(
            &client,
            base,
            &owner,
            add,
            json!({"b": board_id, "e": format!("member{i}@bench.example")}),
        )
        .await?;
    }
    let mut conn = db.connect().await?;
    diesel::sql_query(format!(
        "INSERT INTO boards.generations (tenant_id, board_id, user_id, generator_name, artifact_type, input_params,
           status, progress, storage_url, output_metadata, completed_at)
         SELECT b.tenant_id, b.id, '{owner_id}', 'local-image', 'image',
           jsonb_build_object('prompt', 'benchmark image ' || n, 'width', 512, 'height', 512, 'style', 'gradient'),
           'completed', 100, 'http://localhost:8088/api/storage/bench/' || n || '.png',
           jsonb_build_object('format', 'png', 'width', 512, 'height', 512), now() - (n || ' seconds')::interval
         FROM boards.boards b, generate_series(1, 100) n WHERE b.id = '{board_id}'"
    ))
    .execute(&mut conn)
    .await?;

    let lister = tokens.sign("lister")?;
    for i in 0..50 {
        gql(&client, base, &lister, create, json!({"i": {"title": format!("Board {i}"), "description": "bench", "settings": {"i": i}}})).await?;
    }
    Ok(Seeded {
        owner_token: owner,
        board_id,
        lister_token: lister,
    })
}

const USER_FRAGMENT: &str =
    "fragment UserFragment on User { __typename id email displayName avatarUrl createdAt }";
const BOARD_FRAGMENT: &str = "fragment BoardFragment on Board { __typename id tenantId ownerId title description isPublic settings metadata createdAt updatedAt generationCount }";
const GENERATION_FRAGMENT: &str = "fragment GenerationFragment on Generation { __typename id boardId userId generatorName artifactType status progress storageUrl thumbnailUrl inputParams outputMetadata errorMessage createdAt updatedAt completedAt }";

fn get_board() -> String {
    format!("query GetBoard($id: UUID!, $limit: Int, $offset: Int) {{ board(id: $id) {{ ...BoardFragment owner {{ ...UserFragment }} members {{ __typename id boardId userId role invitedBy joinedAt user {{ ...UserFragment }} inviter {{ ...UserFragment }} }} generations(limit: $limit, offset: $offset) {{ ...GenerationFragment }} }} }} {BOARD_FRAGMENT} {USER_FRAGMENT} {GENERATION_FRAGMENT}")
}

fn get_boards() -> String {
    format!("query GetBoards($limit: Int, $offset: Int) {{ myBoards(limit: $limit, offset: $offset) {{ ...BoardFragment owner {{ ...UserFragment }} }} }} {BOARD_FRAGMENT} {USER_FRAGMENT}")
}

#[derive(Clone)]
struct Scenario {
    name: &'static str,
    url: String,
    token: String,
    body: Arc<Vec<u8>>,
}

impl Scenario {
    async fn send(&self, client: &reqwest::Client) -> anyhow::Result<usize> {
        let res = client
            .post(&self.url)
            .bearer_auth(&self.token)
            .header("content-type", "application/json")
            .body(self.body.as_ref().clone())
            .send()
            .await?;
        if !res.status().is_success() {
            bail!("HTTP {}", res.status());
        }
        let bytes = res.bytes().await?;
        if bytes.starts_with(b"{\"data\":null") || bytes.windows(9).any(|w| w == b"\"errors\":") {
            bail!(
                "GraphQL error: {}",
                String::from_utf8_lossy(&bytes[..bytes.len().min(300)])
            );
        }
        Ok(bytes.len())
    }
}

struct Report {
    requests: u64,
    errors: u64,
    elapsed: Duration,
    bytes: usize,
    hist: Histogram<u64>,
}

impl Report {
    fn line(&self, name: &str, mode: &str) -> String {
        let ms = |q: f64| self.hist.value_at_quantile(q) as f64 / 1000.0;
        format!(
            "| {name} | {mode} | {:.0} | {:.2} | {:.2} | {:.2} | {:.2} | {} | {} |",
            self.requests as f64 / self.elapsed.as_secs_f64(),
            ms(0.5),
            ms(0.9),
            ms(0.99),
            self.hist.max() as f64 / 1000.0,
            self.errors,
            self.bytes,
        )
    }
}

/// Counts streams reporting themselves open on `opened`, until `expected` did or a minute
/// passed; returns how many did.
pub(crate) async fn wait_open(
    opened: &mut tokio::sync::mpsc::UnboundedReceiver<()>,
    expected: usize,
) -> usize {
    let mut open = 0;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while open < expected && std::time::Instant::now() < deadline {
        if tokio::time::timeout(std::time::Duration::from_secs(1), opened.recv())
            .await
            .ok()
            .flatten()
            .is_some()
        {
            open += 1;
        }
    }
    open
}

/// Quantile `q` of a histogram recorded in microseconds, in milliseconds.
pub(crate) fn ms(h: &Histogram<u64>, q: f64) -> f64 {
    h.value_at_quantile(q) as f64 / 1000.0
}

/// The lines of a raw SSE request to `path` on 127.0.0.1:`port` (resuming after
/// `last_event_id` when given): no client library between the stream and the clock.
pub(crate) async fn sse_lines(
    port: u16,
    path: &str,
    token: &str,
    last_event_id: Option<&str>,
) -> anyhow::Result<tokio::io::Lines<tokio::io::BufReader<tokio::net::TcpStream>>> {
    use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _};
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port)).await?;
    let resume = last_event_id
        .map(|id| format!("Last-Event-ID: {id}\r\n"))
        .unwrap_or_default();
    stream
        .write_all(format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {token}\r\nAccept: text/event-stream\r\n{resume}\r\n").as_bytes())
        .await?;
    Ok(tokio::io::BufReader::new(stream).lines())
}

/// Milliseconds from an event's `timestamp` to now, when it has one.
pub(crate) fn delay_since(event: &Value) -> Option<f64> {
    let ts = chrono::DateTime::parse_from_rfc3339(event["timestamp"].as_str()?).ok()?;
    let delay = chrono::Utc::now() - ts.with_timezone(&chrono::Utc);
    Some(delay.num_microseconds().unwrap_or(0) as f64 / 1000.0)
}

pub(crate) fn histogram() -> anyhow::Result<Histogram<u64>> {
    Ok(Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)?)
}

/// C connections, each sending the next request as soon as the last one answered.
async fn closed_loop(
    s: &Scenario,
    connections: usize,
    duration: Duration,
) -> anyhow::Result<Report> {
    let deadline = Instant::now() + duration;
    let started = Instant::now();
    let mut tasks = vec![];
    for _ in 0..connections {
        let s = s.clone();
        tasks.push(tokio::spawn(async move {
            let client = reqwest::Client::builder()
                .pool_max_idle_per_host(1)
                .build()?;
            let mut hist = histogram()?;
            let (mut n, mut errors, mut bytes) = (0u64, 0u64, 0usize);
            while Instant::now() < deadline {
                let t = Instant::now();
                match s.send(&client).await {
                    Ok(b) => {
                        bytes = b;
                        n += 1;
                        hist.record(t.elapsed().as_micros() as u64)?;
                    }
                    Err(_) => errors += 1,
                }
            }
            anyhow::Ok((n, errors, bytes, hist))
        }));
    }
    let mut report = Report {
        requests: 0,
        errors: 0,
        elapsed: Duration::ZERO,
        bytes: 0,
        hist: histogram()?,
    };
    for t in tasks {
        let (n, e, b, h) = t.await??;
        report.requests += n;
        report.errors += e;
        report.bytes = report.bytes.max(b);
        report.hist.add(h)?;
    }
    report.elapsed = started.elapsed();
    Ok(report)
}

/// Requests started on a fixed schedule; latency counts from the scheduled start.
async fn open_loop(s: &Scenario, rate: u64, duration: Duration) -> anyhow::Result<Report> {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(256)
        .build()?;
    let interval = Duration::from_secs_f64(1.0 / rate as f64);
    let total = (rate as f64 * duration.as_secs_f64()) as u64;
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(total as usize);
    for i in 0..total {
        let scheduled = started + interval * i as u32;
        tokio::time::sleep_until(scheduled.into()).await;
        let (s, client) = (s.clone(), client.clone());
        tasks.push(tokio::spawn(async move {
            let r = s.send(&client).await;
            (r, scheduled.elapsed())
        }));
    }
    let mut report = Report {
        requests: 0,
        errors: 0,
        elapsed: Duration::ZERO,
        bytes: 0,
        hist: histogram()?,
    };
    for t in tasks {
        let (r, latency) = t.await?;
        match r {
            Ok(b) => {
                report.requests += 1;
                report.bytes = b;
                report.hist.record(latency.as_micros() as u64)?;
            }
            Err(_) => report.errors += 1,
        }
    }
    report.elapsed = started.elapsed();
    Ok(report)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Some(Bench::Pipeline(p)) => pipeline::run(&cli.args, &p).await,
        Some(Bench::Uploads(u)) => uploads::run(&cli.args, &u).await,
        Some(Bench::Providers(p)) => providers::run(&cli.args, &p).await,
        Some(Bench::Feeds(f)) => feeds::run(&cli.args, &f).await,
        Some(Bench::Http) | None => http(cli.args).await,
    }
}

async fn http(args: Args) -> anyhow::Result<()> {
    let db = TestDb::new()
        .await
        .context("creating the benchmark database")?;
    let tokens = match args.auth {
        AuthMode::Hs256 => Tokens::Hs256(signer()?),
        AuthMode::Rs256 => {
            let idp = boards_shared::testing::fake_idp::FakeIdp::start().await;
            let key = boards_shared::testing::fake_idp::SigningKey::rsa("bench-1");
            idp.publish(&[&key]);
            Tokens::Rs256 { key, idp }
        }
    };
    let api = start_api_with(&args, &db, &tokens.env()).await?;
    let seeded = seed(&api, &db, &tokens).await?;
    println!("tokens: {:?}", args.auth);
    let url = format!("{}/graphql", api.base);
    let body = |query: String, vars: Value| {
        Arc::new(
            json!({"query": query, "variables": vars})
                .to_string()
                .into_bytes(),
        )
    };
    let scenarios = [
        Scenario {
            name: "GetBoard (100 generations, 10 members)",
            url: url.clone(),
            token: seeded.owner_token.clone(),
            body: body(
                get_board(),
                json!({"id": seeded.board_id, "limit": 100, "offset": 0}),
            ),
        },
        Scenario {
            name: "GetBoards (50 boards with owners)",
            url,
            token: seeded.lister_token.clone(),
            body: body(get_boards(), json!({"limit": 50, "offset": 0})),
        },
    ];
    let duration = Duration::from_secs(args.seconds);
    println!(
        "| scenario | mode | req/s | p50 ms | p90 ms | p99 ms | max ms | errors | response bytes |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    for s in &scenarios {
        // Warm-up: connections, prepared statements, caches.
        closed_loop(s, args.connections, Duration::from_secs(2)).await?;
        let r = closed_loop(s, args.connections, duration).await?;
        println!(
            "{}",
            r.line(
                s.name,
                &format!("closed loop, {} connections", args.connections)
            )
        );
        let r = open_loop(s, args.rate, duration).await?;
        println!(
            "{}",
            r.line(s.name, &format!("open loop, {} req/s", args.rate))
        );
    }
    Ok(())
}
