//! OpenAI: image generations (`api: images`, DALL-E 3) and audio transcriptions
//! (`api: transcriptions`, Whisper). Both answer in one call: there is no upstream job to record
//! or cancel.

use std::{collections::HashMap, sync::Arc};

use boards_shared::{
    config::Secret,
    generators::{
        catalogue::Entry,
        run::{Context, Execute, GenerateError, Output},
        Provider,
    },
};
use serde_json::{json, Map, Value};

use super::http::{file_part, Call, Http, Key};

/// One per worker process, shared by every OpenAI model.
pub struct Client {
    http: Http,
    key: Key,
    base: String,
}

impl Client {
    pub fn new(http: Http, key: Option<Secret>, base: &str) -> Self {
        Self {
            http,
            key: Key::new(Provider::OpenAi, "Bearer", key),
            base: base.trim_end_matches('/').to_string(),
        }
    }

    fn auth(&self) -> Result<String, GenerateError> {
        self.key.header()
    }
}

pub struct Model {
    entry: Arc<Entry>,
    client: Arc<Client>,
}

impl Model {
    pub fn new(entry: Arc<Entry>, client: Arc<Client>) -> Self {
        Self { entry, client }
    }

    async fn images(
        &self,
        input: &Map<String, Value>,
        ctx: &Context<'_>,
    ) -> Result<Vec<Output>, GenerateError> {
        let auth = self.client.auth()?;
        let mut body = self.entry.request_body(input, &HashMap::new());
        body.insert("model".into(), json!(self.entry.model_for(input)));
        let url = format!("{}/images/generations", self.client.base);
        ctx.progress
            .report(10.0, Some("Generating with OpenAI".into()))
            .await;
        let answer = self
            .client
            .http
            .json(Call::Create, &ctx.cancel, |c| {
                c.post(&url).header("Authorization", &auth).json(&body)
            })
            .await
            .map_err(|e| e.into_generate(Provider::OpenAi))?;
        self.images_of(&answer, input)
    }

    /// A multipart call: every artifact input as a file part (streamed from storage, under
    /// its upstream name; list slots as `name[]`), the other fields as text parts.
    async fn multipart(
        &self,
        path: &str,
        input: &Map<String, Value>,
        ctx: &Context<'_>,
    ) -> Result<Value, GenerateError> {
        let auth = self.client.auth()?;
        let slots: Vec<String> = ctx.inputs.keys().cloned().collect();
        let mut fields: Vec<(String, String)> = self
            .entry
            .request_body(input, &HashMap::new())
            .into_iter()
            .filter(|(k, _)| !slots.iter().any(|s| self.upstream_name(s) == *k))
            .map(|(k, v)| (k, v.as_str().map_or_else(|| v.to_string(), str::to_string)))
            .collect();
        fields.push(("model".into(), self.entry.model_for(input).to_string()));
        let url = format!("{}/{path}", self.client.base);
        // The files stream from storage; a retry opens them again.
        let response = self
            .client
            .http
            .send_fresh(Provider::OpenAi, &ctx.cancel, || {
                let (url, auth, fields) = (&url, &auth, &fields);
                async move {
                    let mut form = reqwest::multipart::Form::new();
                    for (slot, artifacts) in &ctx.inputs {
                        let list = self
                            .entry
                            .inputs
                            .get(slot)
                            .and_then(|s| s.get("list"))
                            .and_then(Value::as_bool)
                            .unwrap_or(false);
                        let name = if list || artifacts.len() > 1 {
                            format!("{}[]", self.upstream_name(slot))
                        } else {
                            self.upstream_name(slot)
                        };
                        for artifact in artifacts {
                            let (stream, size, content_type) = ctx.open(artifact).await?;
                            let ext = artifact
                                .metadata
                                .get("format")
                                .and_then(Value::as_str)
                                .unwrap_or("bin");
                            let file = format!("{}.{ext}", artifact.generation_id);
                            let part =
                                file_part(Provider::OpenAi, stream, size, file, &content_type)?;
                            form = form.part(name.clone(), part);
                        }
                    }
                    for (k, v) in fields {
                        form = form.text(k.clone(), v.clone());
                    }
                    Ok(self
                        .client
                        .http
                        .client()
                        .post(url)
                        .header("Authorization", auth)
                        .multipart(form))
                }
            })
            .await?;
        response
            .json::<Value>()
            .await
            .map_err(|_| GenerateError::Transient("OpenAI: unreadable answer".into()))
    }

    fn upstream_name(&self, field: &str) -> String {
        self.entry
            .request
            .rename
            .get(field)
            .cloned()
            .unwrap_or_else(|| field.to_string())
    }

    async fn transcriptions(
        &self,
        input: &Map<String, Value>,
        ctx: &Context<'_>,
    ) -> Result<Vec<Output>, GenerateError> {
        ctx.progress
            .report(10.0, Some("Transcribing with OpenAI".into()))
            .await;
        let answer = self.multipart("audio/transcriptions", input, ctx).await?;
        let path = self.entry.output.text.as_deref().unwrap_or("text");
        let text = boards_shared::generators::catalogue::select(path, &answer)
            .first()
            .and_then(|v| v.as_str())
            .map(str::to_string)
            .ok_or_else(|| GenerateError::Permanent("OpenAI: the answer has no text".into()))?;
        let mut metadata = Map::new();
        metadata.insert("format".into(), json!("plain"));
        metadata.insert("content".into(), json!(text));
        Ok(vec![Output::bytes(
            text.into_bytes(),
            "txt",
            "text/plain",
            metadata,
        )])
    }

    /// The images of an images or edits answer: `data[].url`, else `data[].b64_json`.
    fn images_of(
        &self,
        answer: &Value,
        input: &Map<String, Value>,
    ) -> Result<Vec<Output>, GenerateError> {
        let mut urls = self.entry.output_urls(answer);
        if urls.is_empty() {
            urls = answer["data"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|d| d["b64_json"].as_str())
                .map(|b| format!("data:image/png;base64,{b}"))
                .collect();
        }
        if urls.is_empty() {
            return Err(GenerateError::Permanent(
                "OpenAI: no image was generated".into(),
            ));
        }
        let format = self.entry.output_format(input);
        Ok(urls
            .into_iter()
            .map(|u| Output::url(u, format.clone()))
            .collect())
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
        match self.entry.api.as_deref() {
            Some("transcriptions") => self.transcriptions(&input, ctx).await,
            Some("images") => self.images(&input, ctx).await,
            Some("edits") => {
                ctx.progress
                    .report(10.0, Some("Editing with OpenAI".into()))
                    .await;
                let answer = self.multipart("images/edits", &input, ctx).await?;
                self.images_of(&answer, &input)
            }
            other => Err(GenerateError::Permanent(format!(
                "OpenAI: the `{}` API is not supported",
                other.unwrap_or_default()
            ))),
        }
    }
}
