//! Full-path fetcher tests. Every server listens on loopback, and every name the fake resolver
//! knows maps to a loopback address, so even a broken check could only ever reach loopback.

use std::sync::Arc;
use std::time::Duration;

use super::testing::{ok, redirect, status, FakeResolver, Reply, TestServer};
use super::{AllowList, FetchError, FetchPolicy, Fetcher};
use crate::storage::{collect, StorageError};

fn policy(allow: &[&str]) -> FetchPolicy {
    let allow = allow.iter().map(|e| (*e).to_owned()).collect::<Vec<_>>();
    FetchPolicy {
        allow: AllowList::parse(&allow).unwrap(),
        ..FetchPolicy::default()
    }
}

fn fetcher(policy: FetchPolicy) -> Fetcher {
    let resolver = FakeResolver::default()
        .with("files.test", &["127.0.0.1"])
        .with("other.test", &["127.0.0.2"]);
    Fetcher::new(policy, Arc::new(resolver))
}

async fn png_server() -> TestServer {
    TestServer::start("127.0.0.1", |_| ok("image/png", b"\x89PNG data")).await
}

#[tokio::test]
async fn a_loopback_server_is_refused_by_default_without_connecting() {
    let server = png_server().await;
    let url = format!("http://127.0.0.1:{}/a.png", server.port());

    let err = fetcher(FetchPolicy::default()).get(&url).await.unwrap_err();

    assert!(
        matches!(&err, FetchError::NotAllowed(r) if r.contains("loopback")),
        "{err}"
    );
    assert_eq!(server.connections(), 0);
}

#[tokio::test]
async fn an_allow_listed_network_is_fetched_with_body_and_content_type() {
    let server = png_server().await;
    let url = format!("http://127.0.0.1:{}/a.png", server.port());

    let fetched = fetcher(policy(&["127.0.0.1/32"])).get(&url).await.unwrap();

    assert_eq!(fetched.status, 200);
    assert_eq!(fetched.content_type.as_deref(), Some("image/png"));
    assert_eq!(fetched.content_length, Some(9));
    assert_eq!(fetched.final_url.as_str(), url);
    assert_eq!(
        collect(fetched.body, u64::MAX).await.unwrap(),
        b"\x89PNG data"
    );
}

#[tokio::test]
async fn an_allow_listed_name_is_fetched_from_the_pinned_address() {
    // `files.test` exists only in the fake resolver: the request can only have reached the
    // server through the pinned address, and it carries the name in its Host header.
    let server = png_server().await;
    let url = format!("http://files.test:{}/a.png", server.port());

    let fetched = fetcher(policy(&["files.test"])).get(&url).await.unwrap();

    assert_eq!(
        collect(fetched.body, u64::MAX).await.unwrap(),
        b"\x89PNG data"
    );
    let requests = server.requests.lock().unwrap().clone();
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].path, "/a.png");
    let host = format!("files.test:{}", server.port());
    assert_eq!(requests[0].host.as_deref(), Some(host.as_str()));
}

/// `/hops/N` redirects (relatively) to `/hops/N-1`; `/hops/0` is the file.
async fn chain_server() -> TestServer {
    TestServer::start("127.0.0.1", |req| {
        match req
            .path
            .strip_prefix("/hops/")
            .and_then(|n| n.parse::<u32>().ok())
        {
            Some(0) => ok("text/plain", b"end"),
            Some(n) => redirect(&format!("/hops/{}", n - 1)),
            None => status(404),
        }
    })
    .await
}

#[tokio::test]
async fn up_to_three_redirects_are_followed_and_a_fourth_is_an_error() {
    let server = chain_server().await;
    let fetcher = fetcher(policy(&["127.0.0.1/32"]));
    let base = format!("http://127.0.0.1:{}", server.port());

    let fetched = fetcher.get(&format!("{base}/hops/3")).await.unwrap();
    assert_eq!(fetched.final_url.as_str(), format!("{base}/hops/0"));

    let err = fetcher.get(&format!("{base}/hops/4")).await.unwrap_err();
    assert!(matches!(err, FetchError::TooManyRedirects), "{err:?}");
}

