//! Uploads (contract §2.7): a file from the client (`POST /api/uploads/artifact`) or from a URL
//! (`uploadArtifact`) becomes a completed generation on a board.
//!
//! The body is streamed to storage, never held whole: only its first [`media::PROBE_LEN`] bytes
//! are kept, to sniff the real content type (which must agree with the artifact type and the
//! allow-list) and to read cheap metadata. The size cap applies while streaming. The row is
//! written after the object, in one statement: a refused or broken upload leaves neither an
//! object nor a half-finished row; a store that fails leaves a `failed` row (§2.7 step 10).
//!
//! The steps are split so that the REST handler can check the board before it reads the file
//! and take the fields that follow the file part afterwards: [`Uploader::prepare`] →
//! [`Uploader::store`] → [`Uploader::record`] (or [`Uploader::record_failure`]).

use std::sync::Arc;

use bigdecimal::BigDecimal;
use bytes::{Bytes, BytesMut};
use chrono::Utc;
use diesel_async::AsyncPgConnection;
use futures::StreamExt as _;
use serde_json::{json, Map, Value};
use uuid::Uuid;

use super::{boards::visible_board, inputs, text::check_text, Actor};
use crate::{
    db::models::{generations, Generation},
    generators::ArtifactKind,
    media,
    storage::{self, ByteStream, Storage, StorageError},
    AppError, AppResult,
};

/// Limits of uploads, from configuration.
#[derive(Clone, Debug)]
pub struct UploadLimits {
    /// Largest upload, in bytes (`BOARDS_MAX_UPLOAD_SIZE`).
    pub max_bytes: u64,
    /// Extensions a file part's name may have (`BOARDS_ALLOWED_UPLOAD_EXTENSIONS`).
    pub allowed_extensions: Vec<String>,
    /// Largest image (pixels) decoded for a thumbnail.
    pub max_image_pixels: u64,
    /// Largest image file read back for a thumbnail; bigger ones get none.
    pub max_thumbnail_source_bytes: u64,
    /// `allowed_content_types` of `storage_config.yaml`: narrows the built-in allow-list.
    pub allowed_content_types: Option<Vec<String>>,
}

impl UploadLimits {
    pub fn from_config(config: &crate::Config) -> Self {
        Self {
            // The store's own limit applies too (contract §2.7 step 9).
            max_bytes: config
                .uploads
                .max_upload_size
                .min(config.storage.max_file_size),
            allowed_extensions: config.uploads.allowed_extensions.clone(),
            max_image_pixels: config.worker.max_image_pixels,
            max_thumbnail_source_bytes: config.uploads.thumbnail_max_source_bytes,
            allowed_content_types: config.storage.layout.allowed_content_types.clone(),
        }
    }
}

/// Where the bytes come from.
#[derive(Clone, Debug)]
pub enum Source {
    File,
    Url(String),
}

impl Source {
    fn as_str(&self) -> &'static str {
        match self {
            Self::File => "file",
            Self::Url(_) => "url",
        }
    }
}

/// The board checked, before any byte is read.
#[derive(Clone, Debug)]
pub struct Prepared {
    actor: Actor,
    board_id: Uuid,
    kind: ArtifactKind,
    generation_id: Uuid,
    started_at: chrono::DateTime<Utc>,
}

impl Prepared {
    pub fn generation_id(&self) -> Uuid {
        self.generation_id
    }
}

/// The bytes stored (the original and, for images, a thumbnail).
#[derive(Debug)]
pub struct Stored {
    prepared: Prepared,
    source: Source,
    filename: String,
    declared_type: Option<String>,
    object: storage::StoredObject,
    thumbnail: Option<storage::StoredObject>,
    info: media::MediaInfo,
}

/// What the caller adds after the file part.
#[derive(Clone, Debug, Default)]
pub struct Details {
    pub user_description: Option<String>,
    pub parent_generation_id: Option<Uuid>,
}

/// Where an upload came from, as the client described it.
#[derive(Clone, Copy, Debug)]
pub struct Origin<'a> {
    pub source: &'a Source,
    pub filename: &'a str,
    pub declared_type: Option<&'a str>,
}

