//! Worker process tests: the real binary, real services.
#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail loudly by design.

mod process;

use std::{
    io::{BufRead, BufReader},
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use boards_shared::testing::TestDb;

#[tokio::test]
async fn the_worker_connects_and_exits_cleanly_on_sigterm() {
    let db = TestDb::new().await.unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_boards-worker"))
        .env("BOARDS_DATABASE_URL", db.url())
        .env("BOARDS_LOG_FORMAT", "json")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let started = tokio::task::spawn_blocking(move || {
        let mut lines = vec![];
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let started = line.contains("worker started");
            lines.push(line);
            if started {
                return lines;
            }
        }
        panic!("the worker never started: {lines:?}");
    });
    let lines = tokio::time::timeout(Duration::from_secs(30), started)
        .await
        .unwrap()
        .unwrap();
    // The configuration: one record, one field per key (dotted), secrets redacted.
    let records: Vec<serde_json::Value> = lines
        .iter()
        .filter_map(|l| serde_json::from_str(l).ok())
        .filter(|r: &serde_json::Value| r["message"] == "configuration")
        .collect();
    assert_eq!(records.len(), 1, "{lines:?}");
    for key in boards_shared::config::ENV_KEYS {
        assert!(
            records[0].get(key.path).is_some(),
            "{} missing: {}",
            key.path,
            records[0]
        );
    }
    assert_eq!(records[0]["worker.health_host"], "127.0.0.1");
    assert!(records[0].get("effective").is_none());
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            assert!(status.success(), "exit status {status}");
            break;
        }
        assert!(Instant::now() < deadline, "worker did not stop");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[test]
fn the_worker_refuses_invalid_configuration() {
    let out = Command::new(env!("CARGO_BIN_EXE_boards-worker"))
        .env("BOARDS_WORKER_CONCURRENCY", "lots")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("BOARDS_WORKER_CONCURRENCY"));
}