#[tokio::test]
async fn a_redirect_to_a_name_on_an_unlisted_address_is_refused_before_connecting() {
    let target = TestServer::start("127.0.0.2", |_| ok("text/plain", b"secret")).await;
    let location = format!("http://other.test:{}/secret", target.port());
    let server = TestServer::start("127.0.0.1", move |_| redirect(&location)).await;
    let url = format!("http://127.0.0.1:{}/a.png", server.port());

    let err = fetcher(policy(&["127.0.0.1/32"]))
        .get(&url)
        .await
        .unwrap_err();

    let FetchError::NotAllowed(reason) = &err else {
        panic!("expected a refusal, got {err:?}");
    };
    assert!(
        reason.contains("redirect") && reason.contains("loopback"),
        "{reason}"
    );
    assert!(!err.to_string().contains("127.0.0.2"), "{err}");
    assert_eq!(server.connections(), 1);
    assert_eq!(target.connections(), 0);
}

#[tokio::test]
async fn a_non_success_status_is_reported_with_its_code() {
    let server = TestServer::start("127.0.0.1", |_| status(404)).await;
    let url = format!("http://127.0.0.1:{}/missing.png", server.port());

    let err = fetcher(policy(&["127.0.0.1/32"]))
        .get(&url)
        .await
        .unwrap_err();

    assert!(matches!(err, FetchError::Status(404)), "{err:?}");
    assert_eq!(err.to_string(), "Failed to download from URL: HTTP 404");
}

#[tokio::test]
async fn an_announced_length_over_the_cap_is_refused_before_reading() {
    let server = TestServer::start("127.0.0.1", |_| ok("image/png", &[7; 64])).await;
    let url = format!("http://127.0.0.1:{}/big.png", server.port());
    let policy = FetchPolicy {
        max_bytes: 10,
        ..policy(&["127.0.0.1/32"])
    };

    let err = fetcher(policy).get(&url).await.unwrap_err();

    assert!(
        matches!(
            err,
            FetchError::TooLarge {
                size: Some(64),
                limit: 10
            }
        ),
        "{err:?}"
    );
}

#[tokio::test]
async fn an_unannounced_body_over_the_cap_fails_while_streaming() {
    let server = TestServer::start("127.0.0.1", |req| {
        let body: &[u8] = if req.path == "/small" {
            &[1; 10]
        } else {
            &[1; 64]
        };
        let head = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\n";
        Reply::Raw([&head[..], body].concat())
    })
    .await;
    let fetcher = fetcher(FetchPolicy {
        max_bytes: 10,
        ..policy(&["127.0.0.1/32"])
    });
    let base = format!("http://127.0.0.1:{}", server.port());

    let small = fetcher.get(&format!("{base}/small")).await.unwrap();
    assert_eq!(small.content_length, None);
    assert_eq!(collect(small.body, u64::MAX).await.unwrap().len(), 10);

    let big = fetcher.get(&format!("{base}/big")).await.unwrap();
    let err = collect(big.body, u64::MAX).await.unwrap_err();
    assert!(
        matches!(err, StorageError::TooLarge { limit: 10 }),
        "{err:?}"
    );
}

fn impatient() -> FetchPolicy {
    FetchPolicy {
        connect_timeout: Duration::from_millis(300),
        total_timeout: Duration::from_millis(300),
        ..policy(&["127.0.0.1/32"])
    }
}

#[tokio::test]
async fn a_server_that_never_answers_times_out() {
    let server = TestServer::start("127.0.0.1", |_| Reply::RawThenStall(Vec::new())).await;
    let url = format!("http://127.0.0.1:{}/slow", server.port());

    let err = fetcher(impatient()).get(&url).await.unwrap_err();

    assert!(matches!(err, FetchError::Timeout), "{err:?}");
}

#[tokio::test]
async fn a_body_that_stalls_past_the_total_deadline_fails() {
    let server = TestServer::start("127.0.0.1", |_| {
        Reply::RawThenStall(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nabc".to_vec())
    })
    .await;
    let url = format!("http://127.0.0.1:{}/slow", server.port());

    let fetched = fetcher(impatient()).get(&url).await.unwrap();
    let err = collect(fetched.body, u64::MAX).await.unwrap_err();

    assert!(
        matches!(&err, StorageError::Source(m) if m.contains("timed out")),
        "{err:?}"
    );
}
