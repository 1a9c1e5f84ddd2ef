//! Storing what a generator made: bytes made here, a provider's `data:` URI, or a provider's
//! file streamed from its URL straight into storage (size-capped, never held whole unless it is
//! an image that needs a thumbnail). The type is read from the bytes against the same
//! allow-list as uploads, and dimensions and durations are probed from them, never assumed.

use std::sync::Arc;

use base64::Engine as _;
use boards_shared::{
    db::models::{job_runs::Claim, Generation},
    generators::{
        run::{Body, GenerateError, Output},
        ArtifactKind,
    },
    media,
    net::FetchError,
    storage::{self, ByteStream, StorageError, StoredObject},
};
use bytes::{Bytes, BytesMut};
use futures::StreamExt;
use serde_json::{json, Map, Value};
use uuid::Uuid;

use crate::env::WorkerEnv;

/// One stored output.
pub struct Stored {
    pub object: StoredObject,
    pub thumbnail: Option<StoredObject>,
    /// The artifact document (`format`, dimensions…, storage fields).
    pub metadata: Map<String, Value>,
}

/// Where one output goes: the generation it belongs to (the job's own row or a batch row).
pub struct Target<'a> {
    pub env: &'a Arc<WorkerEnv>,
    pub job: &'a Generation,
    pub claim: &'a Claim,
    pub generation_id: Uuid,
    pub kind: ArtifactKind,
    /// Names the source in errors (`fal.ai`, or the generator).
    pub label: &'a str,
}

fn store_failed(e: StorageError) -> GenerateError {
    match e {
        StorageError::TooLarge { .. } | StorageError::InvalidKey(_) => {
            GenerateError::Permanent(format!("Storing the artifact failed: {e}"))
        }
        // The store being down or refusing is retried (a put never leaves half an object).
        other => GenerateError::Transient(format!("Storing the artifact failed: {other}")),
    }
}

impl Target<'_> {
    fn key(&self, ext: &str) -> String {
        storage::artifact_key(
            self.job.tenant_id,
            self.job.board_id,
            self.generation_id,
            self.claim.attempt,
            ext,
        )
    }

    fn refused(&self, e: media::MediaError) -> GenerateError {
        GenerateError::Permanent(format!(
            "{}: the output is not an accepted {} file: {e}",
            self.label, self.kind
        ))
    }

    /// Stores `out` and returns its object and artifact document.
    pub async fn store(&self, out: Output) -> Result<Stored, GenerateError> {
        let Output {
            body,
            extension,
            content_type,
            mut metadata,
            memory,
        } = out;
        let stored = match body {
            Body::Bytes(bytes) if !content_type.is_empty() => {
                self.store_bytes(bytes.into(), &content_type, &extension, None)
                    .await?
            }
            Body::Bytes(bytes) => {
                self.store_sniffed(bytes.into(), None, &mut metadata)
                    .await?
            }
            Body::Url(url) if url.starts_with("data:") => {
                let (declared, bytes) = decode_data_uri(&url).ok_or_else(|| {
                    GenerateError::Permanent(format!(
                        "{}: the output is a malformed data: URI",
                        self.label
                    ))
                })?;
                self.store_sniffed(bytes.into(), declared.as_deref(), &mut metadata)
                    .await?
            }
            Body::Url(url) => self.store_url(&url, &mut metadata).await?,
        };
        drop(memory);
        let (object, thumbnail) = stored;
        metadata.insert("generation_id".into(), json!(self.generation_id));
        metadata.insert("storage_url".into(), json!(object.url));
        metadata.insert("storage_key".into(), json!(object.key));
        metadata.insert("storage_provider".into(), json!(object.provider));
        metadata.insert("content_type".into(), json!(object.content_type));
        metadata.insert("size".into(), json!(object.size));
        if let Some(t) = &thumbnail {
            metadata.insert("thumbnail_key".into(), json!(t.key));
            metadata.insert("thumbnail_provider".into(), json!(t.provider));
        }
        Ok(Stored {
            object,
            thumbnail,
            metadata,
        })
    }

    async fn store_bytes(
        &self,
        bytes: Bytes,
        content_type: &str,
        extension: &str,
        size_hint: Option<u64>,
    ) -> Result<(StoredObject, Option<StoredObject>), GenerateError> {
        let key = self.key(extension);
        let size = size_hint.unwrap_or(bytes.len() as u64);
        let env = self.env;
        let object = env
            .storage
            .put_sized(
                &key,
                storage::stream_of(bytes.clone()),
                content_type,
                env.config.storage.max_file_size,
                Some(size),
            )
            .await
            .map_err(store_failed)?;
        // A thumbnail never fails the artifact.
        let thumbnail = if content_type.starts_with("image/") {
            self.thumbnail(bytes).await
        } else {
            None
        };
        Ok((object, thumbnail))
    }

    /// Bytes of unknown type: typed and probed from their start, then stored.
    async fn store_sniffed(
        &self,
        bytes: Bytes,
        declared: Option<&str>,
        metadata: &mut Map<String, Value>,
    ) -> Result<(StoredObject, Option<StoredObject>), GenerateError> {
        let head = &bytes[..bytes.len().min(media::PROBE_LEN)];
        let accepted = media::accept(self.kind, declared, head).map_err(|e| self.refused(e))?;
        describe(
            metadata,
            accepted,
            &media::probe(accepted.content_type, head),
        );
        self.store_bytes(bytes, accepted.content_type, accepted.extension, None)
            .await
    }

    /// A provider's file: fetched under the SSRF guard and streamed into storage.
    async fn store_url(
        &self,
        url: &str,
        metadata: &mut Map<String, Value>,
    ) -> Result<(StoredObject, Option<StoredObject>), GenerateError> {
        let label = self.label;
        let fetched = self.env.fetcher.get(url).await.map_err(|e| match e {
            FetchError::NotAllowed(m) => {
                GenerateError::Permanent(format!("{label}: the output URL is not allowed: {m}"))
            }
            FetchError::TooLarge { .. } => GenerateError::Permanent(format!("{label}: {e}")),
            FetchError::Status(s) if (400..500).contains(&s) && s != 408 && s != 429 => {
                GenerateError::Permanent(format!(
                    "{label}: downloading the output failed: HTTP {s}"
                ))
            }
            other => {
                GenerateError::Transient(format!("{label}: downloading the output failed: {other}"))
            }
        })?;
        let limit = self.env.config.storage.max_file_size;
        let mut body = fetched.body;
        let mut head = BytesMut::new();
        let mut ended = false;
        while head.len() < media::PROBE_LEN {
            match body.next().await {
                Some(Ok(chunk)) => head.extend_from_slice(&chunk),
                Some(Err(e)) => return Err(self.download_failed(e)),
                None => {
                    ended = true;
                    break;
                }
            }
        }
        let head = head.freeze();
        let accepted = media::accept(self.kind, fetched.content_type.as_deref(), &head)
            .map_err(|e| self.refused(e))?;
        describe(
            metadata,
            accepted,
            &media::probe(accepted.content_type, &head),
        );
        let rest: ByteStream = if ended {
            futures::stream::empty().boxed()
        } else {
            body
        };
        let whole: ByteStream = futures::stream::once(futures::future::ready(Ok(head)))
            .chain(rest)
            .boxed();
        if self.kind == ArtifactKind::Image {
            // Images are small and their thumbnail needs every byte.
            let bytes = storage::collect(whole, limit)
                .await
                .map_err(|e| self.download_failed(e))?;
            return self
                .store_bytes(
                    bytes.into(),
                    accepted.content_type,
                    accepted.extension,
                    None,
                )
                .await;
        }
        let key = self.key(accepted.extension);
        let object = self
            .env
            .storage
            .put_sized(
                &key,
                whole,
                accepted.content_type,
                limit,
                fetched.content_length,
            )
            .await
            .map_err(|e| match e {
                StorageError::Source(_) => self.download_failed(e),
                other => store_failed(other),
            })?;
        Ok((object, None))
    }

    fn download_failed(&self, e: StorageError) -> GenerateError {
        match e {
            StorageError::TooLarge { .. } => GenerateError::Permanent(format!(
                "{}: the output is larger than this deployment stores: {e}",
                self.label
            )),
            other => GenerateError::Transient(format!(
                "{}: downloading the output failed: {other}",
                self.label
            )),
        }
    }

    /// A small JPEG of a generated image, stored beside it; `None` when it cannot be made.
    async fn thumbnail(&self, bytes: Bytes) -> Option<StoredObject> {
        let (job, claim, id) = (self.job, self.claim, self.generation_id);
        storage::store_thumbnail(
            self.env.storage.as_ref(),
            bytes,
            self.env.config.worker.max_image_pixels,
            |ext| {
                storage::run_key(
                    job.tenant_id,
                    job.board_id,
                    id,
                    claim.attempt,
                    "thumbnail",
                    ext,
                )
            },
        )
        .await
    }
}

