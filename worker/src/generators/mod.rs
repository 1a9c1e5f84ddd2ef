//! The executable half of the generators: what runs each registered generator in this worker.
//! Built once per process from the registry and the configuration ([`Executors::from_config`]):
//! the local generators (one file each under `local/`) and one adapter per provider (`fal/`,
//! ...), all sharing one HTTP client. The API never links this module.

pub mod fal;
pub mod http;
pub mod kie;
pub mod local;
pub mod openai;
pub mod poll;
pub mod replicate;

use std::{collections::HashMap, sync::Arc, time::Duration};

use boards_shared::{
    generators::{
        catalogue::Entry,
        run::{Context, Execute, GenerateError, InputArtifact, Output},
        Provider, ProviderKeys, Registry, Source,
    },
    Config,
};
use serde_json::{Map, Value};

/// An executor per registered generator name.
#[derive(Default)]
pub struct Executors {
    by_name: HashMap<String, Arc<dyn Execute>>,
}

impl Executors {
    /// Executors for every generator of `registry`. Provider models whose key is missing get
    /// their executor too: it fails with the clear "no API key" message before any call.
    /// Provider calls are exported as spans through `telemetry`.
    pub fn from_config(
        registry: &Registry,
        config: &Config,
        telemetry: boards_shared::telemetry::Telemetry,
    ) -> anyhow::Result<Self> {
        let g = &config.generators;
        let keys = ProviderKeys::from_config(g).map_err(anyhow::Error::msg)?;
        let http = http::Http::new(
            http::Policy {
                max_attempts: g.max_retries.max(1),
                timeout: Duration::from_secs(g.request_timeout_seconds.max(1)),
                ..http::Policy::default()
            },
            telemetry,
        )?;
        let poll = poll::Poll {
            first: Duration::from_millis(g.poll_interval_ms.max(1)),
            max: Duration::from_millis(g.max_poll_interval_ms.max(1)),
        };
        let fal = Arc::new(fal::Client::new(
            http.clone(),
            keys.get(Provider::Fal).cloned(),
            &g.fal_base_url,
            &g.fal_rest_url,
        ));
        let replicate = Arc::new(replicate::Client::new(
            http.clone(),
            keys.get(Provider::Replicate).cloned(),
            &g.replicate_base_url,
        ));
        let openai = Arc::new(openai::Client::new(
            http.clone(),
            keys.get(Provider::OpenAi).cloned(),
            &g.openai_base_url,
        ));
        let kie = Arc::new(kie::Client::new(
            http.clone(),
            keys.get(Provider::Kie).cloned(),
            &g.kie_base_url,
            &g.kie_upload_url,
        ));
        let mut by_name: HashMap<String, Arc<dyn Execute>> = HashMap::new();
        for generator in registry.list(None) {
            let exec: Arc<dyn Execute> = match &generator.source {
                Source::Local(id) => local::executor(id)
                    .ok_or_else(|| anyhow::anyhow!("no executor for local generator `{id}`"))?,
                Source::Custom(exec) => exec.0.clone(),
                Source::Catalogue(entry) => match entry.provider {
                    Provider::Fal => Arc::new(fal::Model::new(entry.clone(), fal.clone(), poll)),
                    Provider::Replicate => Arc::new(replicate::Model::new(
                        entry.clone(),
                        replicate.clone(),
                        poll,
                    )),
                    Provider::OpenAi => Arc::new(openai::Model::new(entry.clone(), openai.clone())),
                    Provider::Kie => Arc::new(kie::Model::new(entry.clone(), kie.clone(), poll)),
                },
            };
            by_name.insert(generator.name.clone(), exec);
        }
        Ok(Self { by_name })
    }

    pub fn get(&self, name: &str) -> Option<&Arc<dyn Execute>> {
        self.by_name.get(name)
    }
}

/// The URLs a provider reads the artifact inputs from, by field: ours when this deployment's
/// storage URLs are public, else what `upload` returns (the provider's file store); the files
/// of one field go up in parallel.
pub async fn input_urls<'a, F, Fut>(
    ctx: &'a Context<'_>,
    upload: F,
) -> Result<HashMap<String, Vec<String>>, GenerateError>
where
    F: Fn(&'a InputArtifact) -> Fut,
    Fut: std::future::Future<Output = Result<String, GenerateError>>,
{
    let mut out = HashMap::new();
    for (field, artifacts) in &ctx.inputs {
        let urls = futures::future::try_join_all(artifacts.iter().map(|a| {
            let public = ctx.public_url(a);
            let upload = &upload;
            async move {
                match public {
                    Some(url) => Ok(url),
                    None => upload(a).await,
                }
            }
        }))
        .await?;
        out.insert(field.clone(), urls);
    }
    Ok(out)
}

/// The outputs of a provider's answer `doc` (the entry's output paths), each to be streamed
/// into storage; none is a failure named after the provider.
pub fn outputs(
    entry: &Entry,
    doc: &Value,
    input: &Map<String, Value>,
) -> Result<Vec<Output>, GenerateError> {
    let urls = entry.output_urls(doc);
    if urls.is_empty() {
        return Err(GenerateError::Permanent(format!(
            "{}: the job finished without an output file",
            entry.provider.label()
        )));
    }
    let format = entry.output_format(input);
    Ok(urls
        .into_iter()
        .map(|u| Output::url(u, format.clone()))
        .collect())
}