/// An upload that failed in the store: the row records it (contract §2.7 step 10).
pub struct Failed {
    pub generation: Option<Generation>,
    pub error: AppError,
}

pub struct Uploader {
    storage: Arc<dyn Storage>,
    limits: UploadLimits,
    /// Thumbnails decode whole images: one at a time per process bounds their memory.
    thumbnails: tokio::sync::Semaphore,
}

impl Uploader {
    pub fn new(storage: Arc<dyn Storage>, limits: UploadLimits) -> Self {
        Self {
            storage,
            limits,
            thumbnails: tokio::sync::Semaphore::new(1),
        }
    }

    pub fn limits(&self) -> &UploadLimits {
        &self.limits
    }

    /// Checks the board (it exists for the caller, who may add content to it).
    pub async fn prepare(
        &self,
        conn: &mut AsyncPgConnection,
        actor: &Actor,
        board_id: Uuid,
        kind: ArtifactKind,
    ) -> AppResult<Prepared> {
        let (board, relation) = visible_board(conn, actor, board_id, "Board not found").await?;
        if !relation.can_edit() {
            return Err(AppError::forbidden(
                "Permission denied: You don't have permission to upload to this board",
            ));
        }
        Ok(Prepared {
            actor: *actor,
            board_id: board.id,
            kind,
            generation_id: Uuid::new_v4(),
            started_at: Utc::now(),
        })
    }

    /// Streams `body` into storage after checking what its first bytes are. Errors are the
    /// client's (`BadInput`, `TooLarge`) or the store's ([`is_store_failure`]); either way no
    /// object is left behind.
    pub async fn store(
        &self,
        prepared: Prepared,
        source: Source,
        filename: &str,
        declared_type: Option<&str>,
        mut body: ByteStream,
        size_hint: Option<u64>,
    ) -> AppResult<Stored> {
        let filename = media::sanitize_filename(filename);
        let limit = self.limits.max_bytes;
        // The head: enough to sniff and probe, kept while the rest streams on.
        let mut head = BytesMut::new();
        let mut ended = false;
        while head.len() < media::PROBE_LEN {
            match body.next().await {
                Some(Ok(chunk)) => {
                    if head.len() as u64 + chunk.len() as u64 > limit {
                        return Err(too_large(limit));
                    }
                    head.extend_from_slice(&chunk);
                }
                Some(Err(StorageError::Source(_))) if matches!(source, Source::Url(_)) => {
                    return Err(AppError::bad_input("Failed to download file from URL"))
                }
                Some(Err(e)) => return Err(stream_error(e, limit)),
                None => {
                    ended = true;
                    break;
                }
            }
        }
        let head = head.freeze();
        let accepted = media::accept(prepared.kind, declared_type, &head)
            .map_err(|e| AppError::bad_input(e.to_string()))?;
        if let Some(allowed) = &self.limits.allowed_content_types {
            if !allowed
                .iter()
                .any(|t| media::canonical_content_type(t) == accepted.content_type)
            {
                return Err(AppError::bad_input(format!(
                    "Invalid file type: {} is not accepted by this deployment",
                    accepted.content_type
                )));
            }
        }
        let info = media::probe(accepted.content_type, &head);
        let rest = if ended {
            futures::stream::empty().boxed()
        } else {
            body
        };
        let whole = futures::stream::once(futures::future::ready(Ok::<Bytes, StorageError>(head)))
            .chain(rest)
            .boxed();
        let key = storage::upload_key(
            prepared.actor.tenant_id,
            prepared.board_id,
            prepared.generation_id,
            "original",
            accepted.extension,
        );
        let object = self
            .storage
            .put_sized(&key, whole, accepted.content_type, limit, size_hint)
            .await
            .map_err(|e| match (&source, e) {
                (Source::Url(_), StorageError::Source(_)) => {
                    AppError::bad_input("Failed to download file from URL")
                }
                (_, e) => stream_error(e, limit),
            })?;
        let thumbnail = if prepared.kind == ArtifactKind::Image {
            self.thumbnail(&prepared, &object).await
        } else {
            None
        };
        Ok(Stored {
            prepared,
            source,
            filename,
            declared_type: declared_type.map(str::to_string),
            object,
            thumbnail,
            info,
        })
    }

