//! The API as a process (the real `boards-api` binary): SIGTERM ends open progress streams
//! with a last frame and the process exits as soon as its requests are done; the effective
//! configuration is logged once per process, one field per key.

use std::{
    process::{Child, Command, Stdio},
    sync::mpsc,
    time::{Duration, Instant},
};

use boards_shared::testing::TestDb;
use futures::StreamExt as _;
use serde_json::{json, Value};

/// Liveness deadline: the old API held SIGTERM for its whole 30 s shutdown timeout.
const WITHIN: Duration = Duration::from_secs(10);

/// A child process, killed if the test ends while it still runs.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        if matches!(self.0.try_wait(), Ok(None)) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

/// `boards-api` with only the test's environment: the `none` auth provider, a broker nobody
/// listens on (jobs stay pending in the outbox), JSON logs on stdout.
fn api(db: &TestDb, port: u16, storage: &tempfile::TempDir) -> Command {
    let tag = uuid::Uuid::new_v4().simple().to_string()[..10].to_string();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_boards-api"));
    cmd.env_clear()
        .env("BOARDS_DATABASE_URL", db.url())
        .env("BOARDS_DATABASE_POOL_SIZE", "2")
        .env("BOARDS_API_PORT", port.to_string())
        .env("BOARDS_API_WORKERS", "1")
        .env("BOARDS_AMQP_URL", "amqp://guest:guest@127.0.0.1:9/%2f")
        .env("BOARDS_REDIS_CHANNEL_PREFIX", format!("proc-{tag}:"))
        .env("BOARDS_STORAGE_LOCAL_BASE_PATH", storage.path())
        .env("BOARDS_LOG_FORMAT", "json")
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    cmd
}

/// The JSON log records of `child`, as they are written.
fn records(child: &mut Proc) -> mpsc::Receiver<Value> {
    let stdout = child.0.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
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
    rx
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap()
}

/// The one `configuration` record among `logs`, checked: one field per key, secrets redacted.
fn configuration_record(logs: &[Value], port: u16) -> Value {
    let found: Vec<&Value> = logs
        .iter()
        .filter(|r| r["message"] == "configuration")
        .collect();
    assert_eq!(found.len(), 1, "configuration logged {} times", found.len());
    let record = found[0].clone();
    assert_eq!(record["api.port"], json!(port), "{record}");
    assert_eq!(record["log.format"], "json", "{record}");
    assert_eq!(record["worker.health_host"], "127.0.0.1", "{record}");
    assert!(record["database.url"].as_str().is_some(), "{record}");
    assert!(record.get("effective").is_none(), "{record}");
    assert!(
        record.get("api").is_none(),
        "nested, not flattened: {record}"
    );
    for key in boards_shared::config::ENV_KEYS {
        assert!(
            record.get(key.path).is_some(),
            "{} missing: {record}",
            key.path
        );
    }
    record
}

async fn gql(client: &reqwest::Client, base: &str, query: &str, variables: Value) -> Value {
    let res: Value = client
        .post(format!("{base}/graphql"))
        .bearer_auth("dev-token")
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

#[tokio::test]
async fn sigterm_ends_progress_streams_with_a_last_frame_and_the_api_exits_promptly() {
    let db = TestDb::new().await.unwrap();
    let storage = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut child = Proc(api(&db, port, &storage).arg("serve").spawn().unwrap());
    let logs = records(&mut child);
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !matches!(client.get(format!("{base}/health")).send().await, Ok(r) if r.status() == 200) {
        assert!(Instant::now() < deadline, "the API never became healthy");
        assert!(matches!(child.0.try_wait(), Ok(None)), "the API exited");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let board = gql(
        &client,
        &base,
        "mutation { createBoard(input: {title: \"b\"}) { id } }",
        json!({}),
    )
    .await["createBoard"]["id"]
        .clone();
    let generation = gql(
        &client,
        &base,
        "mutation($input: CreateGenerationInput!) { createGeneration(input: $input) { id } }",
        json!({"input": {"boardId": board, "generatorName": "local-echo", "artifactType": "TEXT", "inputParams": {"prompt": "x"}}}),
    )
    .await["createGeneration"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let res = client
        .get(format!("{base}/api/sse/generations/{generation}/progress"))
        .bearer_auth("dev-token")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let mut body = res.bytes_stream();
    let mut text = String::new();
    while !text.contains("\"status\":\"pending\"") {
        let chunk = tokio::time::timeout(WITHIN, body.next()).await.unwrap();
        text.push_str(&String::from_utf8_lossy(&chunk.unwrap().unwrap()));
    }

    assert!(Command::new("kill")
        .args(["-TERM", &child.0.id().to_string()])
        .status()
        .unwrap()
        .success());

    let deadline = tokio::time::Instant::now() + WITHIN;
    loop {
        match tokio::time::timeout_at(deadline, body.next()).await {
            Ok(Some(Ok(chunk))) => text.push_str(&String::from_utf8_lossy(&chunk)),
            Ok(Some(Err(_)) | None) => break,
            Err(_) => panic!("the stream was not ended on SIGTERM: {text}"),
        }
    }
    assert!(
        text.ends_with(": server shutting down, reconnect\nretry: 1000\n\n"),
        "{text}"
    );
    let status = tokio::task::spawn_blocking(move || {
        let deadline = Instant::now() + WITHIN;
        loop {
            if let Some(status) = child.0.try_wait().unwrap() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "the API did not exit after SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    })
    .await
    .unwrap();
    assert!(status.success(), "exit status {status}");
    let logs: Vec<Value> = logs.try_iter().collect();
    configuration_record(&logs, port);
    assert!(
        logs.iter().any(|r| r["message"] == "API stopped"),
        "{logs:?}"
    );
}

/// The configuration is logged once, and variables that are not read are named (with what to
/// set instead, for the original's).
#[tokio::test]
async fn migrate_logs_the_configuration_once() {
    let db = TestDb::new().await.unwrap();
    let storage = tempfile::tempdir().unwrap();
    let port = free_port();
    let out = tokio::task::spawn_blocking(move || {
        let out = api(&db, port, &storage)
            .arg("migrate")
            .env("BOARDS_OTEL_ENABLED", "true")
            .env("BOARDS_API_PROT", "1")
            .output()
            .unwrap();
        drop(db);
        out
    })
    .await
    .unwrap();
    assert!(out.status.success(), "exit status {}", out.status);
    let logs: Vec<Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    configuration_record(&logs, port);
    assert!(
        logs.iter().any(|r| r["message"] == "migrations applied"),
        "{logs:?}"
    );
    let otel = logs
        .iter()
        .find(|r| r["variable"] == "BOARDS_OTEL_ENABLED")
        .expect("a warning about BOARDS_OTEL_ENABLED");
    assert_eq!(otel["message"], "configuration variable not read");
    assert!(otel["instead"]
        .as_str()
        .unwrap()
        .contains("BOARDS_OTLP_ENDPOINT"));
    let typo = logs
        .iter()
        .find(|r| r["variable"] == "BOARDS_API_PROT")
        .expect("a warning about BOARDS_API_PROT");
    assert_eq!(typo["message"], "unknown configuration variable ignored");
}
