//! Replicate predictions: create (model-scoped, or a pinned version), `Prefer: wait` for a few
//! seconds, then poll until `succeeded`/`failed`/`canceled`; cancel. File inputs are passed as
//! our URLs when they are public, else uploaded through Replicate's files API.

use std::{sync::Arc, time::Instant};

use boards_shared::{
    config::Secret,
    generators::{
        catalogue::Entry,
        run::{Context, Execute, GenerateError, Output},
        Provider,
    },
};
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;

use super::{
    http::{file_part, Call, CallError, Http, Key},
    poll::Poll,
};

/// One per worker process, shared by every Replicate model.
pub struct Client {
    http: Http,
    key: Key,
    base: String,
}

fn failed(e: CallError) -> GenerateError {
    e.into_generate(Provider::Replicate)
}

impl Client {
    pub fn new(http: Http, key: Option<Secret>, base: &str) -> Self {
        Self {
            http,
            key: Key::new(Provider::Replicate, "Bearer", key),
            base: base.trim_end_matches('/').to_string(),
        }
    }

    fn auth(&self) -> Result<String, GenerateError> {
        self.key.header()
    }

    async fn create(
        &self,
        entry: &Entry,
        input: serde_json::Map<String, Value>,
        cancel: &CancellationToken,
    ) -> Result<Value, GenerateError> {
        let auth = self.auth()?;
        let (url, body) = match &entry.version {
            Some(version) => (
                format!("{}/predictions", self.base),
                json!({"version": version, "input": input}),
            ),
            None => (
                format!("{}/models/{}/predictions", self.base, entry.model),
                json!({"input": input}),
            ),
        };
        self.http
            .json(Call::Create, cancel, |c| {
                c.post(&url)
                    .header("Authorization", &auth)
                    .header("Prefer", "wait=5")
                    .json(&body)
            })
            .await
            .map_err(failed)
    }

    async fn get(&self, id: &str, cancel: &CancellationToken) -> Result<Value, GenerateError> {
        let auth = self.auth()?;
        let url = format!("{}/predictions/{id}", self.base);
        self.http
            .json(Call::Idempotent, cancel, |c| {
                c.get(&url).header("Authorization", &auth)
            })
            .await
            .map_err(failed)
    }

    pub async fn cancel(&self, id: &str) -> Result<(), GenerateError> {
        let auth = self.auth()?;
        let url = format!("{}/predictions/{id}/cancel", self.base);
        let never = CancellationToken::new();
        self.http
            .send(Call::Idempotent, &never, |c| {
                c.post(&url).header("Authorization", &auth)
            })
            .await
            .map(|_| ())
            .map_err(failed)
    }

    /// Uploads one input file (streamed from storage) through the files API; its URL.
    async fn upload(
        &self,
        ctx: &Context<'_>,
        artifact: &boards_shared::generators::run::InputArtifact,
    ) -> Result<String, GenerateError> {
        let auth = self.auth()?;
        let url = format!("{}/files", self.base);
        let ext = artifact
            .metadata
            .get("format")
            .and_then(Value::as_str)
            .unwrap_or("bin");
        let response = self
            .http
            .send_fresh(Provider::Replicate, &ctx.cancel, || {
                let (url, auth) = (&url, &auth);
                async move {
                    let (stream, size, content_type) = ctx.open(artifact).await?;
                    let name = format!("{}.{ext}", artifact.generation_id);
                    let part = file_part(Provider::Replicate, stream, size, name, &content_type)?;
                    let form = reqwest::multipart::Form::new().part("content", part);
                    Ok(self
                        .http
                        .client()
                        .post(url)
                        .header("Authorization", auth)
                        .multipart(form))
                }
            })
            .await?;
        let v: Value = response
            .json()
            .await
            .map_err(|_| GenerateError::Transient("Replicate: unreadable upload answer".into()))?;
        v["urls"]["get"]
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| {
                GenerateError::Transient("Replicate: the upload answer has no URL".into())
            })
    }
}

pub struct Model {
    entry: Arc<Entry>,
    client: Arc<Client>,
    poll: Poll,
}

impl Model {
    pub fn new(entry: Arc<Entry>, client: Arc<Client>, poll: Poll) -> Self {
        Self {
            entry,
            client,
            poll,
        }
    }
}

/// The states a prediction ends in.
fn terminal(status: &str) -> bool {
    matches!(status, "succeeded" | "failed" | "canceled")
}

#[async_trait::async_trait]
impl Execute for Model {
    async fn generate(
        &self,
        input: Value,
        ctx: &Context<'_>,
    ) -> Result<Vec<Output>, GenerateError> {
        self.client.auth()?;
        let input = self.entry.with_defaults(&input);
        let mut prediction = match &ctx.external_job_id {
            Some(id) => {
                ctx.progress
                    .report(5.0, Some("Resuming the Replicate prediction".into()))
                    .await;
                self.client.get(id, &ctx.cancel).await?
            }
            None => {
                let urls = super::input_urls(ctx, |a| self.client.upload(ctx, a)).await?;
                let body = self.entry.request_body(&input, &urls);
                let created = self.client.create(&self.entry, body, &ctx.cancel).await?;
                let id = created["id"].as_str().map(str::to_string).ok_or_else(|| {
                    GenerateError::Transient("Replicate: the answer has no prediction id".into())
                })?;
                if let Err(e) = ctx.record.set_external_job_id(&id).await {
                    let _ = self.client.cancel(&id).await;
                    return Err(e);
                }
                created
            }
        };
        let id = prediction["id"].as_str().unwrap_or_default().to_string();
        let started = Instant::now();
        let mut poll = self.poll.start();
        while !terminal(prediction["status"].as_str().unwrap_or_default()) {
            poll.wait(&ctx.cancel).await?;
            prediction = self.client.get(&id, &ctx.cancel).await?;
            let status = prediction["status"].as_str().unwrap_or_default();
            let message = match status {
                "starting" => "Starting on Replicate".to_string(),
                _ => prediction["logs"]
                    .as_str()
                    .and_then(|l| l.lines().rev().find(|l| !l.trim().is_empty()))
                    .map_or_else(|| "Running on Replicate".to_string(), str::to_string),
            };
            ctx.progress
                .report(super::poll::estimate(started.elapsed()), Some(message))
                .await;
        }
        match prediction["status"].as_str().unwrap_or_default() {
            "succeeded" => {}
            "canceled" => {
                return Err(GenerateError::Permanent(
                    "Replicate: the prediction was cancelled upstream".into(),
                ))
            }
            _ => {
                let error = super::http::message_in(&prediction)
                    .unwrap_or_else(|| "the prediction failed".into());
                return Err(GenerateError::Permanent(format!("Replicate: {error}")));
            }
        }
        super::outputs(&self.entry, &prediction, &input)
    }

    async fn cancel(&self, external_id: &str) -> Result<(), GenerateError> {
        self.client.cancel(external_id).await
    }
}
