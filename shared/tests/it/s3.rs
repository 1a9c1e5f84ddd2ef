//! The S3 provider against a real S3-compatible server (SeaweedFS on 127.0.0.1, one per test,
//! static credentials only: the AWS default chain is never consulted).

use boards_shared::{
    config::Secret,
    storage::{
        collect, conformance, stream_of, ByteRange, ByteStream, S3Settings, S3Storage, Storage,
        StorageError,
    },
    testing::SeaweedFs,
};
use bytes::Bytes;
use futures::StreamExt as _;
use rusoto_core::{credential::StaticProvider, HttpClient, Region};
use rusoto_s3::{ListMultipartUploadsRequest, S3Client, S3 as _};

const MIB: usize = 1024 * 1024;

/// `len` bytes of a repeatable pattern that no two offsets of a part share.
fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 7 + i / 251) as u8).collect()
}

/// `data` as a stream of 64 KiB chunks (how uploads arrive).
fn chunked(data: Vec<u8>) -> ByteStream {
    let chunks: Vec<_> = data
        .chunks(64 * 1024)
        .map(|c| Ok(Bytes::copy_from_slice(c)))
        .collect();
    futures::stream::iter(chunks).boxed()
}

async fn store_with(fs: &SeaweedFs, edit: impl FnOnce(&mut S3Settings)) -> S3Storage {
    let mut settings = fs.settings();
    edit(&mut settings);
    S3Storage::new(settings).await.unwrap()
}

async fn read(s: &dyn Storage, key: &str, range: Option<ByteRange>) -> Vec<u8> {
    collect(s.get(key, range).await.unwrap(), u64::MAX)
        .await
        .unwrap()
}

/// Multipart uploads started in the test server's bucket and neither completed nor aborted.
async fn pending_uploads(fs: &SeaweedFs) -> Vec<String> {
    let client = S3Client::new_with(
        HttpClient::new().unwrap(),
        StaticProvider::new_minimal(fs.access_key.clone(), fs.secret_key.clone()),
        Region::Custom {
            name: "us-east-1".into(),
            endpoint: fs.endpoint(),
        },
    );
    let out = client
        .list_multipart_uploads(ListMultipartUploadsRequest {
            bucket: fs.bucket.clone(),
            ..Default::default()
        })
        .await
        .unwrap();
    out.uploads
        .unwrap_or_default()
        .into_iter()
        .filter_map(|u| u.key)
        .collect()
}

fn http() -> reqwest::Client {
    // Straight to 127.0.0.1, whatever proxy the environment names.
    reqwest::Client::builder().no_proxy().build().unwrap()
}

#[tokio::test]
async fn the_s3_provider_keeps_the_storage_contract() {
    let fs = SeaweedFs::start().await;
    conformance::check(&fs.storage().await, "contract").await;
    // The same with a key prefix inside the bucket.
    let prefixed = store_with(&fs, |s| s.prefix = "boards/".into()).await;
    conformance::check(&prefixed, "prefixed").await;
}

#[tokio::test]
async fn ranges_are_served_by_the_store() {
    let fs = SeaweedFs::start().await;
    let s = fs.storage().await;
    let data = pattern(100_000);
    s.put(
        "r/original.bin",
        stream_of(data.clone()),
        "application/octet-stream",
        1 << 20,
    )
    .await
    .unwrap();

    let middle = read(
        &s,
        "r/original.bin",
        Some(ByteRange {
            start: 1000,
            end: 1999,
        }),
    )
    .await;
    let tail = read(
        &s,
        "r/original.bin",
        Some(ByteRange {
            start: 99_990,
            end: 200_000,
        }),
    )
    .await;

    assert_eq!(middle, &data[1000..2000]);
    assert_eq!(tail, &data[99_990..]);
    assert!(matches!(
        s.get(
            "r/original.bin",
            Some(ByteRange {
                start: 100_000,
                end: 100_010
            })
        )
        .await,
        Err(StorageError::BadRange)
    ));
    let info = s.head("r/original.bin").await.unwrap();
    assert_eq!(info.size, 100_000);
    assert_eq!(info.content_type, "application/octet-stream");
    assert!(!info.etag.contains('"'), "{}", info.etag);
    assert!(info.last_modified.is_some());
}

#[tokio::test]
async fn a_large_body_goes_up_in_parts_and_comes_back_whole() {
    let fs = SeaweedFs::start().await;
    let s = store_with(&fs, |s| s.part_size = 5 * MIB as u64).await;
    let data = pattern(12 * MIB);

    let stored = s
        .put(
            "big/original.bin",
            chunked(data.clone()),
            "video/mp4",
            100 * MIB as u64,
        )
        .await
        .unwrap();

    assert_eq!(stored.size, 12 * MIB as u64);
    let back = read(&s, "big/original.bin", None).await;
    assert!(
        back == data,
        "the object read back differs from what was sent"
    );
    let info = s.head("big/original.bin").await.unwrap();
    assert_eq!(info.size, 12 * MIB as u64);
    assert_eq!(info.content_type, "video/mp4");
    assert!(pending_uploads(&fs).await.is_empty());
}

