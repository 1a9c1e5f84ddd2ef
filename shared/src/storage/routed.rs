//! The configured stores behind one [`Storage`]: writes go where the routing rules say (by
//! artifact type and size, first match wins, else the default provider); reads, deletes and
//! URLs go to the provider a row names, or are looked up (default first) by key. Keys are
//! unique across providers (each names its generation and run), so a lookup cannot find the
//! wrong object.

use std::sync::Arc;

use super::{
    settings::Layout, ByteRange, ByteStream, Delivery, ObjectInfo, Storage, StorageError,
    StoredObject,
};
use crate::generators::ArtifactKind;

pub struct Routed {
    /// Default first.
    stores: Vec<(String, Arc<dyn Storage>)>,
    rules: Vec<super::settings::Rule>,
}

/// The artifact type a content type belongs to (for routing rules).
fn kind_of(content_type: &str) -> Option<ArtifactKind> {
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    match essence.split('/').next() {
        Some("image") => Some(ArtifactKind::Image),
        Some("video") => Some(ArtifactKind::Video),
        Some("audio") => Some(ArtifactKind::Audio),
        Some("text") => Some(ArtifactKind::Text),
        _ if essence == "application/json" => Some(ArtifactKind::Text),
        _ => None,
    }
}

impl Routed {
    /// One store under its configured name.
    pub fn single(name: String, store: Arc<dyn Storage>) -> Self {
        Self {
            stores: vec![(name, store)],
            rules: vec![],
        }
    }

    pub fn new(
        layout: &Layout,
        mut stores: Vec<(String, Arc<dyn Storage>)>,
    ) -> anyhow::Result<Self> {
        let default = stores
            .iter()
            .position(|(n, _)| *n == layout.default_provider)
            .ok_or_else(|| {
                anyhow::anyhow!("no storage provider named `{}`", layout.default_provider)
            })?;
        let first = stores.remove(default);
        stores.insert(0, first);
        Ok(Self {
            stores,
            rules: layout.rules.clone(),
        })
    }

    fn default_store(&self) -> &Arc<dyn Storage> {
        &self.stores[0].1
    }

    fn by_name(&self, name: &str) -> Option<&Arc<dyn Storage>> {
        self.stores.iter().find(|(n, _)| n == name).map(|(_, s)| s)
    }

    fn pick(&self, content_type: &str, size: Option<u64>) -> (&str, &Arc<dyn Storage>) {
        let kind = kind_of(content_type);
        self.rules
            .iter()
            .find(|r| r.matches(kind, size))
            .and_then(|r| {
                self.stores
                    .iter()
                    .find(|(n, _)| *n == r.provider)
                    .map(|(n, s)| (n.as_str(), s))
            })
            .unwrap_or((self.stores[0].0.as_str(), &self.stores[0].1))
    }

    /// The store holding `key`: the default when it has it (or when it is the only one).
    async fn locate(&self, key: &str) -> Result<&Arc<dyn Storage>, StorageError> {
        if self.stores.len() == 1 {
            return Ok(self.default_store());
        }
        for (_, store) in &self.stores {
            match store.head(key).await {
                Ok(_) => return Ok(store),
                Err(StorageError::NotFound(_)) => continue,
                Err(e) => return Err(e),
            }
        }
        Err(StorageError::NotFound(key.into()))
    }
}

