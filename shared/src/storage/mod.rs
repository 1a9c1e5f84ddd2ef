//! Artifact storage behind a trait (S3 comes later behind the same seam). Keys are
//! `{tenant}/{board}/{generation}/run-{attempt}/original.{ext}`: each run of a job writes its own
//! object, so a stale run cleaning up after itself never deletes the artifact of the run that
//! completed. Every segment is `[A-Za-z0-9._-]`, never `..`.

pub mod local;

use std::path::PathBuf;

pub use local::LocalStorage;

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("invalid storage key: {0}")]
    InvalidKey(String),
    #[error("object not found: {0}")]
    NotFound(String),
    /// The key names a path that resolves (through a symbolic link) outside the storage root.
    #[error("storage key resolves outside the storage root: {0}")]
    OutsideRoot(String),
    #[error("object too large: {size} bytes (limit {limit})")]
    TooLarge { size: u64, limit: u64 },
    #[error("storage I/O failed: {0}")]
    Io(#[from] std::io::Error),
}

/// A stored object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredObject {
    pub key: String,
    pub url: String,
    pub size: u64,
    pub content_type: String,
}

#[async_trait::async_trait]
pub trait Storage: Send + Sync {
    /// Provider name recorded with stored objects (`local`).
    fn name(&self) -> &'static str;

    async fn put(
        &self,
        key: &str,
        bytes: Vec<u8>,
        content_type: &str,
    ) -> Result<StoredObject, StorageError>;

    async fn get(&self, key: &str) -> Result<Vec<u8>, StorageError>;

    async fn delete(&self, key: &str) -> Result<(), StorageError>;

    /// The public URL stored in `generations.storage_url`.
    fn public_url(&self, key: &str) -> String;

    /// The file behind a key, for providers that serve through the API.
    fn local_path(&self, key: &str) -> Result<PathBuf, StorageError>;
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
