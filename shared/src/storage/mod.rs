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
mod routed;
pub mod s3;
pub mod settings;
pub mod signing;

use std::sync::Arc;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use futures::{stream::BoxStream, StreamExt as _};

pub use local::LocalStorage;
pub use memory::MemoryStorage;
pub use routed::Routed;
pub use s3::{S3Settings, S3Storage};
pub use signing::{SignatureError, UrlSigner};

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
    /// The configured provider that holds it (`output_metadata.storage_provider`).
    pub provider: String,
}

impl StoredObject {
    /// The object `store` just wrote under `key`.
    pub fn written(store: &dyn Storage, key: &str, size: u64, content_type: &str) -> Self {
        Self {
            key: key.to_string(),
            url: store.url(key),
            size,
            content_type: content_type.to_string(),
            provider: store.name().to_string(),
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

    /// [`Self::put`] with the body's size when the caller knows it (routing rules on size
    /// use it; a single store ignores it).
    async fn put_sized(
        &self,
        key: &str,
        body: ByteStream,
        content_type: &str,
        max_bytes: u64,
        _size_hint: Option<u64>,
    ) -> Result<StoredObject, StorageError> {
        self.put(key, body, content_type, max_bytes).await
    }

    async fn head(&self, key: &str) -> Result<ObjectInfo, StorageError>;

    /// The object's bytes, or only `range` of them.
    async fn get(&self, key: &str, range: Option<ByteRange>) -> Result<ByteStream, StorageError>;

    /// Removes the object; a missing one is not an error.
    async fn delete(&self, key: &str) -> Result<(), StorageError>;

    /// The URL clients use for `key` (stored in `generations.storage_url`).
    fn url(&self, key: &str) -> String;

    /// The URL of `key` held by the configured provider `provider` (a row's
    /// `output_metadata.storage_provider`); a single store ignores the name.
    fn url_in(&self, _provider: &str, key: &str) -> String {
        self.url(key)
    }

    /// Whether URLs expire (signed or presigned), so that readers must compute them afresh
    /// from the key instead of using the one stored with the row.
    fn urls_expire(&self) -> bool {
        false
    }

    /// How the API serves `key` at `/api/storage/{key}`.
    fn delivery(&self, _key: &str) -> Delivery {
        Delivery::Proxy
    }

    /// [`Self::delivery`] of the store that holds `key` (several stores look it up).
    async fn delivery_of(&self, key: &str) -> Result<Delivery, StorageError> {
        Ok(self.delivery(key))
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

/// The signer of local URLs in private deployments (`storage.public = false`).
pub fn signer_from_config(config: &crate::Config) -> Option<Arc<UrlSigner>> {
    let storage = &config.storage;
    if storage.public {
        return None;
    }
    let key = storage.signing_key.as_ref()?;
    Some(Arc::new(UrlSigner::new(
        key.expose().as_bytes(),
        std::time::Duration::from_secs(storage.url_expiry_seconds),
    )))
}

/// The configured store, built the same way by both binaries: one provider, or several behind
/// the routing rules (runtime.md §4.2).
pub async fn from_config(config: &crate::Config) -> anyhow::Result<Arc<dyn Storage>> {
    use settings::ProviderSpec;
    let layout = &config.storage.layout;
    let signer = signer_from_config(config);
    let mut built: Vec<(String, Arc<dyn Storage>)> = Vec::new();
    for (name, spec) in &layout.providers {
        let store: Arc<dyn Storage> = match spec {
            ProviderSpec::Local(l) => Arc::new(
                LocalStorage::new(&l.base_path, &l.public_url_base).with_signer(signer.clone()),
            ),
            ProviderSpec::S3(s3) => Arc::new(
                s3::S3Storage::new((**s3).clone())
                    .await
                    .map_err(|e| anyhow::anyhow!("storage provider `{name}`: {e}"))?,
            ),
        };
        built.push((name.clone(), store));
    }
    if built.len() == 1 && layout.rules.is_empty() {
        let (name, store) = built.remove(0);
        return Ok(Arc::new(Routed::single(name, store)));
    }
    Ok(Arc::new(Routed::new(layout, built)?))
}

/// [`from_config`], then a probe of every store: a store that refuses (wrong credentials, a
/// missing bucket) stops startup with its reason; one that does not answer yet is logged and
/// reported by `/ready` until it does.
pub async fn open(
    config: &crate::Config,
    logger: &slog::Logger,
) -> anyhow::Result<Arc<dyn Storage>> {
    let store = from_config(config).await?;
    match tokio::time::timeout(std::time::Duration::from_secs(10), store.probe()).await {
        Ok(Ok(())) => {}
        Ok(Err(StorageError::Refused(m))) => anyhow::bail!("storage: {m}"),
        Ok(Err(e)) => slog::warn!(logger, "the artifact store does not answer yet"; "error" => %e),
        Err(_) => {
            slog::warn!(logger, "the artifact store does not answer yet"; "error" => "timed out")
        }
    }
    Ok(store)
}

/// The URL of a row's artifact (`key_field`: `storage_key` or `thumbnail_key` of its
/// `output_metadata`): the stored one, or one computed afresh from the key when the store's
/// URLs expire (signed or presigned).
pub fn artifact_url(
    storage: &dyn Storage,
    stored: Option<&str>,
    metadata: &serde_json::Value,
    key_field: &str,
) -> Option<String> {
    if storage.urls_expire() {
        if let Some(key) = metadata.get(key_field).and_then(serde_json::Value::as_str) {
            let provider_field = match key_field {
                "thumbnail_key" => "thumbnail_provider",
                _ => "storage_provider",
            };
            let provider = metadata
                .get(provider_field)
                .and_then(serde_json::Value::as_str)
                .unwrap_or_default();
            return Some(storage.url_in(provider, key));
        }
    }
    stored.map(str::to_string)
}

/// Makes a thumbnail of the image `bytes` (on a blocking thread, within `max_pixels`) and
/// stores it under `key(extension)`; `None` when it cannot be made or stored (a thumbnail never
/// fails its artifact).
pub async fn store_thumbnail(
    storage: &dyn Storage,
    bytes: Bytes,
    max_pixels: u64,
    key: impl FnOnce(&str) -> String,
) -> Option<StoredObject> {
    let thumb = tokio::task::spawn_blocking(move || {
        crate::media::thumbnail(
            &bytes,
            crate::media::THUMBNAIL_MAX_SIDE,
            &crate::media::DecodeLimits { max_pixels },
        )
    })
    .await
    .ok()?
    .ok()?;
    let key = key(thumb.extension);
    let size = thumb.bytes.len() as u64;
    storage
        .put_sized(
            &key,
            stream_of(thumb.bytes),
            thumb.content_type,
            size,
            Some(size),
        )
        .await
        .ok()
}

/// The objects a row's `output_metadata` names (the artifact and its thumbnail).
pub fn object_keys(metadata: &serde_json::Value) -> Vec<String> {
    ["storage_key", "thumbnail_key"]
        .iter()
        .filter_map(|f| metadata.get(*f).and_then(serde_json::Value::as_str))
        .map(str::to_string)
        .collect()
}

/// Removes the objects of deleted rows in the background (best effort: a failure leaves an
/// orphan object, never a row without its file).
pub fn remove_in_background(storage: Arc<dyn Storage>, keys: Vec<String>) {
    if keys.is_empty() {
        return;
    }
    tokio::spawn(async move {
        for key in keys {
            let _ = storage.delete(&key).await;
        }
    });
}

/// Whether `key` has the shape of a key this server writes:
/// `{tenant}/{board}/{generation}/(upload|run-N)/{name}.{ext}` with UUIDs. `/api/storage`
/// serves (or presigns) nothing else, so a bucket shared with other data exposes only artifacts.
pub fn is_artifact_key(key: &str) -> bool {
    let parts: Vec<&str> = key.split('/').collect();
    let [tenant, board, generation, run, file] = parts.as_slice() else {
        return false;
    };
    let uuid = |s: &str| uuid::Uuid::parse_str(s).is_ok() && s.len() == 36;
    let run_ok = *run == "upload"
        || run
            .strip_prefix("run-")
            .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()));
    let file_ok = file
        .split_once('.')
        .is_some_and(|(name, ext)| !name.is_empty() && !ext.is_empty());
    uuid(tenant)
        && uuid(board)
        && uuid(generation)
        && run_ok
        && file_ok
        && validate_key(key).is_ok()
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

/// The key of a thumbnail (or another variant `name`) one run of a generation makes.
pub fn run_key(
    tenant: uuid::Uuid,
    board: uuid::Uuid,
    generation: uuid::Uuid,
    attempt: i32,
    name: &str,
    ext: &str,
) -> String {
    format!("{tenant}/{board}/{generation}/run-{attempt}/{name}.{ext}")
}

/// The key of an uploaded file (`name`: `original` or `thumbnail`).
pub fn upload_key(
    tenant: uuid::Uuid,
    board: uuid::Uuid,
    generation: uuid::Uuid,
    name: &str,
    ext: &str,
) -> String {
    format!("{tenant}/{board}/{generation}/upload/{name}.{ext}")
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