#[async_trait::async_trait]
impl Storage for Routed {
    fn name(&self) -> &'static str {
        self.default_store().name()
    }

    async fn put(
        &self,
        key: &str,
        body: ByteStream,
        content_type: &str,
        max_bytes: u64,
    ) -> Result<StoredObject, StorageError> {
        self.put_sized(key, body, content_type, max_bytes, None)
            .await
    }

    async fn put_sized(
        &self,
        key: &str,
        body: ByteStream,
        content_type: &str,
        max_bytes: u64,
        size_hint: Option<u64>,
    ) -> Result<StoredObject, StorageError> {
        let (name, store) = self.pick(content_type, size_hint);
        let mut stored = store.put(key, body, content_type, max_bytes).await?;
        stored.provider = name.to_string();
        Ok(stored)
    }

    async fn head(&self, key: &str) -> Result<ObjectInfo, StorageError> {
        self.locate(key).await?.head(key).await
    }

    async fn get(&self, key: &str, range: Option<ByteRange>) -> Result<ByteStream, StorageError> {
        self.locate(key).await?.get(key, range).await
    }

    /// Deletes from every store (an error in one does not stop the others).
    async fn delete(&self, key: &str) -> Result<(), StorageError> {
        let mut first_error = None;
        for (_, store) in &self.stores {
            if let Err(e) = store.delete(key).await {
                first_error.get_or_insert(e);
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    fn url(&self, key: &str) -> String {
        self.default_store().url(key)
    }

    fn url_in(&self, provider: &str, key: &str) -> String {
        self.by_name(provider)
            .unwrap_or_else(|| self.default_store())
            .url(key)
    }

    fn urls_expire(&self) -> bool {
        self.stores.iter().any(|(_, s)| s.urls_expire())
    }

    fn delivery(&self, key: &str) -> Delivery {
        // Without a lookup the holder of a key is known only when there is one store.
        if self.stores.len() == 1 {
            self.default_store().delivery(key)
        } else {
            Delivery::Proxy
        }
    }

    async fn delivery_of(&self, key: &str) -> Result<Delivery, StorageError> {
        Ok(self.locate(key).await?.delivery(key))
    }

    async fn probe(&self) -> Result<(), StorageError> {
        for (name, store) in &self.stores {
            store.probe().await.map_err(|e| match e {
                StorageError::Refused(m) => {
                    StorageError::Refused(format!("storage provider `{name}`: {m}"))
                }
                StorageError::Unavailable(m) => {
                    StorageError::Unavailable(format!("storage provider `{name}`: {m}"))
                }
                other => other,
            })?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::{collect, settings::Rule, stream_of, MemoryStorage};

    #[tokio::test]
    async fn rules_pick_the_store_and_reads_find_it() {
        let small: Arc<dyn Storage> = Arc::new(MemoryStorage::new());
        let big: Arc<dyn Storage> = Arc::new(MemoryStorage::new());
        let layout = Layout {
            default_provider: "small".into(),
            rules: vec![Rule {
                artifact_type: Some(ArtifactKind::Video),
                size_gt: Some(10),
                provider: "big".into(),
            }],
            ..Layout::default()
        };
        let routed = Routed::new(
            &layout,
            vec![("big".into(), big.clone()), ("small".into(), small.clone())],
        )
        .unwrap();
        let v = routed
            .put_sized(
                "a/v.mp4",
                stream_of(vec![1u8; 20]),
                "video/mp4",
                100,
                Some(20),
            )
            .await
            .unwrap();
        assert_eq!(v.provider, "big");
        assert!(big.head("a/v.mp4").await.is_ok());
        assert!(small.head("a/v.mp4").await.is_err());
        let i = routed
            .put_sized(
                "a/i.png",
                stream_of(vec![1u8; 20]),
                "image/png",
                100,
                Some(20),
            )
            .await
            .unwrap();
        assert_eq!(i.provider, "small");
        // Unknown size: the size rule does not hold.
        let u = routed
            .put("a/u.mp4", stream_of(vec![1u8; 20]), "video/mp4", 100)
            .await
            .unwrap();
        assert_eq!(u.provider, "small");
        let body = collect(routed.get("a/v.mp4", None).await.unwrap(), 100)
            .await
            .unwrap();
        assert_eq!(body.len(), 20);
        routed.delete("a/v.mp4").await.unwrap();
        assert!(matches!(
            routed.head("a/v.mp4").await,
            Err(StorageError::NotFound(_))
        ));
    }
}
