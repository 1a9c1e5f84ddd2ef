//! The S3 provider (AWS, and S3-compatible servers through `endpoint_url`: MinIO, R2, SeaweedFS)
//! on rusoto. Bodies stream in both directions: a put holds at most one multipart part in
//! memory, a get hands rusoto's body stream straight on. A failed put is never half-visible: a
//! multipart upload that fails is aborted.

mod error;
mod settings;
mod upload;

use std::{
    sync::{Arc, RwLock},
    time::Duration,
};

use bytes::{Bytes, BytesMut};
use chrono::{DateTime, Utc};
use futures::StreamExt as _;
use rusoto_core::{credential::AwsCredentials, HttpClient, Region};
use rusoto_credential::{ChainProvider, CredentialsError, ProvideAwsCredentials, StaticProvider};
use rusoto_s3::{
    util::{PreSignedRequest as _, PreSignedRequestOption},
    CreateBucketConfiguration, CreateBucketRequest, DeleteObjectRequest, GetObjectRequest,
    HeadBucketRequest, HeadObjectRequest, S3Client, S3,
};

use self::error::{classify, Failure, Target};
pub use self::settings::{S3Delivery, S3Settings, UploadConfig};
use super::{
    content_type_of, validate_key, ByteRange, ByteStream, Delivery, ObjectInfo, Storage,
    StorageError, StoredObject,
};

/// Credentials are refreshed this long before they expire.
const REFRESH_MARGIN: chrono::Duration = chrono::Duration::minutes(5);
/// Longest wait for the readiness probe.
const PROBE_TIMEOUT: Duration = Duration::from_secs(10);
/// S3 allows at most this many parts in one multipart upload.
const MAX_PARTS: i64 = 10_000;

/// The credential provider, with the last credentials it gave kept for signing URLs
/// synchronously in [`Storage::url`].
struct Credentials {
    provider: Box<dyn ProvideAwsCredentials + Send + Sync>,
    cached: RwLock<Option<AwsCredentials>>,
    refreshing: tokio::sync::Mutex<()>,
}

impl Credentials {
    fn cached(&self) -> Option<AwsCredentials> {
        self.cached.read().ok().and_then(|c| c.clone())
    }

    /// The cached credentials unless they are (nearly) expired.
    fn fresh(&self) -> Option<AwsCredentials> {
        self.cached().filter(|c| {
            c.expires_at()
                .is_none_or(|at| at - REFRESH_MARGIN > Utc::now())
        })
    }

    async fn current(&self) -> Result<AwsCredentials, CredentialsError> {
        if let Some(c) = self.fresh() {
            return Ok(c);
        }
        let _one_at_a_time = self.refreshing.lock().await;
        if let Some(c) = self.fresh() {
            return Ok(c);
        }
        let c = self.provider.credentials().await?;
        if let Ok(mut cached) = self.cached.write() {
            *cached = Some(c.clone());
        }
        Ok(c)
    }
}

/// What the S3 client asks for credentials: the shared cache.
struct SharedCredentials(Arc<Credentials>);

#[async_trait::async_trait]
impl ProvideAwsCredentials for SharedCredentials {
    async fn credentials(&self) -> Result<AwsCredentials, CredentialsError> {
        self.0.current().await
    }
}

/// rusoto's HTTP client with a deadline on every request (rusoto sets none by itself).
struct TimedDispatcher {
    inner: HttpClient,
    timeout: std::time::Duration,
}

impl rusoto_core::DispatchSignedRequest for TimedDispatcher {
    fn dispatch(
        &self,
        request: rusoto_core::signature::SignedRequest,
        timeout: Option<std::time::Duration>,
    ) -> rusoto_core::request::DispatchSignedRequestFuture {
        self.inner
            .dispatch(request, Some(timeout.unwrap_or(self.timeout)))
    }
}

/// Extra capacity of part buffers for the chunk that crosses a part boundary.
pub(crate) const CHUNK_HEADROOM: usize = 1 << 20;

pub struct S3Storage {
    client: S3Client,
    region: Region,
    credentials: Arc<Credentials>,
    settings: S3Settings,
    /// `buffer_memory` in MiB permits: a streamed put holds one buffer's worth.
    buffers: Arc<tokio::sync::Semaphore>,
}

