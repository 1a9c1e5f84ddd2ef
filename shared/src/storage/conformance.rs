//! What every [`Storage`] provider must do, as one test routine each provider's tests run
//! (local, memory, S3 against a real S3-compatible server).
#![allow(clippy::expect_used, clippy::unwrap_used)] // Test support: failing loudly is the point.

use futures::StreamExt as _;

use super::{collect, stream_of, ByteRange, ByteStream, Storage, StorageError};

fn chunks(parts: &[&'static [u8]]) -> ByteStream {
    futures::stream::iter(
        parts
            .iter()
            .map(|p| Ok(bytes::Bytes::from_static(p)))
            .collect::<Vec<_>>(),
    )
    .boxed()
}

async fn read(
    s: &dyn Storage,
    key: &str,
    range: Option<ByteRange>,
) -> Result<Vec<u8>, StorageError> {
    collect(s.get(key, range).await?, u64::MAX).await
}

/// Runs the contract against `s`; `prefix` keeps keys of concurrent runs apart.
pub async fn check(s: &dyn Storage, prefix: &str) {
    let key = format!("{prefix}/t/b/g/run-1/original.txt");
    // Put from a stream of several chunks; get it back whole and by range.
    let stored = s
        .put(
            &key,
            chunks(&[b"hello ", b"stream", b"ed world"]),
            "text/plain",
            1024,
        )
        .await
        .expect("put");
    assert_eq!(stored.size, 20);
    assert_eq!(stored.key, key);
    assert!(stored.url.contains(&key), "{}", stored.url);
    assert_eq!(
        read(s, &key, None).await.expect("get"),
        b"hello streamed world"
    );
    assert_eq!(
        read(s, &key, Some(ByteRange { start: 6, end: 13 }))
            .await
            .expect("range"),
        b"streamed"
    );
    // A range running past the end stops at the end.
    assert_eq!(
        read(s, &key, Some(ByteRange { start: 15, end: 99 }))
            .await
            .expect("tail"),
        b"world"
    );
    let info = s.head(&key).await.expect("head");
    assert_eq!(info.size, 20);
    assert!(!info.etag.is_empty());
    // Overwriting changes the content and the validator.
    s.put(&key, stream_of(&b"second version"[..]), "text/plain", 1024)
        .await
        .expect("overwrite");
    assert_eq!(read(s, &key, None).await.expect("get"), b"second version");
    assert_ne!(s.head(&key).await.expect("head").etag, info.etag);

    // Over the cap: refused, and nothing is left under that key.
    let big = format!("{prefix}/t/b/g/run-1/big.bin");
    assert!(matches!(
        s.put(
            &big,
            chunks(&[b"0123456789", b"0123456789"]),
            "application/octet-stream",
            15
        )
        .await,
        Err(StorageError::TooLarge { limit: 15 })
    ));
    assert!(matches!(s.head(&big).await, Err(StorageError::NotFound(_))));
    // A body that breaks midway leaves nothing either.
    let broken = format!("{prefix}/t/b/g/run-1/broken.bin");
    let failing = futures::stream::iter(vec![
        Ok(bytes::Bytes::from_static(b"partial")),
        Err(StorageError::Source("the client went away".into())),
    ])
    .boxed();
    assert!(s
        .put(&broken, failing, "application/octet-stream", 1024)
        .await
        .is_err());
    assert!(matches!(
        s.head(&broken).await,
        Err(StorageError::NotFound(_))
    ));

    // Missing objects and bad keys.
    let missing = format!("{prefix}/t/b/g/run-1/missing.txt");
    assert!(matches!(
        s.get(&missing, None).await,
        Err(StorageError::NotFound(_))
    ));
    assert!(matches!(
        s.head(&missing).await,
        Err(StorageError::NotFound(_))
    ));
    assert!(matches!(
        s.put("../x", stream_of(&b""[..]), "text/plain", 10).await,
        Err(StorageError::InvalidKey(_))
    ));

    // Delete, twice.
    s.delete(&key).await.expect("delete");
    s.delete(&key).await.expect("delete again");
    assert!(matches!(s.head(&key).await, Err(StorageError::NotFound(_))));
    s.probe().await.expect("probe");
}