    /// A small JPEG beside an uploaded image; any failure only means no thumbnail.
    async fn thumbnail(
        &self,
        prepared: &Prepared,
        object: &storage::StoredObject,
    ) -> Option<storage::StoredObject> {
        if object.size > self.limits.max_thumbnail_source_bytes {
            return None;
        }
        let _permit = self.thumbnails.acquire().await.ok()?;
        let bytes = storage::read_all(self.storage.as_ref(), &object.key, object.size)
            .await
            .ok()?;
        let p = prepared;
        storage::store_thumbnail(
            self.storage.as_ref(),
            bytes.into(),
            self.limits.max_image_pixels,
            |ext| {
                storage::upload_key(
                    p.actor.tenant_id,
                    p.board_id,
                    p.generation_id,
                    "thumbnail",
                    ext,
                )
            },
        )
        .await
    }

    /// Writes the completed generation. Details are checked first; when they or the write
    /// fail, the stored objects are removed again.
    pub async fn record(
        &self,
        conn: &mut AsyncPgConnection,
        stored: Stored,
        details: Details,
    ) -> AppResult<Generation> {
        let result = self.insert_completed(conn, &stored, &details).await;
        if result.is_err() {
            // A connection lost after COMMIT: the row may exist; its object must stay.
            let committed = matches!(
                generations::find(conn, stored.prepared.generation_id).await,
                Ok(Some(_))
            );
            if !committed {
                self.discard(&stored).await;
            }
        }
        result
    }

    async fn insert_completed(
        &self,
        conn: &mut AsyncPgConnection,
        stored: &Stored,
        details: &Details,
    ) -> AppResult<Generation> {
        let p = &stored.prepared;
        let input_artifacts = parent_entry(conn, &p.actor, p.kind, details).await?;
        let mut metadata = base_metadata(stored.object.size, stored.declared_type.as_deref());
        metadata.insert("storage_key".into(), json!(stored.object.key));
        metadata.insert("storage_provider".into(), json!(stored.object.provider));
        metadata.insert("content_type".into(), json!(stored.object.content_type));
        metadata.insert("size".into(), json!(stored.object.size));
        if let Some(w) = stored.info.width {
            metadata.insert("width".into(), json!(w));
        }
        if let Some(h) = stored.info.height {
            metadata.insert("height".into(), json!(h));
        }
        if let Some(d) = stored.info.duration_seconds {
            metadata.insert("duration".into(), json!(d));
        }
        if let Some(t) = &stored.thumbnail {
            metadata.insert("thumbnail_key".into(), json!(t.key));
            metadata.insert("thumbnail_provider".into(), json!(t.provider));
        }
        let row = generations::NewUpload {
            id: p.generation_id,
            tenant_id: p.actor.tenant_id,
            board_id: p.board_id,
            user_id: p.actor.user_id,
            generator_name: generator_name(p.kind),
            artifact_type: p.kind.as_str().to_string(),
            input_params: input_params(
                &stored.source,
                &stored.filename,
                details.user_description.as_deref(),
            ),
            status: "completed".into(),
            storage_url: Some(stored.object.url.clone()),
            thumbnail_url: stored.thumbnail.as_ref().map(|t| t.url.clone()),
            output_metadata: Value::Object(metadata),
            input_artifacts,
            progress: BigDecimal::from(100),
            error_message: None,
            started_at: p.started_at,
            completed_at: Utc::now(),
        };
        Ok(generations::insert_upload(conn, &row).await?)
    }

