//! An in-memory provider: for tests and benchmarks that need a store without a disk or a
//! server. Objects live as long as the value.

use std::{collections::HashMap, sync::Mutex};

use bytes::Bytes;
use futures::StreamExt as _;

use super::{
    content_type_of, validate_key, ByteRange, ByteStream, ObjectInfo, Storage, StorageError,
    StoredObject,
};

#[derive(Default)]
pub struct MemoryStorage {
    objects: Mutex<HashMap<String, (Bytes, String, u64)>>,
    next_version: std::sync::atomic::AtomicU64,
}

impl MemoryStorage {
    pub fn new() -> Self {
        Self::default()
    }
}

#[async_trait::async_trait]
impl Storage for MemoryStorage {
    fn name(&self) -> &'static str {
        "memory"
    }

    async fn put(
        &self,
        key: &str,
        mut body: ByteStream,
        content_type: &str,
        max_bytes: u64,
    ) -> Result<StoredObject, StorageError> {
        validate_key(key)?;
        let mut data = Vec::new();
        while let Some(chunk) = body.next().await {
            let chunk = chunk?;
            if data.len() as u64 + chunk.len() as u64 > max_bytes {
                return Err(StorageError::TooLarge { limit: max_bytes });
            }
            data.extend_from_slice(&chunk);
        }
        let size = data.len() as u64;
        let version = self
            .next_version
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        if let Ok(mut objects) = self.objects.lock() {
            objects.insert(
                key.to_string(),
                (Bytes::from(data), content_type.to_string(), version),
            );
        }
        Ok(StoredObject::written(self, key, size, content_type))
    }

    async fn head(&self, key: &str) -> Result<ObjectInfo, StorageError> {
        validate_key(key)?;
        let objects = self
            .objects
            .lock()
            .map_err(|_| StorageError::Unavailable("poisoned".into()))?;
        let (data, content_type, version) = objects
            .get(key)
            .ok_or_else(|| StorageError::NotFound(key.into()))?;
        Ok(ObjectInfo {
            size: data.len() as u64,
            content_type: if content_type.is_empty() {
                content_type_of(key).to_string()
            } else {
                content_type.clone()
            },
            etag: format!("{:x}-{version:x}", data.len()),
            last_modified: None,
        })
    }

    async fn get(&self, key: &str, range: Option<ByteRange>) -> Result<ByteStream, StorageError> {
        validate_key(key)?;
        let data = self
            .objects
            .lock()
            .map_err(|_| StorageError::Unavailable("poisoned".into()))?
            .get(key)
            .map(|(d, _, _)| d.clone())
            .ok_or_else(|| StorageError::NotFound(key.into()))?;
        let slice = match range {
            None => data,
            Some(r) => {
                let len = data.len() as u64;
                if r.start >= len || r.end < r.start {
                    return Err(StorageError::BadRange);
                }
                data.slice(r.start as usize..=(r.end.min(len - 1) as usize))
            }
        };
        Ok(super::stream_of(slice))
    }

    async fn delete(&self, key: &str) -> Result<(), StorageError> {
        validate_key(key)?;
        if let Ok(mut objects) = self.objects.lock() {
            objects.remove(key);
        }
        Ok(())
    }

    fn url(&self, key: &str) -> String {
        format!("memory://{key}")
    }

    async fn probe(&self) -> Result<(), StorageError> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #[tokio::test]
    async fn the_memory_provider_keeps_the_storage_contract() {
        crate::storage::conformance::check(&super::MemoryStorage::new(), "m").await;
    }
}
