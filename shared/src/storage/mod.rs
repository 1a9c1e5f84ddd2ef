//! Artifact storage: one seam, [`Storage`], built from configuration in one place
//! ([`from_config`]) for both binaries, with a local-filesystem provider, an in-memory one for
//! tests, and S3 behind the same trait. Bodies travel as byte streams in both directions, never
//! as whole files or local paths.
//!
//! Keys are `{tenant}/{board}/{generation}/run-{attempt}/original.{ext}`: each run of a job
//! writes its own object, so a stale run cleaning up after itself never deletes the artifact of
//! the run that completed. Every segment is `[A-Za-z0-9._-]`, never `..`. Rows keep the key
//! (`output_metadata.storage_key`) so URLs can be recomputed.

#[cfg(any(test, feature = "test-helpers"))]
pub mod conformance;
pub mod local;
pub mod memory;
pub mod s3;

use std::sync::Arc;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use futures::{stream::BoxStream, StreamExt as _};

pub use local::LocalStorage;
pub use memory::MemoryStorage;
pub use s3::{S3Settings, S3Storage};

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("invalid storage key: {0}")]
    InvalidKey(String),
    #[error("object not found: {0}")]
    NotFound(String),
    /// The key names a path that resolves (through a symbolic link) outside the storage root.
    #[error("storage key resolves outside the storage root: {0}")]
    OutsideRoot(String),
    #[error("object too large: more than {limit} bytes")]
    TooLarge { limit: u64 },
    /// The byte range asked for does not overlap the object.
    #[error("range not satisfiable")]
    BadRange,
    /// The body being stored failed (a client stopped sending, a download broke).
    #[error("reading the content failed: {0}")]
    Source(String),
    /// The store did not answer or refused (network, 5xx, throttling): worth retrying.
    #[error("the store is unavailable: {0}")]
    Unavailable(String),
    /// The store refused for good (credentials, missing bucket): not worth retrying.
    #[error("the store refused: {0}")]
    Refused(String),
    #[error("storage I/O failed: {0}")]
    Io(#[from] std::io::Error),
}

impl StorageError {
    /// Whether trying again later may succeed.
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::Unavailable(_) | Self::Io(_))
    }
}

/// A stream of bytes: object bodies going in and coming out.
pub type ByteStream = BoxStream<'static, Result<Bytes, StorageError>>;

/// One in-memory buffer as a [`ByteStream`].
pub fn stream_of(bytes: impl Into<Bytes>) -> ByteStream {
    futures::stream::once(futures::future::ready(Ok(bytes.into()))).boxed()
}

/// Reads a whole stream into memory, refusing more than `limit` bytes.
pub async fn collect(mut body: ByteStream, limit: u64) -> Result<Vec<u8>, StorageError> {
    let mut out = Vec::new();
    while let Some(chunk) = body.next().await {
        let chunk = chunk?;
        if out.len() as u64 + chunk.len() as u64 > limit {
            return Err(StorageError::TooLarge { limit });
        }
        out.extend_from_slice(&chunk);
    }
    Ok(out)
}

/// A stored object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredObject {
    pub key: String,
    pub url: String,
    pub size: u64,
    pub content_type: String,
}

impl StoredObject {
    /// The object `store` just wrote under `key`.
    pub fn written(store: &dyn Storage, key: &str, size: u64, content_type: &str) -> Self {
        Self {
            key: key.to_string(),
            url: store.url(key),
            size,
            content_type: content_type.to_string(),
        }
    }
}

/// What a store knows about an object without reading it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObjectInfo {
    pub size: u64,
    pub content_type: String,
    /// A strong validator of the content (without quotes).
    pub etag: String,
    pub last_modified: Option<DateTime<Utc>>,
}

/// An inclusive byte range.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ByteRange {
    pub start: u64,
    pub end: u64,
}

impl ByteRange {
    pub fn len(self) -> u64 {
        self.end - self.start + 1
    }

    pub fn is_empty(self) -> bool {
        false
    }
}

/// How `GET /api/storage/{key}` answers for a provider.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Delivery {
    /// The API streams the object itself (with ranges and validators).
    Proxy,
    /// The API redirects to this (signed or public) URL of the store.
    Redirect(String),
}

