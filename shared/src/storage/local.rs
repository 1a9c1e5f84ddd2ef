//! Local-filesystem storage: files under a root directory, written atomically (a temporary
//! file renamed into place, so a failed or refused put leaves nothing), read as streams with
//! ranges, served through the API. Symbolic links that lead out of the root are refused.

use std::{
    io::SeekFrom,
    path::{Path, PathBuf},
    time::SystemTime,
};

use futures::StreamExt as _;
use tokio::io::{AsyncReadExt as _, AsyncSeekExt as _, AsyncWriteExt as _};

use super::{
    content_type_of, validate_key, ByteRange, ByteStream, ObjectInfo, Storage, StorageError,
    StoredObject,
};

/// A temporary file removed on drop unless kept (renamed into place).
struct TempFile(Option<PathBuf>);

impl TempFile {
    fn keep(mut self) {
        self.0 = None;
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if let Some(path) = self.0.take() {
            let _ = std::fs::remove_file(path);
        }
    }
}

pub struct LocalStorage {
    root: PathBuf,
    public_base: String,
    /// Private deployments: URLs carry an expiring signature.
    signer: Option<std::sync::Arc<super::UrlSigner>>,
}

impl LocalStorage {
    pub fn new(root: impl Into<PathBuf>, public_base: &str) -> Self {
        Self {
            root: root.into(),
            public_base: public_base.trim_end_matches('/').to_string(),
            signer: None,
        }
    }