/// Adds the type and what the bytes told to an artifact document (a `format` the generator
/// set, from the model's inputs, is kept).
fn describe(metadata: &mut Map<String, Value>, accepted: media::Accepted, info: &media::MediaInfo) {
    metadata
        .entry("format")
        .or_insert_with(|| json!(accepted.extension));
    if let Some(w) = info.width {
        metadata.insert("width".into(), json!(w));
    }
    if let Some(h) = info.height {
        metadata.insert("height".into(), json!(h));
    }
    if let Some(d) = info.duration_seconds {
        metadata.insert("duration".into(), json!(d));
    }
}

/// `data:[<type>][;base64],<data>` → (type, bytes).
pub fn decode_data_uri(uri: &str) -> Option<(Option<String>, Vec<u8>)> {
    let rest = uri.strip_prefix("data:")?;
    let (meta, data) = rest.split_once(',')?;
    let base64 = meta.ends_with(";base64");
    let media_type = meta.trim_end_matches(";base64").split(';').next()?.trim();
    let declared = (!media_type.is_empty()).then(|| media_type.to_string());
    let bytes = if base64 {
        base64::engine::general_purpose::STANDARD
            .decode(data.trim())
            .ok()?
    } else {
        percent_decode(data)?
    };
    Some((declared, bytes))
}

fn percent_decode(s: &str) -> Option<Vec<u8>> {
    let raw = s.as_bytes();
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        if raw[i] == b'%' {
            let hex = std::str::from_utf8(raw.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(raw[i]);
            i += 1;
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_uris_decode_from_base64_and_percent_encoding() {
        let (t, b) = decode_data_uri("data:image/png;base64,iVBORw0KGgo=").unwrap();
        assert_eq!(t.as_deref(), Some("image/png"));
        assert_eq!(&b[..4], b"\x89PNG");
        let (t, b) = decode_data_uri("data:,Hello%2C%20World").unwrap();
        assert_eq!(t, None);
        assert_eq!(b, b"Hello, World");
        assert!(decode_data_uri("data:image/png;base64,@@@").is_none());
        assert!(decode_data_uri("http://x").is_none());
    }
}
