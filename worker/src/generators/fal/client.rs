//! fal.ai's HTTP calls: submit, status, result, cancel, and uploads to its CDN.

use std::time::{Duration, Instant};

use boards_shared::{
    config::Secret,
    generators::{run::GenerateError, Provider},
    storage::ByteStream,
};
use futures::TryStreamExt;
use serde_json::{Map, Value};
use tokio::sync::Mutex;
use tokio_util::sync::CancellationToken;

use super::protocol::{app_path, Status, Submitted, UploadToken, Uploaded};
use crate::generators::http::{Call, CallError, Http};

/// One per worker process, shared by every fal model.
pub struct Client {
    http: Http,
    key: Option<Secret>,
    /// `https://queue.fal.run`.
    queue_url: String,
    /// `https://rest.alpha.fal.ai` (CDN upload tokens).
    rest_url: String,
    /// The CDN token, reused until shortly before it expires.
    token: Mutex<Option<(UploadToken, Instant)>>,
}

/// How long a CDN token is reused (fal's last about an hour).
const TOKEN_REUSE: Duration = Duration::from_secs(20 * 60);

fn failed(e: CallError) -> GenerateError {
    e.into_generate(Provider::Fal)
}

impl Client {
    pub fn new(http: Http, key: Option<Secret>, queue_url: &str, rest_url: &str) -> Self {
        Self {
            http,
            key,
            queue_url: queue_url.trim_end_matches('/').to_string(),
            rest_url: rest_url.trim_end_matches('/').to_string(),
            token: Mutex::new(None),
        }
    }

    /// The key, or the error users see before any upstream call.
    pub fn key(&self) -> Result<&str, GenerateError> {
        self.key.as_ref().map(Secret::expose).ok_or_else(|| {
            GenerateError::Permanent(boards_shared::generators::ProviderKeys::missing(
                Provider::Fal,
            ))
        })
    }

    fn auth(&self) -> Result<String, GenerateError> {
        Ok(format!("Key {}", self.key()?))
    }

    fn request_url(&self, endpoint: &str, id: &str, tail: &str) -> String {
        format!(
            "{}/{}/requests/{id}{tail}",
            self.queue_url,
            app_path(endpoint)
        )
    }

    pub async fn submit(
        &self,
        endpoint: &str,
        body: &Map<String, Value>,
        cancel: &CancellationToken,
    ) -> Result<String, GenerateError> {
        let auth = self.auth()?;
        let url = format!("{}/{endpoint}", self.queue_url);
        let answer = self
            .http
            .json(Call::Create, cancel, |c| {
                c.post(&url).header("Authorization", &auth).json(body)
            })
            .await
            .map_err(failed)?;
        let submitted: Submitted = serde_json::from_value(answer).map_err(|_| {
            GenerateError::Transient("fal.ai: the submit answer has no request_id".into())
        })?;
        Ok(submitted.request_id)
    }

    pub async fn status(
        &self,
        endpoint: &str,
        id: &str,
        cancel: &CancellationToken,
    ) -> Result<Status, GenerateError> {
        let auth = self.auth()?;
        let url = self.request_url(endpoint, id, "/status?logs=1");
        let answer = self
            .http
            .json(Call::Idempotent, cancel, |c| {
                c.get(&url).header("Authorization", &auth)
            })
            .await
            .map_err(failed)?;
        serde_json::from_value(answer)
            .map_err(|_| GenerateError::Transient("fal.ai: unreadable status answer".into()))
    }

    pub async fn result(
        &self,
        endpoint: &str,
        id: &str,
        cancel: &CancellationToken,
    ) -> Result<Value, GenerateError> {
        let auth = self.auth()?;
        let url = self.request_url(endpoint, id, "");
        self.http
            .json(Call::Idempotent, cancel, |c| {
                c.get(&url).header("Authorization", &auth)
            })
            .await
            .map_err(failed)
    }

    /// Asks fal to stop the request (best effort: it may already be done).
    pub async fn cancel(&self, endpoint: &str, id: &str) -> Result<(), GenerateError> {
        let auth = self.auth()?;
        let url = self.request_url(endpoint, id, "/cancel");
        let never = CancellationToken::new();
        match self
            .http
            .send(Call::Idempotent, &never, |c| {
                c.put(&url).header("Authorization", &auth)
            })
            .await
        {
            // 400: already finished, nothing to cancel.
            Ok(_) | Err(CallError::Status { status: 400, .. }) => Ok(()),
            Err(e) => Err(failed(e)),
        }
    }

    async fn upload_token(
        &self,
        cancel: &CancellationToken,
    ) -> Result<(String, String), GenerateError> {
        let mut cached = self.token.lock().await;
        if let Some((t, at)) = cached.as_ref() {
            if at.elapsed() < TOKEN_REUSE {
                return Ok((format!("{} {}", t.token_type, t.token), t.base_url.clone()));
            }
        }
        let auth = self.auth()?;
        let url = format!(
            "{}/storage/auth/token?storage_type=fal-cdn-v3",
            self.rest_url
        );
        let answer = self
            .http
            .json(Call::Idempotent, cancel, |c| {
                c.post(&url)
                    .header("Authorization", &auth)
                    .json(&serde_json::json!({}))
            })
            .await
            .map_err(failed)?;
        let token: UploadToken = serde_json::from_value(answer)
            .map_err(|_| GenerateError::Transient("fal.ai: unreadable CDN token answer".into()))?;
        let out = (
            format!("{} {}", token.token_type, token.token),
            token.base_url.trim_end_matches('/').to_string(),
        );
        *cached = Some((token, Instant::now()));
        Ok(out)
    }

    /// Uploads one input file to fal's CDN, streaming it from storage; returns its URL.
    /// The stream cannot be replayed, so `open` is called again for each attempt.
    pub async fn upload<F, Fut>(
        &self,
        name: &str,
        content_type: &str,
        open: F,
        cancel: &CancellationToken,
    ) -> Result<String, GenerateError>
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = Result<(ByteStream, Option<u64>), GenerateError>>,
    {
        let (auth, base) = self.upload_token(cancel).await?;
        let url = format!("{base}/files/upload");
        let response = self
            .http
            .send_fresh(Provider::Fal, cancel, || {
                let (url, auth, open) = (&url, &auth, &open);
                async move {
                    let (stream, size) = open().await?;
                    let body = reqwest::Body::wrap_stream(stream.map_err(std::io::Error::other));
                    let mut request = self
                        .http
                        .client()
                        .post(url)
                        .header("Authorization", auth)
                        .header("Content-Type", content_type)
                        .header("X-Fal-File-Name", name)
                        .body(body);
                    if let Some(n) = size {
                        request = request.header("Content-Length", n);
                    }
                    Ok(request)
                }
            })
            .await?;
        let up: Uploaded = response
            .json()
            .await
            .map_err(|_| GenerateError::Transient("fal.ai: unreadable upload answer".into()))?;
        Ok(up.access_url)
    }
}
