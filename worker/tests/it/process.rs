//! The worker as a process: SIGTERM drains running jobs; `kill -9` in the middle of jobs loses
//! none and completes each exactly once (another worker finishes them after the lease).

use std::{
    collections::{BTreeMap, HashMap},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use boards_shared::{testing::TestDb, Config};
use futures::StreamExt as _;
use serde_json::{json, Value};

struct Stack {
    config: Config,
    env: BTreeMap<String, String>,
    base: String,
    client: reqwest::Client,
    _db: TestDb,
    _storage: tempfile::TempDir,
}

async fn stack() -> Stack {
    let db = TestDb::new().await.unwrap();
    let storage = tempfile::tempdir().unwrap();
    let tag = uuid::Uuid::new_v4().simple().to_string()[..10].to_string();
    let mut env = BTreeMap::new();
    for (k, v) in [
        ("BOARDS_DATABASE_URL", db.url().to_string()),
        ("BOARDS_API_PORT", "0".into()),
        ("BOARDS_API_WORKERS", "1".into()),
        ("BOARDS_AMQP_PREFIX", format!("proc-{tag}")),
        ("BOARDS_REDIS_CHANNEL_PREFIX", format!("proc-{tag}:")),
        (
            "BOARDS_STORAGE_LOCAL_BASE_PATH",
            storage.path().to_string_lossy().to_string(),
        ),
        ("BOARDS_JOB_LEASE_SECONDS", "2".into()),
        ("BOARDS_JOB_RELAY_INTERVAL_MS", "200".into()),
        ("BOARDS_WORKER_HEALTH_PORT", "0".into()),
        ("BOARDS_WORKER_HEALTH_HOST", "127.0.0.1".into()),
        ("BOARDS_WORKER_CONCURRENCY", "3".into()),
        ("BOARDS_WORKER_SHUTDOWN_GRACE_SECONDS", "15".into()),
        ("BOARDS_LOG_FORMAT", "json".into()),
    ] {
        env.insert(k.to_string(), v);
    }
    let config = Config::load_from(&env).unwrap();
    let app = boards_api::Application::build(config.clone(), boards_shared::logging::discard())
        .await
        .unwrap();
    let base = format!("http://127.0.0.1:{}", app.port());
    tokio::spawn(app.run_until_stopped());
    Stack {
        config,
        env,
        base,
        client: reqwest::Client::new(),
        _db: db,
        _storage: storage,
    }
}

impl Stack {
    fn spawn_worker(&self) -> Child {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_boards-worker"));
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        cmd.stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap()
    }

    async fn gql(&self, query: &str, variables: Value) -> Value {
        let res: Value = self
            .client
            .post(format!("{}/graphql", self.base))
            .json(&json!({"query": query, "variables": variables}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert!(res.get("errors").is_none(), "{res}");
        res["data"].clone()
    }

    async fn board(&self) -> String {
        let d = self
            .gql(
                "mutation { createBoard(input: {title: \"p\"}) { id } }",
                json!({}),
            )
            .await;
        d["createBoard"]["id"].as_str().unwrap().to_string()
    }

    async fn echo(&self, board: &str, delay_ms: u64) -> String {
        let d = self
            .gql(
                "mutation($i: CreateGenerationInput!) { createGeneration(input: $i) { id } }",
                json!({"i": {"boardId": board, "generatorName": "local-echo", "artifactType": "TEXT",
                    "inputParams": {"prompt": "hi", "delay_ms": delay_ms}}}),
            )
            .await;
        d["createGeneration"]["id"].as_str().unwrap().to_string()
    }

    async fn statuses(&self, ids: &[String]) -> Vec<String> {
        let mut out = vec![];
        for id in ids {
            let d = self
                .gql(
                    "query($id: UUID!) { generation(id: $id) { status } }",
                    json!({"id": id}),
                )
                .await;
            out.push(d["generation"]["status"].as_str().unwrap().to_string());
        }
        out
    }

    async fn wait_all(&self, ids: &[String], status: &str, within: Duration) {
        let deadline = Instant::now() + within;
        loop {
            let s = self.statuses(ids).await;
            if s.iter().all(|x| x == status) {
                return;
            }
            assert!(Instant::now() < deadline, "not all {status}: {s:?}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn wait_any(&self, ids: &[String], status: &str, within: Duration) {
        let deadline = Instant::now() + within;
        loop {
            if self.statuses(ids).await.iter().any(|x| x == status) {
                return;
            }
            assert!(Instant::now() < deadline, "none {status}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Counts `completed` events per generation on the test's progress channels.
    async fn count_completions(&self) -> tokio::sync::watch::Receiver<HashMap<String, u32>> {
        let client = redis::Client::open(self.config.redis.url.expose()).unwrap();
        let mut pubsub = client.get_async_pubsub().await.unwrap();
        pubsub
            .psubscribe(boards_shared::progress::progress_pattern(
                &self.config.redis.channel_prefix,
            ))
            .await
            .unwrap();
        let (tx, rx) = tokio::sync::watch::channel(HashMap::new());
        tokio::spawn(async move {
            let mut messages = pubsub.into_on_message();
            while let Some(m) = messages.next().await {
                let payload: String = m.get_payload().unwrap_or_default();
                let v: Value = serde_json::from_str(&payload).unwrap_or_default();
                if v["status"] == "completed" {
                    let id = v["job_id"].as_str().unwrap_or_default().to_string();
                    tx.send_modify(|m| *m.entry(id).or_default() += 1);
                }
            }
        });
        rx
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        boards_shared::testing::delete_topology(
            self.config.amqp.url.expose(),
            &self.config.amqp.prefix,
            &["default"],
            self.config.jobs.retry_delays_ms.len(),
        );
    }
}

fn signal(child: &Child, sig: &str) {
    assert!(Command::new("kill")
        .args([sig, &child.id().to_string()])
        .status()
        .unwrap()
        .success());
}

fn wait_exit(child: &mut Child, within: Duration) -> std::process::ExitStatus {
    let deadline = Instant::now() + within;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        assert!(Instant::now() < deadline, "the worker did not exit");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[tokio::test]
async fn sigterm_lets_running_jobs_finish_then_exits_cleanly() {
    let s = stack().await;
    let mut worker = s.spawn_worker();
    let board = s.board().await;
    let ids = vec![s.echo(&board, 2500).await, s.echo(&board, 2500).await];
    s.wait_all(&ids, "PROCESSING", Duration::from_secs(30))
        .await;
    signal(&worker, "-TERM");
    let status =
        tokio::task::spawn_blocking(move || wait_exit(&mut worker, Duration::from_secs(30)))
            .await
            .unwrap();
    assert!(status.success(), "exit status {status}");
    assert_eq!(s.statuses(&ids).await, vec!["COMPLETED", "COMPLETED"]);
}

#[tokio::test]
async fn a_killed_worker_loses_no_job_and_nothing_completes_twice() {
    let s = stack().await;
    let completions = s.count_completions().await;
    let mut first = s.spawn_worker();
    let board = s.board().await;
    let mut ids = vec![];
    for _ in 0..6 {
        ids.push(s.echo(&board, 1500).await);
    }
    s.wait_any(&ids, "PROCESSING", Duration::from_secs(30))
        .await;
    signal(&first, "-KILL");
    let _ =
        tokio::task::spawn_blocking(move || wait_exit(&mut first, Duration::from_secs(10))).await;
    // Jobs the dead worker held stay `processing` until their lease runs out; then the
    // second worker's reaper hands them back and it finishes them.
    let mut second = s.spawn_worker();
    s.wait_all(&ids, "COMPLETED", Duration::from_secs(60)).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let counts = completions.borrow().clone();
    for id in &ids {
        assert_eq!(
            counts.get(id).copied(),
            Some(1),
            "completions of {id}: {counts:?}"
        );
    }
    signal(&second, "-TERM");
    let status =
        tokio::task::spawn_blocking(move || wait_exit(&mut second, Duration::from_secs(30)))
            .await
            .unwrap();
    assert!(status.success());
}