impl std::fmt::Debug for S3Storage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Storage")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl S3Storage {
    /// Checks `settings`, builds the client and resolves the credentials once (static ones
    /// without any network; the default chain may ask the environment, the profile file, the
    /// container or the instance metadata endpoint). Does not contact the store: see
    /// [`Storage::probe`].
    pub async fn new(settings: S3Settings) -> Result<Self, StorageError> {
        settings
            .validate()
            .map_err(|e| StorageError::Refused(format!("invalid storage settings: {e}")))?;
        let provider: Box<dyn ProvideAwsCredentials + Send + Sync> =
            match (&settings.aws_access_key_id, &settings.aws_secret_access_key) {
                (Some(id), Some(secret)) => Box::new(StaticProvider::new(
                    id.clone(),
                    secret.expose().to_string(),
                    settings
                        .aws_session_token
                        .as_ref()
                        .map(|t| t.expose().to_string()),
                    None,
                )),
                _ => Box::new(ChainProvider::new()),
            };
        let credentials = Arc::new(Credentials {
            provider,
            cached: RwLock::new(None),
            refreshing: tokio::sync::Mutex::new(()),
        });
        credentials.current().await.map_err(|e| {
            StorageError::Refused(format!(
                "no AWS credentials for bucket `{}`: set aws_access_key_id and \
                 aws_secret_access_key, or provide them to the default chain ({e})",
                settings.bucket
            ))
        })?;
        let region = match settings.endpoint() {
            Some(endpoint) => Region::Custom {
                name: settings.region.clone(),
                endpoint: endpoint.to_string(),
            },
            None => settings.region.parse().map_err(|_| {
                StorageError::Refused(format!("unknown region {}", settings.region))
            })?,
        };
        let http = HttpClient::new()
            .map_err(|e| StorageError::Refused(format!("cannot set up TLS for S3: {e}")))?;
        let http = TimedDispatcher {
            inner: http,
            timeout: std::time::Duration::from_secs(settings.request_timeout_seconds),
        };
        let client =
            S3Client::new_with(http, SharedCredentials(credentials.clone()), region.clone());
        let buffers = Arc::new(tokio::sync::Semaphore::new(
            (settings.buffer_memory / (1 << 20)) as usize,
        ));
        Ok(Self {
            client,
            region,
            credentials,
            settings,
            buffers,
        })
    }

    pub fn settings(&self) -> &S3Settings {
        &self.settings
    }

    /// Creates the bucket unless it exists (tests, `make dev`).
    pub async fn ensure_bucket(&self) -> Result<(), StorageError> {
        match self.head_bucket_raw().await {
            Ok(()) => return Ok(()),
            Err(f) if f.status == Some(404) || f.is("NoSuchBucket") => {}
            Err(f) => return Err(self.fail(f, Target::Bucket)),
        }
        let configuration = (self.settings.endpoint().is_none()
            && self.settings.region != "us-east-1")
            .then(|| CreateBucketConfiguration {
                location_constraint: Some(self.settings.region.clone()),
            });
        let request = CreateBucketRequest {
            bucket: self.settings.bucket.clone(),
            create_bucket_configuration: configuration,
            ..Default::default()
        };
        match self
            .client
            .create_bucket(request)
            .await
            .map_err(Failure::from)
        {
            Ok(_) => Ok(()),
            Err(f) if f.is("BucketAlreadyOwnedByYou") => Ok(()),
            Err(f) => Err(self.fail(f, Target::Bucket)),
        }
    }

    fn object_key(&self, key: &str) -> String {
        format!("{}{key}", self.settings.prefix)
    }

    fn fail(&self, f: Failure, target: Target<'_>) -> StorageError {
        classify(f, &self.settings.bucket, target)
    }

    async fn head_bucket_raw(&self) -> Result<(), Failure> {
        let request = HeadBucketRequest {
            bucket: self.settings.bucket.clone(),
            ..Default::default()
        };
        self.client
            .head_bucket(request)
            .await
            .map_err(Failure::from)
    }

    /// The URL without a signature: CDN, endpoint (path- or virtual-host style) or AWS.
    fn public_url(&self, object: &str) -> String {
        let s = &self.settings;
        let path = encode_path(object);
        if let Some(base) = &s.cdn_base_url {
            return format!("{}/{path}", base.trim_end_matches('/'));
        }
        if let Some(domain) = &s.cloudfront_domain {
            return format!("https://{}/{path}", domain.trim_end_matches('/'));
        }
        let bucket = &s.bucket;
        match (s.endpoint(), s.uses_path_style()) {
            (Some(endpoint), true) => format!("{endpoint}/{bucket}/{path}"),
            (Some(endpoint), false) => {
                let (scheme, rest) = endpoint.split_once("://").unwrap_or(("https", endpoint));
                format!("{scheme}://{bucket}.{rest}/{path}")
            }
            (None, true) => format!("https://s3.{}.amazonaws.com/{bucket}/{path}", s.region),
            (None, false) => format!("https://{bucket}.s3.{}.amazonaws.com/{path}", s.region),
        }
    }

    fn presigned_url(&self, object: &str, credentials: &AwsCredentials) -> String {
        let request = GetObjectRequest {
            bucket: self.settings.bucket.clone(),
            key: object.to_string(),
            ..Default::default()
        };
        let option = PreSignedRequestOption {
            expires_in: Duration::from_secs(self.settings.url_expiry_seconds),
        };
        request.get_presigned_url(&self.region, credentials, &option)
    }

    /// Starts refreshing credentials that are about to expire, without waiting (for `url`).
    fn refresh_soon(&self) {
        if self.credentials.fresh().is_some() {
            return;
        }
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let credentials = self.credentials.clone();
            runtime.spawn(async move {
                let _ = credentials.current().await;
            });
        }
    }
}