/// The buffer budget holds one buffer: concurrent streamed puts take turns (none deadlocks,
/// each comes back whole), and bodies that arrive in one piece need no buffer at all.
#[tokio::test]
async fn concurrent_streamed_puts_share_the_buffer_budget() {
    let fs = SeaweedFs::start().await;
    let s = store_with(&fs, |s| {
        s.part_size = 5 * MIB as u64;
        s.multipart_threshold = 5 * MIB as u64;
        s.buffer_memory = 5 * MIB as u64;
    })
    .await;
    let bodies: Vec<Vec<u8>> = (0..3).map(|i| pattern(7 * MIB + i)).collect();
    let puts = bodies.iter().enumerate().map(|(i, data)| {
        let s = &s;
        async move {
            s.put(
                &format!("turns/{i}.bin"),
                chunked(data.clone()),
                "video/mp4",
                100 * MIB as u64,
            )
            .await
        }
    });
    let small = s.put(
        "turns/small.txt",
        stream_of(&b"one piece"[..]),
        "text/plain",
        100,
    );
    let (results, small) = tokio::join!(futures::future::join_all(puts), small);
    small.unwrap();
    for (i, r) in results.into_iter().enumerate() {
        assert_eq!(r.unwrap().size, bodies[i].len() as u64);
        assert!(read(&s, &format!("turns/{i}.bin"), None).await == bodies[i]);
    }
    assert!(pending_uploads(&fs).await.is_empty());
}

#[tokio::test]
async fn a_multipart_put_that_fails_leaves_no_object_and_no_pending_upload() {
    let fs = SeaweedFs::start().await;
    let s = store_with(&fs, |s| {
        s.part_size = 5 * MIB as u64;
        s.multipart_threshold = 5 * MIB as u64;
    })
    .await;

    // Over the cap after two parts went up.
    let over = s
        .put(
            "cap/original.bin",
            chunked(pattern(12 * MIB)),
            "video/mp4",
            11 * MIB as u64,
        )
        .await;
    // The source breaking after a part went up.
    let mut parts: Vec<Result<Bytes, StorageError>> = vec![Ok(Bytes::from(pattern(6 * MIB)))];
    parts.push(Err(StorageError::Source("the client went away".into())));
    let broken = s
        .put(
            "broken/original.bin",
            futures::stream::iter(parts).boxed(),
            "video/mp4",
            100 * MIB as u64,
        )
        .await;

    assert!(matches!(over, Err(StorageError::TooLarge { limit }) if limit == 11 * MIB as u64));
    assert!(matches!(broken, Err(StorageError::Source(_))));
    for key in ["cap/original.bin", "broken/original.bin"] {
        assert!(
            matches!(s.head(key).await, Err(StorageError::NotFound(_))),
            "{key}"
        );
    }
    assert_eq!(pending_uploads(&fs).await, Vec::<String>::new());
}

#[tokio::test]
async fn presigned_urls_serve_the_object_and_refuse_tampering() {
    let fs = SeaweedFs::start().await;
    let s = fs.storage().await;
    s.put(
        "p/original.txt",
        stream_of(&b"signed bytes"[..]),
        "text/plain",
        1024,
    )
    .await
    .unwrap();

    let url = s.url("p/original.txt");
    let ok = http().get(&url).send().await.unwrap();
    let tampered_url = {
        let (head, signature) = url.split_once("X-Amz-Signature=").unwrap();
        let flipped: String = signature
            .chars()
            .enumerate()
            .map(|(i, c)| {
                if i == 0 {
                    if c == '0' {
                        '1'
                    } else {
                        '0'
                    }
                } else {
                    c
                }
            })
            .collect();
        format!("{head}X-Amz-Signature={flipped}")
    };
    let tampered = http().get(&tampered_url).send().await.unwrap();

    assert!(
        url.starts_with(&format!("{}/{}/p/original.txt?", fs.endpoint(), fs.bucket)),
        "{url}"
    );
    assert_eq!(ok.status(), 200);
    assert_eq!(ok.bytes().await.unwrap(), &b"signed bytes"[..]);
    assert_eq!(tampered.status(), 403);
    assert!(matches!(
        s.delivery("p/original.txt"),
        boards_shared::storage::Delivery::Redirect(u) if u.contains("X-Amz-Signature=")
    ));
}