    /// Records an upload the store failed (contract §2.7 step 10: the row stays visible on
    /// the board as `failed`) and returns the error for the caller.
    pub async fn record_failure(
        &self,
        conn: &mut AsyncPgConnection,
        prepared: &Prepared,
        origin: &Origin<'_>,
        details: &Details,
        error: AppError,
    ) -> Failed {
        let Origin {
            source,
            filename,
            declared_type,
        } = *origin;
        let message = format!("Upload failed: {error}");
        let row = generations::NewUpload {
            id: prepared.generation_id,
            tenant_id: prepared.actor.tenant_id,
            board_id: prepared.board_id,
            user_id: prepared.actor.user_id,
            generator_name: generator_name(prepared.kind),
            artifact_type: prepared.kind.as_str().to_string(),
            input_params: input_params(
                source,
                &media::sanitize_filename(filename),
                details.user_description.as_deref(),
            ),
            status: "failed".into(),
            storage_url: None,
            thumbnail_url: None,
            output_metadata: Value::Object(base_metadata(0, declared_type)),
            input_artifacts: Value::Array(vec![]),
            progress: BigDecimal::from(0),
            error_message: Some(message.clone()),
            started_at: prepared.started_at,
            completed_at: Utc::now(),
        };
        let generation = generations::insert_upload(conn, &row).await.ok();
        Failed {
            generation,
            error: match error {
                AppError::Unavailable(_, cause) => AppError::Unavailable(message, cause),
                _ => AppError::bad_input(message),
            },
        }
    }

    /// Removes what [`Self::store`] wrote (the request failed after the file).
    pub async fn discard(&self, stored: &Stored) {
        let _ = self.storage.delete(&stored.object.key).await;
        if let Some(t) = &stored.thumbnail {
            let _ = self.storage.delete(&t.key).await;
        }
    }
}

/// Whether an error from [`Uploader::store`] is the store's (worth a `failed` row) rather than
/// the client's.
pub fn is_store_failure(error: &AppError) -> bool {
    matches!(error, AppError::Unavailable(..) | AppError::Internal(_))
}

fn generator_name(kind: ArtifactKind) -> String {
    format!("user-upload-{kind}")
}

fn input_params(source: &Source, filename: &str, description: Option<&str>) -> Value {
    json!({
        "upload_source": source.as_str(),
        "original_filename": filename,
        "source_url": match source { Source::Url(u) => Some(u.as_str()), Source::File => None },
        "user_description": description,
    })
}

fn base_metadata(size: u64, declared_type: Option<&str>) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("file_size".into(), json!(size));
    m.insert(
        "mime_type".into(),
        json!(declared_type.unwrap_or("application/octet-stream")),
    );
    m.insert(
        "upload_timestamp".into(),
        json!(Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true)),
    );
    m
}

/// The lineage entry of the parent, which must be a generation the caller can read (the
/// original accepted any id).
async fn parent_entry(
    conn: &mut AsyncPgConnection,
    actor: &Actor,
    kind: ArtifactKind,
    details: &Details,
) -> AppResult<Value> {
    if let Some(d) = &details.user_description {
        check_text("userDescription", d)?;
    }
    let Some(parent) = details.parent_generation_id else {
        return Ok(Value::Array(vec![]));
    };
    let refs = [inputs::InputRef {
        field: "parentGenerationId".into(),
        kind,
        id: parent,
    }];
    inputs::readable(conn, actor.user_id, actor.tenant_id, &refs)
        .await
        .map_err(|e| match e {
            inputs::InputError::Invalid(_) => {
                AppError::bad_input(format!("Parent generation {parent} not found"))
            }
            inputs::InputError::Database(e) => e.into(),
        })?;
    Ok(json!([{
        "generation_id": parent,
        "role": "parent",
        "artifact_type": kind.as_str(),
    }]))
}

fn too_large(limit: u64) -> AppError {
    AppError::TooLarge(format!(
        "File size exceeds maximum allowed size of {limit} bytes"
    ))
}

/// The client's errors stay the client's; the store's become `Unavailable` (its detail goes
/// to the log only).
fn stream_error(e: StorageError, limit: u64) -> AppError {
    match e {
        StorageError::TooLarge { .. } => too_large(limit),
        StorageError::Source(m) => {
            AppError::bad_input(format!("Failed to read uploaded file: {m}"))
        }
        StorageError::InvalidKey(_) | StorageError::BadRange => AppError::internal(e),
        other => AppError::Unavailable(
            "storage is unavailable".into(),
            Some(anyhow::anyhow!("{other}")),
        ),
    }
}