#[async_trait::async_trait]
impl Storage for S3Storage {
    fn name(&self) -> &'static str {
        "s3"
    }

    async fn put(
        &self,
        key: &str,
        mut body: ByteStream,
        content_type: &str,
        max_bytes: u64,
    ) -> Result<StoredObject, StorageError> {
        validate_key(key)?;
        let object = self.object_key(key);
        let too_large = |n: usize| n as u64 > max_bytes;
        // A body that arrives as one chunk is already in the caller's memory: it goes up as it
        // is. Anything streamed first reserves its buffer from the process-wide budget.
        let first = match body.next().await {
            None => Bytes::new(),
            Some(chunk) => chunk?,
        };
        if too_large(first.len()) {
            return Err(StorageError::TooLarge { limit: max_bytes });
        }
        let second = match body.next().await {
            None => {
                let size = first.len() as u64;
                self.put_single(&object, first, content_type).await?;
                return Ok(StoredObject::written(self, key, size, content_type));
            }
            Some(chunk) => chunk?,
        };
        let buffer = self.settings.buffer_size();
        let _reserved = self
            .buffers
            .clone()
            .acquire_many_owned((buffer >> 20) as u32)
            .await
            .map_err(|_| StorageError::Unavailable("the S3 provider is shutting down".into()))?;
        // Read up to the threshold: a small body goes up in one request.
        let threshold = self.settings.multipart_threshold;
        // Headroom for the chunk that crosses the threshold, so the buffer never doubles.
        let mut buffered = BytesMut::with_capacity(buffer as usize + CHUNK_HEADROOM);
        buffered.extend_from_slice(&first);
        drop(first);
        if too_large(buffered.len() + second.len()) {
            return Err(StorageError::TooLarge { limit: max_bytes });
        }
        buffered.extend_from_slice(&second);
        drop(second);
        while buffered.len() as u64 <= threshold {
            match body.next().await {
                None => {
                    let size = buffered.len() as u64;
                    self.put_single(&object, buffered.freeze(), content_type)
                        .await?;
                    return Ok(StoredObject::written(self, key, size, content_type));
                }
                Some(chunk) => {
                    let chunk = chunk?;
                    if too_large(buffered.len() + chunk.len()) {
                        return Err(StorageError::TooLarge { limit: max_bytes });
                    }
                    buffered.extend_from_slice(&chunk);
                }
            }
        }
        let upload_id = self.start_multipart(&object, content_type).await?;
        // A put abandoned half-way (its request dropped) aborts the upload from the guard.
        let guard = upload::AbortOnDrop::new(
            self.client.clone(),
            &self.settings.bucket,
            &object,
            &upload_id,
        );
        let result = self
            .upload_parts(&object, &upload_id, buffered, body, max_bytes)
            .await;
        guard.disarm();
        match result {
            Ok(size) => Ok(StoredObject::written(self, key, size, content_type)),
            Err(e) => {
                self.abort_multipart(&object, &upload_id).await;
                Err(e)
            }
        }
    }

    async fn head(&self, key: &str) -> Result<ObjectInfo, StorageError> {
        validate_key(key)?;
        let request = HeadObjectRequest {
            bucket: self.settings.bucket.clone(),
            key: self.object_key(key),
            ..Default::default()
        };
        let output = self
            .client
            .head_object(request)
            .await
            .map_err(|e| self.fail(e.into(), Target::Object(key)))?;
        Ok(ObjectInfo {
            size: output.content_length.unwrap_or(0).max(0) as u64,
            content_type: output
                .content_type
                .filter(|t| !t.is_empty())
                .unwrap_or_else(|| content_type_of(key).to_string()),
            etag: output
                .e_tag
                .map(|e| e.trim_start_matches("W/").trim_matches('"').to_string())
                .unwrap_or_default(),
            last_modified: output.last_modified.as_deref().and_then(parse_http_date),
        })
    }

    async fn get(&self, key: &str, range: Option<ByteRange>) -> Result<ByteStream, StorageError> {
        validate_key(key)?;
        if range.is_some_and(|r| r.end < r.start) {
            return Err(StorageError::BadRange);
        }
        let request = GetObjectRequest {
            bucket: self.settings.bucket.clone(),
            key: self.object_key(key),
            range: range.map(|r| format!("bytes={}-{}", r.start, r.end)),
            ..Default::default()
        };
        let output = self
            .client
            .get_object(request)
            .await
            .map_err(|e| self.fail(e.into(), Target::Object(key)))?;
        Ok(match output.body {
            Some(body) => body.map(|chunk| chunk.map_err(StorageError::Io)).boxed(),
            None => futures::stream::empty().boxed(),
        })
    }

    async fn delete(&self, key: &str) -> Result<(), StorageError> {
        validate_key(key)?;
        let request = DeleteObjectRequest {
            bucket: self.settings.bucket.clone(),
            key: self.object_key(key),
            ..Default::default()
        };
        match self.client.delete_object(request).await {
            Ok(_) => Ok(()),
            Err(e) => match self.fail(e.into(), Target::Object(key)) {
                StorageError::NotFound(_) => Ok(()),
                e => Err(e),
            },
        }
    }

    /// A CDN URL when one is configured; else a presigned GET (`presign`, the default) or the
    /// plain object URL.
    fn url(&self, key: &str) -> String {
        let object = self.object_key(key);
        let s = &self.settings;
        if s.cdn_base_url.is_some() || s.cloudfront_domain.is_some() || !s.presign {
            return self.public_url(&object);
        }
        self.refresh_soon();
        match self.credentials.cached() {
            Some(credentials) => self.presigned_url(&object, &credentials),
            // Unreachable after `new`, which resolves the credentials once.
            None => self.public_url(&object),
        }
    }

    fn urls_expire(&self) -> bool {
        let s = &self.settings;
        s.presign && s.cdn_base_url.is_none() && s.cloudfront_domain.is_none()
    }

    fn delivery(&self, key: &str) -> Delivery {
        match self.settings.delivery {
            S3Delivery::Redirect => Delivery::Redirect(self.url(key)),
            S3Delivery::Proxy => Delivery::Proxy,
        }
    }

    async fn probe(&self) -> Result<(), StorageError> {
        match tokio::time::timeout(PROBE_TIMEOUT, self.head_bucket_raw()).await {
            Ok(result) => result.map_err(|f| self.fail(f, Target::Bucket)),
            Err(_) => Err(StorageError::Unavailable(format!(
                "the S3 store did not answer within {} s",
                PROBE_TIMEOUT.as_secs()
            ))),
        }
    }
}

/// `Last-Modified` (RFC 7231 IMF-fixdate, `Wed, 21 Oct 2015 07:28:00 GMT`); some servers send
/// RFC 3339.
fn parse_http_date(value: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc2822(value)
        .or_else(|_| DateTime::parse_from_rfc3339(value))
        .ok()
        .map(|d| d.with_timezone(&Utc))
}

/// Percent-encodes each `/`-separated segment (RFC 3986 unreserved characters stay).
fn encode_path(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for b in path.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~/".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests;
