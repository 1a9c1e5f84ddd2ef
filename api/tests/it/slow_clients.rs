//! Clients that stall: a request head or body that stops arriving is cut off, so a slow client
//! cannot hold a connection (and a worker's attention) for ever. Raw TCP on 127.0.0.1.

use std::time::Duration;

use tokio::{
    io::{AsyncReadExt as _, AsyncWriteExt as _},
    net::TcpStream,
};

use crate::util::{Options, TestApp};

/// Liveness deadline: far beyond the 1 s timeouts the tests configure.
const WITHIN: Duration = Duration::from_secs(10);

async fn connect(app: &TestApp) -> TcpStream {
    let address = app.base.trim_start_matches("http://").to_string();
    TcpStream::connect(address).await.unwrap()
}

/// Reads until the server closes the connection; panics if it is still open after `within`.
async fn read_to_close(stream: &mut TcpStream, within: Duration) -> String {
    let mut out = Vec::new();
    let read = tokio::time::timeout(within, async {
        let mut buf = [0u8; 4096];
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => out.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    let text = String::from_utf8_lossy(&out).to_string();
    assert!(
        read.is_ok(),
        "the server kept the stalled connection open; read so far: {text:?}"
    );
    text
}

#[tokio::test]
async fn a_request_body_that_stalls_gets_408_and_the_connection_is_closed() {
    let app =
        TestApp::spawn_with(Options::default().env("BOARDS_API_BODY_TIMEOUT_SECONDS", "1")).await;
    let mut stream = connect(&app).await;
    stream
        .write_all(
            b"POST /graphql HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n\
              Content-Length: 100\r\n\r\n{\"query\": \"{ ",
        )
        .await
        .unwrap();
    let answer = read_to_close(&mut stream, WITHIN).await;
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("Request body timed out"), "{answer}");
    assert!(answer.contains("REQUEST_TIMEOUT"), "{answer}");
}

#[tokio::test]
async fn a_request_head_that_stalls_is_cut_off_at_the_configured_timeout() {
    let app =
        TestApp::spawn_with(Options::default().env("BOARDS_API_HEADER_TIMEOUT_SECONDS", "1")).await;
    let mut stream = connect(&app).await;
    stream
        .write_all(b"POST /graphql HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        .await
        .unwrap();
    // Under actix's own 5 s default: the configured value is the one in force.
    let answer = read_to_close(&mut stream, Duration::from_secs(4)).await;
    assert!(
        answer.is_empty() || answer.starts_with("HTTP/1.1 408"),
        "{answer}"
    );
}

#[tokio::test]
async fn a_body_that_arrives_in_pieces_within_the_deadline_is_served() {
    let app =
        TestApp::spawn_with(Options::default().env("BOARDS_API_BODY_TIMEOUT_SECONDS", "5")).await;
    let body = br#"{"query": "{ __typename }"}"#;
    let mut stream = connect(&app).await;
    stream
        .write_all(
            format!(
                "POST /graphql HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n\
                 Connection: close\r\nContent-Length: {}\r\n\r\n",
                body.len()
            )
            .as_bytes(),
        )
        .await
        .unwrap();
    stream.write_all(&body[..10]).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    stream.write_all(&body[10..]).await.unwrap();
    let answer = read_to_close(&mut stream, WITHIN).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.contains(r#""__typename":"Query""#), "{answer}");
}
