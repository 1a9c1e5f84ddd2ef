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

/// A worker process, killed (`-9`) if the test ends while it still runs (a failing test must
/// not leave workers behind that redeclare queues).
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        if matches!(self.0.try_wait(), Ok(None)) {
            let _ = Command::new("kill")
                .args(["-CONT", &self.0.id().to_string()])
                .status();
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

struct Stack {
    config: Config,
    env: BTreeMap<String, String>,
    base: String,
    client: reqwest::Client,
    _db: TestDb,
    _storage: tempfile::TempDir,
}

async fn stack() -> Stack {
    stack_with(&[]).await
}

/// A stack whose configuration has `overrides` on top of the test defaults.
async fn stack_with(overrides: &[(&str, String)]) -> Stack {
    stack_logging_to(overrides, boards_shared::logging::discard()).await
}

/// [`stack_with`], its API logging to `logger`.
async fn stack_logging_to(overrides: &[(&str, String)], logger: slog::Logger) -> Stack {
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
        // A stalled worker's connection (and its unacked deliveries) is dropped in seconds.
        ("BOARDS_AMQP_HEARTBEAT_SECONDS", "2".into()),
    ] {
        env.insert(k.to_string(), v);
    }
    for (k, v) in overrides {
        env.insert(k.to_string(), v.clone());
    }
    let config = Config::load_from(&env).unwrap();
    let app = boards_api::Application::build(config.clone(), logger)
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
    fn spawn_worker(&self) -> Proc {
        self.spawn_worker_with(&[])
    }

    /// A worker whose environment has `overrides` on top of the stack's.
    fn spawn_worker_with(&self, overrides: &[(&str, &str)]) -> Proc {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_boards-worker"));
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        for (k, v) in overrides {
            cmd.env(k, v);
        }
        Proc(
            cmd.stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap(),
        )
    }

    /// A worker whose JSON log lines arrive on the returned channel.
    fn spawn_logged_worker(&self) -> (Proc, std::sync::mpsc::Receiver<Value>) {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_boards-worker"));
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        let mut child = Proc(
            cmd.stdout(Stdio::piped())
                .stderr(Stdio::null())
                .spawn()
                .unwrap(),
        );
        let stdout = child.0.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            use std::io::BufRead as _;
            for line in std::io::BufReader::new(stdout)
                .lines()
                .map_while(Result::ok)
            {
                if let Ok(v) = serde_json::from_str::<Value>(&line) {
                    if tx.send(v).is_err() {
                        return;
                    }
                }
            }
        });
        (child, rx)
    }

    /// Progress events of the test's generations, as they are published.
    async fn progress_events(&self) -> tokio::sync::mpsc::UnboundedReceiver<Value> {
        let client = redis::Client::open(self.config.redis.url.expose()).unwrap();
        let mut pubsub = client.get_async_pubsub().await.unwrap();
        pubsub
            .psubscribe(boards_shared::events::progress_pattern(
                &self.config.redis.channel_prefix,
            ))
            .await
            .unwrap();
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        tokio::spawn(async move {
            let mut messages = pubsub.into_on_message();
            while let Some(m) = messages.next().await {
                let payload: String = m.get_payload().unwrap_or_default();
                if tx
                    .send(serde_json::from_str(&payload).unwrap_or_default())
                    .is_err()
                {
                    return;
                }
            }
        });
        rx
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

    /// A `local-echo` generation requested from the API at `base`, with `traceparent`.
    async fn echo_via(
        &self,
        base: &str,
        board: &str,
        prompt: &str,
        traceparent: Option<&str>,
    ) -> String {
        let mut req = self.client.post(format!("{base}/graphql"));
        if let Some(t) = traceparent {
            req = req.header("traceparent", t);
        }
        let res: Value = req
            .json(&json!({"query": "mutation($i: CreateGenerationInput!) { createGeneration(input: $i) { id } }",
                "variables": {"i": {"boardId": board, "generatorName": "local-echo", "artifactType": "TEXT",
                    "inputParams": {"prompt": prompt}}}}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        res["data"]["createGeneration"]["id"]
            .as_str()
            .unwrap_or_else(|| panic!("{res}"))
            .to_string()
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
        let mut events = self.progress_events().await;
        let (tx, rx) = tokio::sync::watch::channel(HashMap::new());
        tokio::spawn(async move {
            while let Some(v) = events.recv().await {
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
        boards_shared::testing::delete_topology(&self.config, &["default"]);
    }
}

fn signal(child: &Proc, sig: &str) {
    assert!(Command::new("kill")
        .args([sig, &child.0.id().to_string()])
        .status()
        .unwrap()
        .success());
}

fn wait_exit(child: &mut Proc, within: Duration) -> std::process::ExitStatus {
    let deadline = Instant::now() + within;
    loop {
        if let Some(status) = child.0.try_wait().unwrap() {
            return status;
        }
        assert!(Instant::now() < deadline, "the worker did not exit");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// SIGTERM, and a clean exit within 30 s.
async fn stop_cleanly(mut worker: Proc) {
    signal(&worker, "-TERM");
    let status =
        tokio::task::spawn_blocking(move || wait_exit(&mut worker, Duration::from_secs(30)))
            .await
            .unwrap();
    assert!(status.success(), "exit status {status}");
}

/// `kill -9`, and the process gone (at once: waiting blocks only for that moment).
async fn kill(worker: &mut Proc) {
    signal(worker, "-KILL");
    wait_exit(worker, Duration::from_secs(10));
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
    kill(&mut first).await;
    // Jobs the dead worker held stay `processing` until their lease runs out; then the
    // second worker's reaper hands them back and it finishes them.
    let second = s.spawn_worker();
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
    stop_cleanly(second).await;
}

#[tokio::test]
async fn a_worker_killed_while_sending_a_webhook_leaves_it_to_another_with_the_same_id() {
    use wiremock::{matchers::method, Mock, MockServer, ResponseTemplate};
    // The first request hangs (the worker is killed while it waits); later ones succeed.
    let receiver = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_delay(Duration::from_secs(60)))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&receiver)
        .await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200))
        .with_priority(2)
        .mount(&receiver)
        .await;
    let s = stack_with(&[
        ("BOARDS_WEBHOOK_ALLOWED_HOSTS", "127.0.0.1".into()),
        ("BOARDS_WEBHOOK_TIMEOUT_MS", "30000".into()),
    ])
    .await;
    let board = s.board().await;
    let created = s
        .gql(
            "mutation($i: CreateWebhookInput!) { createWebhook(input: $i) { secret webhook { id } } }",
            json!({"i": {"boardId": board, "url": format!("{}/hook", receiver.uri()),
                "eventTypes": ["generation.completed"]}}),
        )
        .await;
    let secret = created["createWebhook"]["secret"]
        .as_str()
        .unwrap()
        .to_string();
    let hook = created["createWebhook"]["webhook"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let mut first = s.spawn_worker();
    let id = s.echo(&board, 0).await;
    s.wait_all(&[id], "COMPLETED", Duration::from_secs(30))
        .await;
    let deadline = Instant::now() + Duration::from_secs(20);
    while receiver
        .received_requests()
        .await
        .unwrap_or_default()
        .is_empty()
    {
        assert!(Instant::now() < deadline, "the webhook was never sent");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    kill(&mut first).await;
    let second = s.spawn_worker();
    let query =
        "query($id: UUID!) { webhookDeliveries(webhookId: $id) { messageId status attempts } }";
    let deadline = Instant::now() + Duration::from_secs(30);
    let delivery = loop {
        let d = s.gql(query, json!({"id": hook})).await;
        let delivery = d["webhookDeliveries"][0].clone();
        if delivery["status"] == "DELIVERED" {
            break delivery;
        }
        assert!(Instant::now() < deadline, "never delivered: {d}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    // The killed attempt was never recorded; the second worker's was.
    assert_eq!(delivery["attempts"], 1);
    let sent = receiver.received_requests().await.unwrap_or_default();
    assert_eq!(sent.len(), 2, "the hung request and the redelivery");
    for r in &sent {
        let header = |name: &str| {
            r.headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_string()
        };
        assert_eq!(
            header("webhook-id"),
            delivery["messageId"].as_str().unwrap()
        );
        assert!(boards_shared::webhooks::verify(
            &secret,
            &header("webhook-id"),
            header("webhook-timestamp").parse().unwrap(),
            &r.body,
            &header("webhook-signature"),
            chrono::Utc::now().timestamp(),
            300,
        ));
    }
    stop_cleanly(second).await;
}

#[tokio::test]
async fn one_generation_carries_one_trace_from_the_request_through_rabbitmq_to_the_worker() {
    use lapin::options::{BasicGetOptions, BasicNackOptions};
    let (logger, api_logs) = boards_shared::testing::capture_logger();
    let s = stack_logging_to(&[], logger).await;
    let board = s.board().await;
    let trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
    let traceparent = format!("00-{trace_id}-00f067aa0ba902b7-01");
    let id = s
        .echo_via(&s.base, &board, "traced", Some(&traceparent))
        .await;

    // The API's log lines of that request carry the trace id.
    let api_lines: Vec<Value> = api_logs
        .records()
        .into_iter()
        .filter(|r| r["trace_id"] == trace_id)
        .collect();
    assert!(
        api_lines
            .iter()
            .any(|r| r["message"] == "request" && r["path"] == "/graphql"),
        "no access log line with the trace id: {:?}",
        api_logs.records()
    );

    // The job message carries it as an AMQP header (looked at, then handed back).
    let conn = boards_shared::queue::connect(s.config.amqp.url.expose(), "trace test", None)
        .await
        .unwrap();
    let queue = boards_shared::queue::Topology::new(&s.config).work_queue("default");
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut channel = conn.create_channel().await.unwrap();
    let message = loop {
        match channel
            .basic_get(queue.as_str().into(), BasicGetOptions::default())
            .await
        {
            Ok(Some(m)) => break m,
            Ok(None) => {}
            // The relay has not declared the queue yet (the broker closed this channel).
            Err(_) => channel = conn.create_channel().await.unwrap(),
        }
        assert!(Instant::now() < deadline, "the job was never published");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let header = message
        .properties
        .headers()
        .as_ref()
        .and_then(|h| h.inner().get("traceparent").cloned());
    let Some(lapin::types::AMQPValue::LongString(traceparent)) = header else {
        panic!("no traceparent header: {:?}", message.properties.headers());
    };
    let traceparent = traceparent.to_string();
    assert!(
        traceparent.starts_with(&format!("00-{trace_id}-")),
        "{traceparent}"
    );
    message
        .nack(BasicNackOptions {
            requeue: true,
            multiple: false,
        })
        .await
        .unwrap();
    let _ = conn.close(200, "done".into()).await;

    // The worker's log lines of that job carry it too.
    let (worker, logs) = s.spawn_logged_worker();
    s.wait_all(
        std::slice::from_ref(&id),
        "COMPLETED",
        Duration::from_secs(30),
    )
    .await;
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut traced = vec![];
    while Instant::now() < deadline {
        match logs.recv_timeout(Duration::from_millis(200)) {
            Ok(r) if r["generation_id"] == id.as_str() => {
                traced.push(r["trace_id"].clone());
                if r["message"]
                    .as_str()
                    .is_some_and(|m| m.contains("completed"))
                {
                    break;
                }
            }
            _ => {}
        }
    }
    assert!(!traced.is_empty(), "no worker log line of the job");
    assert!(
        traced.iter().all(|t| *t == trace_id),
        "worker lines without the trace id: {traced:?}"
    );
    stop_cleanly(worker).await;
}

#[tokio::test]
async fn a_worker_paused_past_its_lease_leaves_the_finished_artifact_intact() {
    let s = stack().await;
    let mut events = s.progress_events().await;
    let (first, first_log) = s.spawn_logged_worker();
    let board = s.board().await;
    let id = s.echo(&board, 6000).await;

    // Pause the first worker during the last step of its run (600 ms before it stores).
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let event = tokio::time::timeout_at(deadline, events.recv())
            .await
            .expect("the run reaches its last step")
            .unwrap();
        if event["job_id"] == id.as_str() && event["message"] == "Step 9 of 10" {
            break;
        }
    }
    signal(&first, "-STOP");
    assert_eq!(
        s.statuses(std::slice::from_ref(&id)).await,
        vec!["PROCESSING"],
        "the first worker finished before it could be paused"
    );

    // Its lease runs out; the reaper of a second worker hands the job out again, the broker
    // takes the paused worker's deliveries back, and the second worker completes the job.
    let second = s.spawn_worker();
    s.wait_all(
        std::slice::from_ref(&id),
        "COMPLETED",
        Duration::from_secs(60),
    )
    .await;
    let before = s
        .gql(
            "query($id: UUID!) { generation(id: $id) { storageUrl outputMetadata } }",
            json!({"id": id}),
        )
        .await["generation"]
        .clone();
    // (The API listens on a port of its own choosing: read the object through it by key.)
    let key = before["outputMetadata"]["storage_key"].as_str().unwrap();
    let url = format!("{}/api/storage/{key}", s.base);
    assert_eq!(s.client.get(&url).send().await.unwrap().status(), 200);

    // The first worker resumes and finishes its stale run; that changes nothing.
    signal(&first, "-CONT");
    let stale_run_ended = tokio::task::spawn_blocking(move || {
        let deadline = Instant::now() + Duration::from_secs(30);
        while let Ok(line) =
            first_log.recv_timeout(deadline.saturating_duration_since(Instant::now()))
        {
            let msg = line["message"].as_str().unwrap_or_default();
            if line["generation_id"] == id.as_str()
                && (msg.starts_with("run stopped")
                    || msg.starts_with("generation stopped")
                    || msg.starts_with("generation completed"))
            {
                return Some(msg.to_string());
            }
        }
        None
    })
    .await
    .unwrap();
    assert!(
        stale_run_ended.is_some(),
        "the resumed worker's run never ended"
    );
    assert_ne!(stale_run_ended.as_deref(), Some("generation completed"));
    let after = s
        .gql(
            "query($id: UUID!) { generation(id: $id) { status storageUrl outputMetadata } }",
            json!({"id": before["outputMetadata"]["generation_id"]}),
        )
        .await["generation"]
        .clone();
    assert_eq!(after["status"], "COMPLETED");
    assert_eq!(after["storageUrl"], before["storageUrl"]);
    assert_eq!(after["outputMetadata"], before["outputMetadata"]);
    let res = s.client.get(&url).send().await.unwrap();
    assert_eq!(res.status(), 200, "the completed artifact was deleted");
    assert_eq!(res.text().await.unwrap(), "hi");

    for w in [&first, &second] {
        signal(w, "-TERM");
    }
    for mut w in [first, second] {
        let _ =
            tokio::task::spawn_blocking(move || wait_exit(&mut w, Duration::from_secs(30))).await;
    }
}

/// A TCP server that accepts connections and never answers (a black-holed host).
async fn black_hole() -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        let mut held = vec![];
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    port
}

#[tokio::test]
async fn jobs_complete_and_cancels_answer_while_redis_is_black_holed() {
    let redis = black_hole().await;
    let s = stack_with(&[("BOARDS_REDIS_URL", format!("redis://127.0.0.1:{redis}"))]).await;
    let worker = s.spawn_worker();
    let board = s.board().await;
    let mut ids = vec![];
    for _ in 0..3 {
        ids.push(s.echo(&board, 1000).await);
    }
    // Each job publishes a dozen progress events; none of them may hold the job up.
    s.wait_all(&ids, "COMPLETED", Duration::from_secs(20)).await;

    let slow = s.echo(&board, 60_000).await;
    s.wait_all(
        std::slice::from_ref(&slow),
        "PROCESSING",
        Duration::from_secs(20),
    )
    .await;
    let cancel = s.gql(
        "mutation($id: UUID!) { cancelGeneration(id: $id) { status } }",
        json!({"id": slow}),
    );
    let cancelled = tokio::time::timeout(Duration::from_secs(4), cancel)
        .await
        .expect("cancelGeneration waited on Redis");
    assert_eq!(cancelled["cancelGeneration"]["status"], "CANCELLED");
    signal(&worker, "-TERM");
    let mut worker = worker;
    let status =
        tokio::task::spawn_blocking(move || wait_exit(&mut worker, Duration::from_secs(30)))
            .await
            .unwrap();
    assert!(status.success(), "exit status {status}");
    assert_eq!(
        s.statuses(std::slice::from_ref(&slow)).await,
        vec!["CANCELLED"]
    );
}

#[tokio::test]
async fn jobs_keep_flowing_after_the_retry_delays_and_queue_type_change() {
    let s = stack_with(&[("BOARDS_JOB_RETRY_DELAYS_MS", "300,600".into())]).await;
    let board = s.board().await;
    let first = s.spawn_worker();
    let before = s.echo(&board, 0).await;
    s.wait_all(
        std::slice::from_ref(&before),
        "COMPLETED",
        Duration::from_secs(30),
    )
    .await;
    signal(&first, "-TERM");

    // An operator changes the delays (and, later, the queue type) and restarts: the new
    // worker and a new API declare what they need and the pipeline keeps going.
    let changed = [("BOARDS_JOB_RETRY_DELAYS_MS", "1000,2000")];
    let second = s.spawn_worker_with(&changed);
    let mut env = s.env.clone();
    env.insert("BOARDS_JOB_RETRY_DELAYS_MS".into(), "1000,2000".into());
    let new_config = Config::load_from(&env).unwrap();
    let api = boards_api::Application::build(new_config.clone(), boards_shared::logging::discard())
        .await
        .unwrap();
    let new_base = format!("http://127.0.0.1:{}", api.port());
    tokio::spawn(api.run_until_stopped());
    let after = s.echo_via(&new_base, &board, "after", None).await;
    s.wait_all(
        std::slice::from_ref(&after),
        "COMPLETED",
        Duration::from_secs(30),
    )
    .await;
    signal(&second, "-TERM");

    // Quorum queues asked for where classic ones exist: used as they are, with a warning.
    let third = s.spawn_worker_with(&[("BOARDS_AMQP_QUEUE_TYPE", "quorum")]);
    let last = s.echo(&board, 0).await;
    s.wait_all(
        std::slice::from_ref(&last),
        "COMPLETED",
        Duration::from_secs(30),
    )
    .await;
    signal(&third, "-TERM");
    boards_shared::testing::delete_topology(&new_config, &["default"]);
}

#[tokio::test]
async fn quorum_queues_are_declared_when_configured() {
    let tag = uuid::Uuid::new_v4().simple().to_string()[..10].to_string();
    let mut env = BTreeMap::new();
    env.insert("BOARDS_AMQP_PREFIX".to_string(), format!("quorum-{tag}"));
    env.insert("BOARDS_AMQP_QUEUE_TYPE".to_string(), "quorum".to_string());
    let config = Config::load_from(&env).unwrap();
    let topology = boards_shared::queue::Topology::new(&config);
    let conn = boards_shared::queue::connect(config.amqp.url.expose(), "test", None)
        .await
        .unwrap();
    let declared = topology.declare(&conn, "default").await.unwrap();
    assert!(declared
        .iter()
        .all(|d| matches!(d, boards_shared::queue::Declared::AsConfigured(_))));
    // A classic declaration of the same work queue is refused: it really is a quorum queue.
    let ch = conn.create_channel().await.unwrap();
    let classic = ch
        .queue_declare(
            topology.work_queue("default").as_str().into(),
            lapin::options::QueueDeclareOptions {
                durable: true,
                ..Default::default()
            },
            Default::default(),
        )
        .await;
    assert!(classic.is_err());
    boards_shared::testing::delete_topology(&config, &["default"]);
}

#[tokio::test]
async fn hostile_image_filters_leave_the_worker_within_its_memory_budget() {
    const BUDGET_MB: u64 = 256;
    let s = stack_with(&[
        ("BOARDS_WORKER_MEMORY_BUDGET_MB", BUDGET_MB.to_string()),
        ("BOARDS_WORKER_CONCURRENCY", "4".into()),
    ])
    .await;
    let worker = s.spawn_worker();
    let board = s.board().await;
    let create = |params: Value| {
        let (s, board) = (&s, &board);
        async move {
            let d = s
                .gql(
                    "mutation($i: CreateGenerationInput!) { createGeneration(input: $i) { id } }",
                    json!({"i": {"boardId": board, "generatorName": params["g"], "artifactType": "IMAGE",
                        "inputParams": params["p"]}}),
                )
                .await;
            d["createGeneration"]["id"].as_str().unwrap().to_string()
        }
    };
    // The largest picture local-image draws, in noise (it compresses badly).
    let source = create(json!({"g": "local-image", "p": {"prompt": "noise", "width": 2048, "height": 2048, "style": "noise"}})).await;
    s.wait_all(
        std::slice::from_ref(&source),
        "COMPLETED",
        Duration::from_secs(120),
    )
    .await;
    let pid = worker.0.id();
    let idle = boards_shared::testing::rss_kib(pid);

    // Four filters whose output would be 8192² (refused from the header, before decoding) and
    // four that fit only one at a time into the budget.
    let mut too_big = vec![];
    let mut fitting = vec![];
    for _ in 0..4 {
        too_big.push(create(json!({"g": "local-image-filter", "p": {"image": source, "filter": "blur", "scale": 4}})).await);
        fitting.push(create(json!({"g": "local-image-filter", "p": {"image": source, "filter": "invert", "scale": 1.8}})).await);
    }
    let mut peak = idle;
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        peak = peak.max(boards_shared::testing::rss_kib(pid));
        let all: Vec<String> = too_big.iter().chain(&fitting).cloned().collect();
        let statuses = s.statuses(&all).await;
        if statuses
            .iter()
            .all(|st| st == "COMPLETED" || st == "FAILED")
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "filters did not finish: {statuses:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(s
        .statuses(&fitting)
        .await
        .iter()
        .all(|st| st == "COMPLETED"));
    for id in &too_big {
        let g = s
            .gql(
                "query($id: UUID!) { generation(id: $id) { status errorMessage } }",
                json!({"id": id}),
            )
            .await["generation"]
            .clone();
        assert_eq!(g["status"], "FAILED");
        assert!(
            g["errorMessage"].as_str().unwrap().contains("8192×8192"),
            "{g}"
        );
    }
    eprintln!("worker RSS: idle {idle} KiB, peak {peak} KiB (budget {BUDGET_MB} MiB)");
    assert!(
        peak.saturating_sub(idle) <= BUDGET_MB * 1024,
        "worker grew from {idle} KiB to {peak} KiB, past its {BUDGET_MB} MiB budget"
    );
    signal(&worker, "-TERM");
}

/// S3 across processes: the worker has a storage directory of its own (no volume shared with
/// the API) and stores generated artifacts and thumbnails in the bucket; their URLs are
/// presigned and work over HTTP. The store going down mid-job is transient: the job is retried,
/// neither fails nor completes while the store is away, and completes once it is back.
#[tokio::test]
async fn artifacts_go_to_s3_and_a_store_outage_is_retried() {
    let mut s3 = boards_shared::testing::SeaweedFs::start().await;
    let stack = stack_with(&[
        ("BOARDS_STORAGE_S3_BUCKET", s3.bucket.clone()),
        ("BOARDS_STORAGE_S3_ENDPOINT_URL", s3.endpoint()),
        ("BOARDS_AWS_ACCESS_KEY_ID", s3.access_key.clone()),
        ("BOARDS_AWS_SECRET_ACCESS_KEY", s3.secret_key.clone()),
        ("BOARDS_STORAGE_DEFAULT_PROVIDER", "s3".into()),
        ("BOARDS_JOB_RETRY_DELAYS_MS", "500".into()),
        ("BOARDS_JOB_MAX_ATTEMPTS", "20".into()),
    ])
    .await;
    let own_dir = tempfile::tempdir().unwrap();
    let own_dir = own_dir.path().to_string_lossy().to_string();
    let _worker = stack.spawn_worker_with(&[("BOARDS_STORAGE_LOCAL_BASE_PATH", &own_dir)]);
    let board = stack.board().await;

    let create = "mutation($i: CreateGenerationInput!) { createGeneration(input: $i) { id } }";
    let image = stack
        .gql(
            create,
            json!({"i": {"boardId": board, "generatorName": "local-image", "artifactType": "IMAGE",
                "inputParams": {"prompt": "s3", "width": 96, "height": 64}}}),
        )
        .await["createGeneration"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    stack
        .wait_all(
            std::slice::from_ref(&image),
            "COMPLETED",
            Duration::from_secs(60),
        )
        .await;
    let get =
        "query($id: UUID!) { generation(id: $id) { storageUrl thumbnailUrl outputMetadata } }";
    let g = stack.gql(get, json!({"id": image})).await["generation"].clone();
    let url = g["storageUrl"].as_str().unwrap();
    assert!(url.starts_with(&s3.endpoint()), "{url}");
    assert!(url.contains("X-Amz-Signature="), "{url}");
    assert_eq!(g["outputMetadata"]["storage_provider"], "s3");
    let res = stack.client.get(url).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let png = res.bytes().await.unwrap();
    assert_eq!(&png[1..4], b"PNG");
    let thumb = stack
        .client
        .get(g["thumbnailUrl"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(thumb.status(), 200);
    // Nothing landed in either process's directory.
    for dir in [&own_dir, &stack.config.storage.local_base_path] {
        let files = std::fs::read_dir(dir).map(|d| d.count()).unwrap_or(0);
        assert_eq!(files, 0, "{dir}");
    }

    s3.stop().await;
    let echo = stack.echo(&board, 0).await;
    // While the store is away the job is retried: never failed, never completed.
    let deadline = Instant::now() + Duration::from_secs(4);
    while Instant::now() < deadline {
        let status = stack.statuses(std::slice::from_ref(&echo)).await.remove(0);
        assert!(
            matches!(status.as_str(), "PENDING" | "PROCESSING"),
            "{status}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    s3.restart().await;
    stack
        .wait_all(
            std::slice::from_ref(&echo),
            "COMPLETED",
            Duration::from_secs(60),
        )
        .await;
    let g = stack.gql(get, json!({"id": echo})).await["generation"].clone();
    let res = stack
        .client
        .get(g["storageUrl"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.text().await.unwrap(), "hi");
}

/// A worker killed while it waits on fal.ai: the next worker resumes polling the same upstream
/// request (its id was recorded before waiting) and never submits the job again.
#[tokio::test]
async fn a_worker_killed_mid_poll_is_resumed_without_a_second_submit() {
    use boards_shared::testing::fake_fal::{Behaviour, FakeFal};
    let fake = FakeFal::start(Behaviour {
        never_finish: true,
        ..Behaviour::default()
    })
    .await;
    let s = stack_with(&[
        ("FAL_KEY", "test-fal-key".into()),
        ("BOARDS_FAL_BASE_URL", fake.url()),
        ("BOARDS_FAL_REST_URL", fake.url()),
        ("BOARDS_PROVIDER_POLL_INTERVAL_MS", "50".into()),
        ("BOARDS_PROVIDER_MAX_POLL_INTERVAL_MS", "100".into()),
    ])
    .await;
    let mut first = s.spawn_worker();
    let board = s.board().await;
    let d = s
        .gql(
            "mutation($i: CreateGenerationInput!) { createGeneration(input: $i) { id } }",
            json!({"i": {"boardId": board, "generatorName": "fal-flux-pro-ultra", "artifactType": "IMAGE",
                "inputParams": {"prompt": "a quiet harbour"}}}),
        )
        .await;
    let id = d["createGeneration"]["id"].as_str().unwrap().to_string();
    let deadline = Instant::now() + Duration::from_secs(30);
    while fake.polls() < 3 {
        assert!(Instant::now() < deadline, "the first worker never polled");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    kill(&mut first).await;
    let polls_before = fake.polls();
    fake.set(|b| {
        b.never_finish = false;
        b.polls_to_finish = polls_before + 2;
    });
    let mut second = s.spawn_worker();
    s.wait_all(
        std::slice::from_ref(&id),
        "COMPLETED",
        Duration::from_secs(60),
    )
    .await;
    assert_eq!(fake.submits(), 1, "the upstream job was submitted once");
    assert!(
        fake.polls() > polls_before,
        "the second worker polled the same request"
    );
    signal(&second, "-TERM");
    let _ =
        tokio::task::spawn_blocking(move || wait_exit(&mut second, Duration::from_secs(30))).await;
}