#[tokio::test]
async fn unsigned_and_cdn_urls_have_the_configured_shape() {
    let fs = SeaweedFs::start().await;
    let public = store_with(&fs, |s| {
        s.presign = false;
        s.prefix = "boards/".into();
    })
    .await;
    let cdn = store_with(&fs, |s| {
        s.cdn_base_url = Some("https://cdn.example.com/media/".into())
    })
    .await;

    let public_url = public.url("t/b/g/run-1/original.png");
    let cdn_url = cdn.url("t/b/g/run-1/original.png");

    // Path-style on the configured endpoint, never the amazonaws host.
    assert_eq!(
        public_url,
        format!(
            "{}/{}/boards/t/b/g/run-1/original.png",
            fs.endpoint(),
            fs.bucket
        )
    );
    assert_eq!(
        cdn_url,
        "https://cdn.example.com/media/t/b/g/run-1/original.png"
    );
    // The unsigned URL really names the object: it is there, only not public on this server.
    public
        .put(
            "t/b/g/run-1/original.png",
            stream_of(&b"png"[..]),
            "image/png",
            10,
        )
        .await
        .unwrap();
    assert_eq!(http().get(&public_url).send().await.unwrap().status(), 403);
}

#[tokio::test]
async fn wrong_credentials_and_a_missing_bucket_are_refused_clearly() {
    let fs = SeaweedFs::start().await;
    let wrong_secret = store_with(&fs, |s| {
        s.aws_secret_access_key = Some(Secret::new("not-the-secret-key-at-all"))
    })
    .await;
    let no_bucket = store_with(&fs, |s| s.bucket = "no-such-bucket-here".into()).await;

    let denied = wrong_secret.probe().await;
    let denied_put = wrong_secret
        .put("x/original.txt", stream_of(&b"x"[..]), "text/plain", 10)
        .await;
    let missing = no_bucket.probe().await;
    let missing_put = no_bucket
        .put("x/original.txt", stream_of(&b"x"[..]), "text/plain", 10)
        .await;

    let Err(StorageError::Refused(m)) = denied else {
        panic!("a wrong secret should be refused: {denied:?}")
    };
    assert!(m.contains("credentials"), "{m}");
    assert!(!m.contains("not-the-secret-key-at-all"), "{m}");
    assert!(
        matches!(denied_put, Err(StorageError::Refused(ref m)) if m.contains("credentials")),
        "{denied_put:?}"
    );
    let Err(StorageError::Refused(m)) = missing else {
        panic!("a missing bucket should be refused: {missing:?}")
    };
    assert!(
        m.contains("bucket `no-such-bucket-here` does not exist"),
        "{m}"
    );
    assert!(
        matches!(missing_put, Err(StorageError::Refused(_))),
        "{missing_put:?}"
    );
}

#[tokio::test]
async fn a_stopped_store_is_a_transient_failure_until_it_is_back() {
    let mut fs = SeaweedFs::start().await;
    let s = fs.storage().await;
    s.put(
        "keep/original.txt",
        stream_of(&b"kept"[..]),
        "text/plain",
        10,
    )
    .await
    .unwrap();

    fs.stop().await;
    let put = s
        .put("down/original.txt", stream_of(&b"x"[..]), "text/plain", 10)
        .await;
    let head = s.head("keep/original.txt").await;
    let probe = s.probe().await;
    fs.restart().await;

    assert!(
        put.as_ref().is_err_and(StorageError::is_transient),
        "{put:?}"
    );
    assert!(
        head.as_ref().is_err_and(StorageError::is_transient),
        "{head:?}"
    );
    assert!(
        probe.as_ref().is_err_and(StorageError::is_transient),
        "{probe:?}"
    );
    s.probe().await.unwrap();
    assert_eq!(read(&s, "keep/original.txt", None).await, b"kept");
    s.put("up/original.txt", stream_of(&b"back"[..]), "text/plain", 10)
        .await
        .unwrap();
    assert_eq!(read(&s, "up/original.txt", None).await, b"back");
}

/// A store that accepts connections and never answers (a hung gateway, on 127.0.0.1): every
/// request ends within `request_timeout_seconds` as a transient failure instead of hanging.
#[tokio::test]
async fn a_store_that_never_answers_times_out_as_transient() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let held = std::sync::Arc::new(tokio::sync::Mutex::new(Vec::new()));
    let keep = held.clone();
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            keep.lock().await.push(socket);
        }
    });
    let settings = S3Settings {
        endpoint_url: Some(format!("http://127.0.0.1:{port}")),
        aws_access_key_id: Some("AKIDEXAMPLE".into()),
        aws_secret_access_key: Some(Secret::new("secret-example")),
        request_timeout_seconds: 1,
        ..S3Settings::for_bucket("hung-bucket")
    };
    let s = S3Storage::new(settings).await.unwrap();
    let put = s
        .put("x/original.txt", stream_of(&b"x"[..]), "text/plain", 10)
        .await;
    assert!(
        put.as_ref().is_err_and(StorageError::is_transient),
        "{put:?}"
    );
    let head = s.head("x/original.txt").await;
    assert!(
        head.as_ref().is_err_and(StorageError::is_transient),
        "{head:?}"
    );
    assert!(
        !held.lock().await.is_empty(),
        "the requests reached the listener"
    );
}
