//! Local-filesystem storage: files under a root directory, written atomically (temp + rename).

use std::path::{Path, PathBuf};

use super::{validate_key, Storage, StorageError, StoredObject};

pub struct LocalStorage {
    root: PathBuf,
    public_base: String,
    max_size: u64,
}

impl LocalStorage {
    pub fn new(root: impl Into<PathBuf>, public_base: &str, max_size: u64) -> Self {
        Self {
            root: root.into(),
            public_base: public_base.trim_end_matches('/').to_string(),
            max_size,
        }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The file behind `key` with every symbolic link resolved, refused when it lies outside
    /// the (equally resolved) root: a link planted inside the storage directory must not
    /// expose the rest of the filesystem. A missing file is `NotFound`.
    pub async fn resolve_existing(&self, key: &str) -> Result<PathBuf, StorageError> {
        let path = self.local_path(key)?;
        let resolved = match tokio::fs::canonicalize(&path).await {
            Ok(p) => p,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(StorageError::NotFound(key.into()))
            }
            Err(e) => return Err(e.into()),
        };
        self.check_contained(key, &resolved).await?;
        Ok(resolved)
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
}

#[async_trait::async_trait]
impl Storage for LocalStorage {
    fn name(&self) -> &'static str {
        "local"
    }

    async fn put(
        &self,
        key: &str,
        bytes: Vec<u8>,
        content_type: &str,
    ) -> Result<StoredObject, StorageError> {
        let path = self.local_path(key)?;
        let size = bytes.len() as u64;
        if size > self.max_size {
            return Err(StorageError::TooLarge {
                size,
                limit: self.max_size,
            });
        }
        // The root may not exist yet (first run of a fresh deployment): it is ours to create,
        // and the containment check needs it.
        tokio::fs::create_dir_all(&self.root).await?;
        self.check_parent(key, &path).await?;
        if let Some(dir) = path.parent() {
            tokio::fs::create_dir_all(dir).await?;
        }
        let tmp = path.with_extension(format!("tmp-{}", uuid::Uuid::new_v4().simple()));
        tokio::fs::write(&tmp, &bytes).await?;
        if let Err(e) = tokio::fs::rename(&tmp, &path).await {
            let _ = tokio::fs::remove_file(&tmp).await;
            return Err(e.into());
        }
        Ok(StoredObject {
            key: key.to_string(),
            url: self.public_url(key),
            size,
            content_type: content_type.to_string(),
        })
    }

    async fn get(&self, key: &str) -> Result<Vec<u8>, StorageError> {
        let path = self.resolve_existing(key).await?;
        match tokio::fs::read(&path).await {
            Ok(b) => Ok(b),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                Err(StorageError::NotFound(key.into()))
            }
            Err(e) => Err(e.into()),
        }
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

    fn public_url(&self, key: &str) -> String {
        format!("{}/{key}", self.public_base)
    }

    fn local_path(&self, key: &str) -> Result<PathBuf, StorageError> {
        validate_key(key)?;
        Ok(self.root.join(key))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn objects_round_trip_and_traversal_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let s = LocalStorage::new(dir.path(), "http://h/api/storage/", 10);
        let o = s
            .put("t/b/g/original.txt", b"hello".to_vec(), "text/plain")
            .await
            .unwrap();
        assert_eq!(o.url, "http://h/api/storage/t/b/g/original.txt");
        assert_eq!(s.get("t/b/g/original.txt").await.unwrap(), b"hello");
        assert!(matches!(
            s.put("../x", vec![], "x").await,
            Err(StorageError::InvalidKey(_))
        ));
        assert!(matches!(
            s.put("t/big", vec![0; 11], "x").await,
            Err(StorageError::TooLarge { .. })
        ));
        s.delete("t/b/g/original.txt").await.unwrap();
        assert!(matches!(
            s.get("t/b/g/original.txt").await,
            Err(StorageError::NotFound(_))
        ));
    }

    #[cfg(unix)]
    #[tokio::test]
    async fn symbolic_links_out_of_the_root_are_refused() {
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("secret.txt"), b"secret").unwrap();
        let dir = tempfile::tempdir().unwrap();
        let s = LocalStorage::new(dir.path(), "http://h/api/storage", 100);
        s.put("t/in.txt", b"inside".to_vec(), "text/plain")
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
                matches!(s.get(key).await, Err(StorageError::OutsideRoot(_))),
                "{key}"
            );
            assert!(matches!(
                s.resolve_existing(key).await,
                Err(StorageError::OutsideRoot(_))
            ));
        }
        assert!(matches!(
            s.put("t/dir-link/sub/new.txt", b"x".to_vec(), "text/plain")
                .await,
            Err(StorageError::OutsideRoot(_))
        ));
        assert!(!outside.path().join("sub").exists());
        assert!(matches!(
            s.delete("t/dir-link/secret.txt").await,
            Err(StorageError::OutsideRoot(_))
        ));
        assert!(outside.path().join("secret.txt").exists());
        assert_eq!(s.get("t/ok.txt").await.unwrap(), b"inside");
        assert!(matches!(
            s.resolve_existing("t/missing.txt").await,
            Err(StorageError::NotFound(_))
        ));
    }

    #[tokio::test]
    async fn a_root_that_does_not_exist_yet_is_created_on_first_write() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("not").join("yet");
        let s = LocalStorage::new(&root, "http://h/api/storage", 100);
        assert!(matches!(
            s.get("t/b/g/original.txt").await,
            Err(StorageError::NotFound(_))
        ));
        s.delete("t/b/g/original.txt").await.unwrap();
        s.put("t/b/g/original.txt", b"first".to_vec(), "text/plain")
            .await
            .unwrap();
        assert_eq!(s.get("t/b/g/original.txt").await.unwrap(), b"first");
    }
}