    /// Signs every URL with `signer` (private deployments).
    pub fn with_signer(mut self, signer: Option<std::sync::Arc<super::UrlSigner>>) -> Self {
        self.signer = signer;
        self
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    fn local_path(&self, key: &str) -> Result<PathBuf, StorageError> {
        validate_key(key)?;
        Ok(self.root.join(key))
    }

    /// The file behind `key` with every symbolic link resolved, refused when it lies outside
    /// the (equally resolved) root: a link planted inside the storage directory must not
    /// expose the rest of the filesystem. A missing file (or a directory) is `NotFound`.
    async fn resolve_existing(&self, key: &str) -> Result<PathBuf, StorageError> {
        let path = self.local_path(key)?;
        let resolved = match tokio::fs::canonicalize(&path).await {
            Ok(p) => p,
            // Also a key through a regular file ("a.png/x") or a looping link.
            Err(_) => return Err(StorageError::NotFound(key.into())),
        };
        self.check_contained(key, &resolved).await?;
        match tokio::fs::metadata(&resolved).await {
            Ok(m) if m.is_file() => Ok(resolved),
            _ => Err(StorageError::NotFound(key.into())),
        }
    }

    /// Refuses a key whose deepest existing ancestor directory resolves outside the root (for
    /// writes and deletes: the last component may not exist yet and is never followed).
    async fn check_parent(&self, key: &str, path: &Path) -> Result<(), StorageError> {
        let mut dir = path.parent();
        while let Some(d) = dir {
            match tokio::fs::canonicalize(d).await {
                Ok(resolved) => return self.check_contained(key, &resolved).await,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => dir = d.parent(),
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }

    async fn check_contained(&self, key: &str, resolved: &Path) -> Result<(), StorageError> {
        let root = match tokio::fs::canonicalize(&self.root).await {
            Ok(root) => root,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(StorageError::NotFound(key.into()))
            }
            Err(e) => return Err(e.into()),
        };
        if resolved.starts_with(&root) {
            Ok(())
        } else {
            Err(StorageError::OutsideRoot(key.chars().take(200).collect()))
        }
    }

    /// Writes `body` to `tmp`, counting bytes against `max_bytes`.
    async fn write_body(
        tmp: &Path,
        mut body: ByteStream,
        max_bytes: u64,
    ) -> Result<u64, StorageError> {
        let mut file = tokio::fs::File::create(tmp).await?;
        let mut size = 0u64;
        while let Some(chunk) = body.next().await {
            let chunk = chunk?;
            size += chunk.len() as u64;
            if size > max_bytes {
                return Err(StorageError::TooLarge { limit: max_bytes });
            }
            file.write_all(&chunk).await?;
        }
        file.flush().await?;
        file.sync_data().await?;
        Ok(size)
    }
}

/// A strong validator from size and modification time (what the file served before had).
fn etag(len: u64, modified: Option<SystemTime>) -> String {
    let nanos = modified
        .and_then(|m| m.duration_since(SystemTime::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos());
    format!("{len:x}-{nanos:x}")
}

#[async_trait::async_trait]
impl Storage for LocalStorage {
    fn name(&self) -> &'static str {
        "local"
    }

    async fn put(
        &self,
        key: &str,
        body: ByteStream,
        content_type: &str,
        max_bytes: u64,
    ) -> Result<StoredObject, StorageError> {
        let path = self.local_path(key)?;
        // The root may not exist yet (first run of a fresh deployment): it is ours to create,
        // and the containment check needs it.
        tokio::fs::create_dir_all(&self.root).await?;
        self.check_parent(key, &path).await?;
        if let Some(dir) = path.parent() {
            tokio::fs::create_dir_all(dir).await?;
        }
        let tmp = TempFile(Some(
            path.with_extension(format!("tmp-{}", uuid::Uuid::new_v4().simple())),
        ));
        let tmp_path = tmp.0.clone().unwrap_or_default();
        // Any failure, and a put abandoned half-way (its request dropped), removes the
        // temporary file (the guard's drop).
        let size = Self::write_body(&tmp_path, body, max_bytes).await?;
        tokio::fs::rename(&tmp_path, &path).await?;
        tmp.keep();
        Ok(StoredObject::written(self, key, size, content_type))
    }

    async fn head(&self, key: &str) -> Result<ObjectInfo, StorageError> {
        let path = self.resolve_existing(key).await?;
        let meta = tokio::fs::metadata(&path).await?;
        let modified = meta.modified().ok();
        Ok(ObjectInfo {
            size: meta.len(),
            content_type: content_type_of(key).to_string(),
            etag: etag(meta.len(), modified),
            last_modified: modified.map(chrono::DateTime::<chrono::Utc>::from),
        })
    }

    async fn get(&self, key: &str, range: Option<ByteRange>) -> Result<ByteStream, StorageError> {
        let path = self.resolve_existing(key).await?;
        let mut file = match tokio::fs::File::open(&path).await {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(StorageError::NotFound(key.into()))
            }
            Err(e) => return Err(e.into()),
        };
        let len = file.metadata().await?.len();
        let reader = match range {
            None => file.take(len),
            Some(r) => {
                if r.start >= len || r.end < r.start {
                    return Err(StorageError::BadRange);
                }
                file.seek(SeekFrom::Start(r.start)).await?;
                file.take(r.end.min(len - 1) - r.start + 1)
            }
        };
        Ok(
            tokio_util::io::ReaderStream::with_capacity(reader, 64 * 1024)
                .map(|chunk| chunk.map_err(StorageError::from))
                .boxed(),
        )
    }

    async fn delete(&self, key: &str) -> Result<(), StorageError> {
        let path = self.local_path(key)?;
        if !tokio::fs::try_exists(&self.root).await.unwrap_or(true) {
            return Ok(()); // Nothing was ever stored.
        }
        self.check_parent(key, &path).await?;
        match tokio::fs::remove_file(&path).await {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    fn url(&self, key: &str) -> String {
        match &self.signer {
            Some(signer) => format!("{}/{key}?{}", self.public_base, signer.sign(key)),
            None => format!("{}/{key}", self.public_base),
        }
    }

    fn urls_expire(&self) -> bool {
        self.signer.is_some()
    }

    async fn probe(&self) -> Result<(), StorageError> {
        tokio::fs::create_dir_all(&self.root).await?;
        let meta = tokio::fs::metadata(&self.root).await?;
        if meta.permissions().readonly() {
            return Err(StorageError::Refused(format!(
                "{} is read-only",
                self.root.display()
            )));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::{collect, stream_of};

    async fn read(s: &LocalStorage, key: &str) -> Result<Vec<u8>, StorageError> {
        collect(s.get(key, None).await?, u64::MAX).await
    }

    #[tokio::test]
    async fn the_local_provider_keeps_the_storage_contract() {
        let dir = tempfile::tempdir().unwrap();
        let s = LocalStorage::new(dir.path(), "http://h/api/storage/");
        crate::storage::conformance::check(&s, "c").await;
        let o = s
            .put("t/x.txt", stream_of(&b"x"[..]), "text/plain", 10)
            .await
            .unwrap();
        assert_eq!(o.url, "http://h/api/storage/t/x.txt");
        // Nothing but the object itself stays in its directory (no temporary files).
        let names: Vec<_> = std::fs::read_dir(dir.path().join("c/t/b/g/run-1"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert!(names.is_empty(), "{names:?}");
    }

    #[cfg(unix)]
    #[tokio::test]
    async fn symbolic_links_out_of_the_root_are_refused() {
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("secret.txt"), b"secret").unwrap();
        let dir = tempfile::tempdir().unwrap();
        let s = LocalStorage::new(dir.path(), "http://h/api/storage");
        s.put("t/in.txt", stream_of(&b"inside"[..]), "text/plain", 100)
            .await
            .unwrap();
        // A link to a file outside, a link to a directory outside, and a link that stays inside.
        std::os::unix::fs::symlink(
            outside.path().join("secret.txt"),
            dir.path().join("t/file-link.txt"),
        )
        .unwrap();
        std::os::unix::fs::symlink(outside.path(), dir.path().join("t/dir-link")).unwrap();
        std::os::unix::fs::symlink(dir.path().join("t/in.txt"), dir.path().join("t/ok.txt"))
            .unwrap();

        for key in ["t/file-link.txt", "t/dir-link/secret.txt"] {
            assert!(
                matches!(s.get(key, None).await, Err(StorageError::OutsideRoot(_))),
                "{key}"
            );
            assert!(matches!(
                s.head(key).await,
                Err(StorageError::OutsideRoot(_))
            ));
        }
        assert!(matches!(
            s.put(
                "t/dir-link/sub/new.txt",
                stream_of(&b"x"[..]),
                "text/plain",
                100
            )
            .await,
            Err(StorageError::OutsideRoot(_))
        ));
        assert!(!outside.path().join("sub").exists());
        assert!(matches!(
            s.delete("t/dir-link/secret.txt").await,
            Err(StorageError::OutsideRoot(_))
        ));
        assert!(outside.path().join("secret.txt").exists());
        assert_eq!(read(&s, "t/ok.txt").await.unwrap(), b"inside");
        assert!(matches!(
            s.head("t/missing.txt").await,
            Err(StorageError::NotFound(_))
        ));
    }

    #[tokio::test]
    async fn a_root_that_does_not_exist_yet_is_created_on_first_write() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("not").join("yet");
        let s = LocalStorage::new(&root, "http://h/api/storage");
        assert!(matches!(
            s.get("t/b/g/original.txt", None).await,
            Err(StorageError::NotFound(_))
        ));
        s.delete("t/b/g/original.txt").await.unwrap();
        s.put(
            "t/b/g/original.txt",
            stream_of(&b"first"[..]),
            "text/plain",
            100,
        )
        .await
        .unwrap();
        assert_eq!(read(&s, "t/b/g/original.txt").await.unwrap(), b"first");
    }
}
