//! `POST /api/uploads/artifact` (contract §3.4): a multipart upload becomes a completed
//! generation. The file part is streamed to storage through a small bounded channel (the
//! multipart field is tied to this worker thread; the store's stream is not), so memory stays
//! flat whatever the file's size; the cap applies while streaming, with or without
//! `Content-Length`.
//!
//! Fields are read in order: `board_id` and `artifact_type` must come before `file` (the Boards
//! client sends them first), so the board is checked before any file byte is read;
//! `user_description` and `parent_generation_id` may follow the file.

// Helpers answer with the finished error response; it is built once per failed request.
#![allow(clippy::result_large_err)]

use actix_multipart::{Field, Multipart};
use actix_web::{web, HttpRequest, HttpResponse};
use boards_shared::{
    domain::{
        uploads::{self, Details, Source},
        Actor,
    },
    generators::ArtifactKind,
    media,
    ratelimit::Limit,
    storage::StorageError,
    AppError,
};
use bytes::Bytes;
use futures::StreamExt as _;
use serde_json::json;
use uuid::Uuid;

use super::{current_user, error_response};
use crate::state::AppState;

/// Largest text field (descriptions, ids).
const MAX_TEXT_FIELD: usize = 16 * 1024;
/// File chunks in flight between the request and the store.
const CHANNEL_CHUNKS: usize = 8;

fn unprocessable(message: impl Into<String>) -> HttpResponse {
    HttpResponse::UnprocessableEntity().json(json!({
        "detail": message.into(),
        "code": "BAD_USER_INPUT",
    }))
}

fn bad_ids() -> HttpResponse {
    error_response(&AppError::bad_input(
        "Invalid board_id or parent_generation_id format",
    ))
}

async fn read_text(field: &mut Field, name: &str) -> Result<String, HttpResponse> {
    let mut buf = Vec::new();
    while let Some(chunk) = field.next().await {
        let chunk = chunk.map_err(|e| {
            error_response(&AppError::bad_input(format!("Malformed form data: {e}")))
        })?;
        if buf.len() + chunk.len() > MAX_TEXT_FIELD {
            return Err(unprocessable(format!(
                "Field '{name}' is longer than {MAX_TEXT_FIELD} bytes"
            )));
        }
        buf.extend_from_slice(&chunk);
    }
    String::from_utf8(buf).map_err(|_| unprocessable(format!("Field '{name}' is not UTF-8 text")))
}

#[derive(Default)]
struct Fields {
    board_id: Option<String>,
    artifact_type: Option<String>,
    user_description: Option<String>,
    parent_generation_id: Option<String>,
}

impl Fields {
    async fn take(&mut self, field: &mut Field) -> Result<(), HttpResponse> {
        let name = field.name().unwrap_or_default().to_string();
        let slot = match name.as_str() {
            "board_id" => &mut self.board_id,
            "artifact_type" => &mut self.artifact_type,
            "user_description" => &mut self.user_description,
            "parent_generation_id" => &mut self.parent_generation_id,
            // Unknown fields are drained and ignored (as the original's form parser does).
            _ => {
                while let Some(chunk) = field.next().await {
                    if chunk.is_err() {
                        break;
                    }
                }
                return Ok(());
            }
        };
        *slot = Some(read_text(field, &name).await?);
        Ok(())
    }

    fn details(&self) -> Result<Details, HttpResponse> {
        let parent_generation_id = match self.parent_generation_id.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(s) => Some(Uuid::parse_str(s).map_err(|_| bad_ids())?),
        };
        Ok(Details {
            user_description: self.user_description.clone().filter(|d| !d.is_empty()),
            parent_generation_id,
        })
    }
}

/// The checks that come before the file's bytes, in the contract's order.
fn checked_kind_and_board(fields: &Fields) -> Result<(ArtifactKind, Uuid), HttpResponse> {
    let (Some(board_id), Some(artifact_type)) = (&fields.board_id, &fields.artifact_type) else {
        let missing: Vec<&str> = [
            ("board_id", fields.board_id.is_none()),
            ("artifact_type", fields.artifact_type.is_none()),
        ]
        .into_iter()
        .filter_map(|(n, m)| m.then_some(n))
        .collect();
        return Err(unprocessable(format!(
            "Field required before the file part: {}",
            missing.join(", ")
        )));
    };
    let kind = ArtifactKind::parse(artifact_type).ok_or_else(|| {
        error_response(&AppError::bad_input(
            "Invalid artifact_type. Must be one of: image, video, audio, text",
        ))
    })?;
    Ok((
        kind,
        Uuid::parse_str(board_id.trim()).map_err(|_| bad_ids())?,
    ))
}