#[async_trait::async_trait]
pub trait Storage: Send + Sync {
    /// Provider name recorded with stored objects (`local`, `s3`, `memory`).
    fn name(&self) -> &'static str;

    /// Stores `body` under `key`, refusing (and leaving nothing behind) past `max_bytes`: a
    /// failed put is never half-visible.
    async fn put(
        &self,
        key: &str,
        body: ByteStream,
        content_type: &str,
        max_bytes: u64,
    ) -> Result<StoredObject, StorageError>;

    async fn head(&self, key: &str) -> Result<ObjectInfo, StorageError>;

    /// The object's bytes, or only `range` of them.
    async fn get(&self, key: &str, range: Option<ByteRange>) -> Result<ByteStream, StorageError>;

    /// Removes the object; a missing one is not an error.
    async fn delete(&self, key: &str) -> Result<(), StorageError>;

    /// The URL clients use for `key` (stored in `generations.storage_url`).
    fn url(&self, key: &str) -> String;

    /// How the API serves `key` at `/api/storage/{key}`.
    fn delivery(&self, _key: &str) -> Delivery {
        Delivery::Proxy
    }

    /// Whether the store answers (readiness, and a clear error at startup).
    async fn probe(&self) -> Result<(), StorageError>;
}

/// Reads a whole object into memory, refusing more than `limit` bytes.
pub async fn read_all(
    storage: &dyn Storage,
    key: &str,
    limit: u64,
) -> Result<Vec<u8>, StorageError> {
    collect(storage.get(key, None).await?, limit).await
}

/// The configured store, built the same way by both binaries.
pub fn from_config(config: &crate::Config) -> anyhow::Result<Arc<dyn Storage>> {
    let storage = &config.storage;
    Ok(Arc::new(LocalStorage::new(
        &storage.local_base_path,
        &storage.local_public_url_base,
    )))
}

/// Checks a key: non-empty `/`-separated segments of `[A-Za-z0-9._-]`, no `.`/`..` segment.
pub fn validate_key(key: &str) -> Result<(), StorageError> {
    let bad = || StorageError::InvalidKey(key.chars().take(200).collect());
    if key.is_empty() || key.len() > 1024 || key.starts_with('/') || key.contains('\\') {
        return Err(bad());
    }
    for segment in key.split('/') {
        if segment.is_empty()
            || segment == "."
            || segment == ".."
            || !segment
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
        {
            return Err(bad());
        }
    }
    Ok(())
}

/// The key of the artifact one run (`attempt`) of a generation makes.
pub fn artifact_key(
    tenant: uuid::Uuid,
    board: uuid::Uuid,
    generation: uuid::Uuid,
    attempt: i32,
    ext: &str,
) -> String {
    format!("{tenant}/{board}/{generation}/run-{attempt}/original.{ext}")
}

/// Content type of a stored file, from its extension.
pub fn content_type_of(key: &str) -> &'static str {
    match key
        .rsplit('.')
        .next()
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        Some("png") => "image/png",
        Some("jpg" | "jpeg") => "image/jpeg",
        Some("webp") => "image/webp",
        Some("gif") => "image/gif",
        Some("mp4") => "video/mp4",
        Some("webm") => "video/webm",
        Some("mov") => "video/quicktime",
        Some("mp3") => "audio/mpeg",
        Some("wav") => "audio/wav",
        Some("ogg") => "audio/ogg",
        Some("txt") => "text/plain; charset=utf-8",
        Some("md") => "text/markdown; charset=utf-8",
        Some("json") => "application/json",
        _ => "application/octet-stream",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_checked() {
        assert!(validate_key("t/b/g/original.png").is_ok());
        for bad in [
            "",
            "/abs",
            "a/../b",
            "a//b",
            "a\\b",
            "a/./b",
            "a/b c",
            "a/%2e%2e/b",
            "..",
            "a/b/",
        ] {
            assert!(validate_key(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn content_types_follow_extensions() {
        assert_eq!(content_type_of("x/original.png"), "image/png");
        assert_eq!(content_type_of("x/original.WAV"), "audio/wav");
        assert_eq!(content_type_of("x/original"), "application/octet-stream");
    }
}
