//! Writing objects: one PutObject for small bodies, a multipart upload (one part in memory at a
//! time) for large ones, aborted when anything fails so nothing is half-visible.

use bytes::{Bytes, BytesMut};
use futures::StreamExt as _;
use rusoto_s3::{
    AbortMultipartUploadRequest, CompleteMultipartUploadRequest, CompletedMultipartUpload,
    CompletedPart, CreateMultipartUploadRequest, PutObjectRequest, StreamingBody,
    UploadPartRequest, S3 as _,
};

use super::{error::Target, S3Storage, MAX_PARTS};
use crate::storage::{ByteStream, StorageError};

impl S3Storage {
    pub(super) async fn put_single(
        &self,
        object: &str,
        body: Bytes,
        content_type: &str,
    ) -> Result<(), StorageError> {
        let upload = &self.settings.upload_config;
        let request = PutObjectRequest {
            bucket: self.settings.bucket.clone(),
            key: object.to_string(),
            content_length: Some(body.len() as i64),
            body: Some(streaming_body(body)),
            content_type: Some(content_type.to_string()),
            server_side_encryption: upload.server_side_encryption.clone(),
            storage_class: upload.storage_class.clone(),
            ..Default::default()
        };
        self.client
            .put_object(request)
            .await
            .map(drop)
            .map_err(|e| self.fail(e.into(), Target::Object(object)))
    }

    pub(super) async fn start_multipart(
        &self,
        object: &str,
        content_type: &str,
    ) -> Result<String, StorageError> {
        let upload = &self.settings.upload_config;
        let request = CreateMultipartUploadRequest {
            bucket: self.settings.bucket.clone(),
            key: object.to_string(),
            content_type: Some(content_type.to_string()),
            server_side_encryption: upload.server_side_encryption.clone(),
            storage_class: upload.storage_class.clone(),
            ..Default::default()
        };
        let output = self
            .client
            .create_multipart_upload(request)
            .await
            .map_err(|e| self.fail(e.into(), Target::Object(object)))?;
        output.upload_id.ok_or_else(|| {
            StorageError::Unavailable("the store started a multipart upload without an id".into())
        })
    }

    /// Sends `buffered` and the rest of `body` as parts, then completes the upload. Returns
    /// the object's size.
    pub(super) async fn upload_parts(
        &self,
        object: &str,
        upload_id: &str,
        mut buffered: BytesMut,
        mut body: ByteStream,
        max_bytes: u64,
    ) -> Result<u64, StorageError> {
        let part_size = self.settings.part_size as usize;
        let mut size = buffered.len() as u64;
        let mut parts = Vec::new();
        let mut finished = false;
        while !finished || !buffered.is_empty() {
            if buffered.len() >= part_size || (finished && !buffered.is_empty()) {
                let take = buffered.len().min(part_size);
                // The remainder (less than a chunk) moves to a fresh buffer, so the sent
                // part's memory is freed as soon as it is uploaded instead of being kept
                // alive by a shared allocation.
                let rest = BytesMut::from(&buffered[take..]);
                buffered.truncate(take);
                let part = std::mem::replace(&mut buffered, rest).freeze();
                parts.push(
                    self.upload_part(object, upload_id, parts.len() as i64 + 1, part)
                        .await?,
                );
                buffered.reserve(part_size + super::CHUNK_HEADROOM);
                continue;
            }
            match body.next().await {
                None => finished = true,
                Some(chunk) => {
                    let chunk = chunk?;
                    size += chunk.len() as u64;
                    if size > max_bytes {
                        return Err(StorageError::TooLarge { limit: max_bytes });
                    }
                    buffered.extend_from_slice(&chunk);
                }
            }
        }
        let request = CompleteMultipartUploadRequest {
            bucket: self.settings.bucket.clone(),
            key: object.to_string(),
            upload_id: upload_id.to_string(),
            multipart_upload: Some(CompletedMultipartUpload { parts: Some(parts) }),
            ..Default::default()
        };
        self.client
            .complete_multipart_upload(request)
            .await
            .map_err(|e| self.fail(e.into(), Target::Object(object)))?;
        Ok(size)
    }

    async fn upload_part(
        &self,
        object: &str,
        upload_id: &str,
        number: i64,
        part: Bytes,
    ) -> Result<CompletedPart, StorageError> {
        if number > MAX_PARTS {
            return Err(StorageError::Refused(format!(
                "the object needs more than {MAX_PARTS} parts: raise the s3 `part_size`"
            )));
        }
        let request = UploadPartRequest {
            bucket: self.settings.bucket.clone(),
            key: object.to_string(),
            upload_id: upload_id.to_string(),
            part_number: number,
            content_length: Some(part.len() as i64),
            body: Some(streaming_body(part)),
            ..Default::default()
        };
        let output = self
            .client
            .upload_part(request)
            .await
            .map_err(|e| self.fail(e.into(), Target::Object(object)))?;
        Ok(CompletedPart {
            e_tag: output.e_tag,
            part_number: Some(number),
        })
    }

    /// Best effort: a failed abort leaves an incomplete upload that a bucket lifecycle rule
    /// (AbortIncompleteMultipartUpload) removes; it is never visible as an object.
    pub(super) async fn abort_multipart(&self, object: &str, upload_id: &str) {
        let request = AbortMultipartUploadRequest {
            bucket: self.settings.bucket.clone(),
            key: object.to_string(),
            upload_id: upload_id.to_string(),
            ..Default::default()
        };
        let _ = self.client.abort_multipart_upload(request).await;
    }
}

/// Aborts a multipart upload when dropped while armed (the put's future was dropped).
pub(super) struct AbortOnDrop {
    request: Option<(rusoto_s3::S3Client, AbortMultipartUploadRequest)>,
}

impl AbortOnDrop {
    pub(super) fn new(
        client: rusoto_s3::S3Client,
        bucket: &str,
        object: &str,
        upload_id: &str,
    ) -> Self {
        Self {
            request: Some((
                client,
                AbortMultipartUploadRequest {
                    bucket: bucket.to_string(),
                    key: object.to_string(),
                    upload_id: upload_id.to_string(),
                    ..Default::default()
                },
            )),
        }
    }

    pub(super) fn disarm(mut self) {
        self.request = None;
    }
}

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        if let (Some((client, request)), Ok(runtime)) =
            (self.request.take(), tokio::runtime::Handle::try_current())
        {
            runtime.spawn(async move {
                let _ = client.abort_multipart_upload(request).await;
            });
        }
    }
}

fn streaming_body(bytes: Bytes) -> StreamingBody {
    let len = bytes.len();
    StreamingBody::new_with_size(futures::stream::once(async move { Ok(bytes) }), len)
}