pub async fn upload(
    req: HttpRequest,
    state: web::Data<AppState>,
    mut form: Multipart,
) -> HttpResponse {
    let auth = match current_user(&state, &req).await {
        Ok(auth) => auth,
        Err(res) => return res,
    };
    let Some(user_id) = auth.user_id() else {
        return error_response(&AppError::unauthenticated("Authentication required"));
    };
    if let Err(e) = state.limits.check(Limit::Upload, user_id).await {
        return error_response(&e);
    }
    let actor = Actor {
        user_id,
        tenant_id: auth.tenant_id,
    };
    let content_length = req
        .headers()
        .get(actix_web::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let mut fields = Fields::default();
    let mut stored = None;
    let failure = loop {
        let Some(field) = form.next().await else {
            break None;
        };
        let mut field = match field {
            Ok(f) => f,
            Err(e) => {
                break Some(error_response(&AppError::bad_input(format!(
                    "Malformed form data: {e}"
                ))))
            }
        };
        if field.name() != Some("file") {
            if let Err(res) = fields.take(&mut field).await {
                break Some(res);
            }
            continue;
        }
        if stored.is_some() {
            break Some(error_response(&AppError::bad_input(
                "Only one file may be uploaded",
            )));
        }
        match receive_file(&state, &actor, &fields, &mut field, content_length).await {
            Ok(s) => stored = Some(s),
            Err(res) => break Some(res),
        }
    };
    // A request that fails after its file was stored leaves nothing behind.
    if let Some(res) = failure {
        if let Some(received) = stored {
            discard(&state, received).await;
        }
        return res;
    }
    let Some(received) = stored else {
        return unprocessable("Field required: file");
    };
    let details = match fields.details() {
        Ok(d) => d,
        Err(res) => {
            discard(&state, received).await;
            return res;
        }
    };
    finish(&state, received, details).await
}

/// What became of the file part.
enum Received {
    Stored(Box<uploads::Stored>),
    /// The store failed: the row records it once the remaining fields are read.
    StoreFailed {
        prepared: uploads::Prepared,
        filename: String,
        declared: Option<String>,
        error: AppError,
    },
}

async fn receive_file(
    state: &AppState,
    actor: &Actor,
    fields: &Fields,
    field: &mut Field,
    content_length: Option<u64>,
) -> Result<Received, HttpResponse> {
    let (kind, board_id) = checked_kind_and_board(fields)?;
    let filename = field
        .content_disposition()
        .and_then(|cd| cd.get_filename())
        .unwrap_or_default()
        .to_string();
    media::check_extension(&filename, &state.uploader.limits().allowed_extensions)
        .map_err(|e| error_response(&AppError::bad_input(e.to_string())))?;
    let declared = field.content_type().map(|m| m.essence_str().to_string());
    let prepared = {
        let mut conn = state
            .pool
            .get()
            .await
            .map_err(|e| error_response(&AppError::from(e)))?;
        state
            .uploader
            .prepare(&mut conn, actor, board_id, kind)
            .await
            .map_err(|e| error_response(&e))?
        // The connection goes back to the pool before the body streams.
    };
    let size_hint = content_length;
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, StorageError>>(CHANNEL_CHUNKS);
    let body = tokio_stream_of(rx);
    let store = state.uploader.store(
        prepared.clone(),
        Source::File,
        &filename,
        declared.as_deref(),
        body,
        // The request's length bounds the file's (routing rules on size use it).
        size_hint,
    );
    let pump = async move {
        while let Some(chunk) = field.next().await {
            let item = chunk.map_err(|e| StorageError::Source(e.to_string()));
            let failed = item.is_err();
            if tx.send(item).await.is_err() || failed {
                // The store stopped reading (refused, over the cap) or the client broke off.
                return;
            }
        }
    };
    let (result, ()) = futures::join!(store, pump);
    match result {
        Ok(stored) => Ok(Received::Stored(Box::new(stored))),
        Err(error) if uploads::is_store_failure(&error) => Ok(Received::StoreFailed {
            prepared,
            filename,
            declared,
            error,
        }),
        Err(error) => Err(error_response(&error)),
    }
}

fn tokio_stream_of(
    mut rx: tokio::sync::mpsc::Receiver<Result<Bytes, StorageError>>,
) -> boards_shared::storage::ByteStream {
    futures::stream::poll_fn(move |cx| rx.poll_recv(cx)).boxed()
}

async fn discard(state: &AppState, received: Received) {
    if let Received::Stored(stored) = received {
        state.uploader.discard(&stored).await;
    }
}

async fn finish(state: &AppState, received: Received, details: Details) -> HttpResponse {
    let mut conn = match state.pool.get().await {
        Ok(c) => c,
        Err(e) => {
            discard(state, received).await;
            return error_response(&AppError::from(e));
        }
    };
    match received {
        Received::Stored(stored) => {
            match state.uploader.record(&mut conn, *stored, details).await {
                Ok(generation) => {
                    crate::sse::announce_generation_created(state, &generation);
                    HttpResponse::Ok().json(json!({
                    "id": generation.id,
                    "status": generation.status,
                    "storageUrl": generation.storage_url,
                    "thumbnailUrl": generation.thumbnail_url,
                    "artifactType": generation.artifact_type,
                    "generatorName": generation.generator_name,
                    }))
                }
                Err(e) => error_response(&e),
            }
        }
        Received::StoreFailed {
            prepared,
            filename,
            declared,
            error,
        } => {
            let failed = state
                .uploader
                .record_failure(
                    &mut conn,
                    &prepared,
                    &uploads::Origin {
                        source: &Source::File,
                        filename: &filename,
                        declared_type: declared.as_deref(),
                    },
                    &details,
                    error,
                )
                .await;
            error_response(&failed.error)
        }
    }
}
