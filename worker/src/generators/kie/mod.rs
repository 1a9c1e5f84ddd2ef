//! Kie.ai task APIs: the market API (`jobs/createTask`, model + input), the dedicated Veo and
//! Aleph APIs, and Suno (songs and sounds). Every answer is an envelope whose `code` must be 200;
//! tasks are polled until their API's success or failure state. Input files go to Kie's upload
//! host unless our storage URLs are public. Kie has no cancel API.

mod protocol;

use std::{collections::HashMap, sync::Arc, time::Instant};

use boards_shared::{
    config::Secret,
    generators::{
        catalogue::Entry,
        run::{Context, Execute, GenerateError, InputArtifact, Output},
        Provider,
    },
};
use serde_json::{json, Map, Value};
use tokio_util::sync::CancellationToken;

use self::protocol::{Api, State};
use super::{
    http::{file_part, Call, CallError, Http, Key},
    poll::Poll,
};

/// One per worker process, shared by every Kie model.
pub struct Client {
    http: Http,
    key: Key,
    base: String,
    upload: String,
}

fn failed(e: CallError) -> GenerateError {
    e.into_generate(Provider::Kie)
}

impl Client {
    pub fn new(http: Http, key: Option<Secret>, base: &str, upload: &str) -> Self {
        Self {
            http,
            key: Key::new(Provider::Kie, "Bearer", key),
            base: base.trim_end_matches('/').to_string(),
            upload: upload.trim_end_matches('/').to_string(),
        }
    }

    fn auth(&self) -> Result<String, GenerateError> {
        self.key.header()
    }

    async fn submit(
        &self,
        path: &str,
        body: &Value,
        cancel: &CancellationToken,
    ) -> Result<Value, GenerateError> {
        let auth = self.auth()?;
        let url = format!("{}{path}", self.base);
        let answer = self
            .http
            .json(Call::Create, cancel, |c| {
                c.post(&url).header("Authorization", &auth).json(body)
            })
            .await
            .map_err(failed)?;
        protocol::envelope(answer)
    }

    async fn record(
        &self,
        path: &str,
        task: &str,
        cancel: &CancellationToken,
    ) -> Result<Value, GenerateError> {
        let auth = self.auth()?;
        let url = format!("{}{path}", self.base);
        let answer = self
            .http
            .json(Call::Idempotent, cancel, |c| {
                c.get(&url)
                    .query(&[("taskId", task)])
                    .header("Authorization", &auth)
            })
            .await
            .map_err(failed)?;
        Ok(protocol::envelope(answer)?["data"].clone())
    }

    /// Uploads one input file (streamed from storage) to Kie's file host; its URL.
    async fn upload(
        &self,
        ctx: &Context<'_>,
        artifact: &InputArtifact,
    ) -> Result<String, GenerateError> {
        let auth = self.auth()?;
        let url = format!("{}/api/file-stream-upload", self.upload);
        let ext = artifact
            .metadata
            .get("format")
            .and_then(Value::as_str)
            .unwrap_or("bin");
        let response = self
            .http
            .send_fresh(Provider::Kie, &ctx.cancel, || {
                let (url, auth) = (&url, &auth);
                async move {
                    let (stream, size, content_type) = ctx.open(artifact).await?;
                    let name = format!("{}.{ext}", artifact.generation_id);
                    let part = file_part(Provider::Kie, stream, size, name, &content_type)?;
                    let form = reqwest::multipart::Form::new()
                        .part("file", part)
                        .text("uploadPath", "boards/temp");
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
            .map_err(|_| GenerateError::Transient("Kie.ai: unreadable upload answer".into()))?;
        protocol::uploaded_url(&v)
    }
}

pub struct Model {
    entry: Arc<Entry>,
    client: Arc<Client>,
    poll: Poll,
    api: Api,
}

impl Model {
    pub fn new(entry: Arc<Entry>, client: Arc<Client>, poll: Poll) -> Self {
        let api = Api::of(entry.api.as_deref());
        Self {
            entry,
            client,
            poll,
            api,
        }
    }

    /// The submit body of this model's API for `input` (defaults filled in) and input URLs.
    fn body(&self, input: &Map<String, Value>, urls: &HashMap<String, Vec<String>>) -> Value {
        let mut body = self.entry.request_body(input, urls);
        match self.api {
            Api::Market => json!({"model": self.entry.model_for(input), "input": body}),
            Api::Suno => {
                // A song's lyrics are its prompt unless it is instrumental or has none; then
                // the style is.
                let instrumental = input
                    .get("instrumental")
                    .and_then(Value::as_bool)
                    .unwrap_or(false);
                let lyrics = input
                    .get("lyrics")
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                if instrumental || lyrics.trim().is_empty() {
                    let style = input.get("style").cloned().unwrap_or(Value::Null);
                    body.insert("prompt".into(), style);
                }
                Value::Object(body)
            }
            _ => Value::Object(body),
        }
    }
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
        let task = match &ctx.external_job_id {
            Some(id) => {
                ctx.progress
                    .report(5.0, Some("Resuming the Kie.ai task".into()))
                    .await;
                id.clone()
            }
            None => {
                let urls = super::input_urls(ctx, |a| self.client.upload(ctx, a)).await?;
                let body = self.body(&input, &urls);
                let answer = self
                    .client
                    .submit(self.api.submit_path(), &body, &ctx.cancel)
                    .await?;
                // Final, not retried: the task may exist upstream, and a retry would pay twice.
                let task = protocol::task_id(&answer).ok_or_else(|| {
                    GenerateError::Permanent("Kie.ai: the submit answer has no taskId".into())
                })?;
                // Kie cannot cancel a task: a task nobody records is simply left to finish.
                ctx.record.set_external_job_id(&task).await?;
                ctx.progress
                    .report(5.0, Some("Submitted to Kie.ai".into()))
                    .await;
                task
            }
        };
        let started = Instant::now();
        let mut poll = self.poll.start();
        let data = loop {
            poll.wait(&ctx.cancel).await?;
            let data = self
                .client
                .record(self.api.record_path(), &task, &ctx.cancel)
                .await?;
            match self.api.state(&data) {
                State::Running => {
                    ctx.progress
                        .report(
                            super::poll::estimate(started.elapsed()),
                            Some("Generating on Kie.ai".into()),
                        )
                        .await
                }
                State::Done => break data,
                State::Failed(why) => {
                    return Err(GenerateError::Permanent(format!("Kie.ai: {why}")))
                }
            }
        };
        let result = self.api.result(&data)?;
        super::outputs(&self.entry, &result, &input)
    }
}
