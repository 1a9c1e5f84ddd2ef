//! fal.ai models (the queue API): submit, poll the status with its logs as progress, read the
//! result, cancel. Input artifacts go to fal's CDN (or, when this deployment's storage URLs
//! are public, are passed as URLs). Every model is a catalogue entry; this adapter is the
//! only code.

mod client;
mod protocol;

use std::{sync::Arc, time::Instant};

use boards_shared::generators::{
    catalogue::Entry,
    run::{Context, Execute, GenerateError, InputArtifact, Output},
};
pub use client::Client;
use serde_json::Value;

use super::poll::Poll;

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

    /// Uploads an input to fal's CDN, streamed from storage.
    async fn upload(&self, ctx: &Context<'_>, a: &InputArtifact) -> Result<String, GenerateError> {
        let ext = a
            .metadata
            .get("format")
            .and_then(Value::as_str)
            .unwrap_or("bin");
        let name = format!("{}.{ext}", a.generation_id);
        let (_, _, content_type) = ctx.open(a).await?;
        self.client
            .upload(
                &name,
                &content_type,
                || async {
                    let (s, size, _) = ctx.open(a).await?;
                    Ok((s, size))
                },
                &ctx.cancel,
            )
            .await
    }
}

#[async_trait::async_trait]
impl Execute for Model {
    async fn generate(
        &self,
        input: Value,
        ctx: &Context<'_>,
    ) -> Result<Vec<Output>, GenerateError> {
        self.client.key()?;
        let endpoint = self.entry.model.as_str();
        let input = self.entry.with_defaults(&input);
        let id = match &ctx.external_job_id {
            Some(id) => {
                ctx.progress
                    .report(5.0, Some("Resuming the fal.ai request".into()))
                    .await;
                id.clone()
            }
            None => {
                let urls = super::input_urls(ctx, |a| self.upload(ctx, a)).await?;
                let body = self.entry.request_body(&input, &urls);
                let id = self.client.submit(endpoint, &body, &ctx.cancel).await?;
                if let Err(e) = ctx.record.set_external_job_id(&id).await {
                    // Nobody will poll this request: stop it rather than pay for it.
                    let _ = self.client.cancel(endpoint, &id).await;
                    return Err(e);
                }
                ctx.progress
                    .report(5.0, Some("Submitted to fal.ai".into()))
                    .await;
                id
            }
        };
        let started = Instant::now();
        let mut logs_seen = 0;
        let mut poll = self.poll.start();
        loop {
            poll.wait(&ctx.cancel).await?;
            let status = self.client.status(endpoint, &id, &ctx.cancel).await?;
            let logs = status.logs.unwrap_or_default();
            let new: Vec<&str> = logs
                .iter()
                .skip(logs_seen)
                .map(|l| l.message.as_str())
                .filter(|m| !m.is_empty())
                .collect();
            logs_seen = logs.len().max(logs_seen);
            match status.status.as_str() {
                "IN_QUEUE" => {
                    let at = status
                        .queue_position
                        .map(|p| format!("In the fal.ai queue (position {p})"))
                        .unwrap_or_else(|| "In the fal.ai queue".into());
                    ctx.progress.report(5.0, Some(at)).await;
                }
                "IN_PROGRESS" => {
                    let message = (!new.is_empty()).then(|| new.join(" | "));
                    ctx.progress
                        .report(super::poll::estimate(started.elapsed()), message)
                        .await;
                }
                "COMPLETED" => {
                    if let Some(e) = status.error.filter(|e| !e.is_empty()) {
                        return Err(GenerateError::Permanent(format!("fal.ai: {e}")));
                    }
                    break;
                }
                other => {
                    return Err(GenerateError::Permanent(format!(
                        "fal.ai: unexpected request status {other}"
                    )))
                }
            }
        }
        let result = self.client.result(endpoint, &id, &ctx.cancel).await?;
        super::outputs(&self.entry, &result, &input)
    }

    async fn cancel(&self, external_id: &str) -> Result<(), GenerateError> {
        self.client.cancel(&self.entry.model, external_id).await
    }
}
