//! Running a generator: the execution context a generator sees (progress, cancellation, its
//! resolved input artifacts, storage) and what it returns.

use std::{collections::HashMap, sync::Arc, time::Duration};

use serde_json::{Map, Value};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::ArtifactKind;
use crate::storage::Storage;

/// Why a run did not produce an artifact. The class decides what happens next: `Invalid` and
/// `Permanent` fail the job at once, `Transient` retries it with backoff, `Cancelled` stops.
#[derive(Debug, thiserror::Error)]
pub enum GenerateError {
    #[error("Invalid input parameters: {0}")]
    Invalid(String),
    #[error("{0}")]
    Permanent(String),
    #[error("{0}")]
    Transient(String),
    #[error("cancelled")]
    Cancelled,
}

/// What a generator made.
#[derive(Clone, Debug)]
pub struct Output {
    pub bytes: Vec<u8>,
    /// File extension of the stored object (`png`, `wav`, `txt`).
    pub extension: String,
    pub content_type: String,
    /// The artifact's `format` and type-specific fields (width/height, duration…, content).
    pub metadata: Map<String, Value>,
}

/// Receives progress reports (percent, 0-100) from a running generator.
#[async_trait::async_trait]
pub trait Progress: Send + Sync {
    async fn report(&self, percent: f64, message: Option<String>);
}

/// Another generation used as an input.
#[derive(Clone, Debug)]
pub struct InputArtifact {
    pub generation_id: Uuid,
    pub kind: ArtifactKind,
    pub storage_key: Option<String>,
    pub storage_url: String,
    /// Its `output_metadata`.
    pub metadata: Value,
}

pub struct Context<'a> {
    pub progress: &'a dyn Progress,
    pub cancel: CancellationToken,
    /// Resolved artifact inputs by field name.
    pub inputs: HashMap<String, Vec<InputArtifact>>,
    pub storage: Arc<dyn Storage>,
}

impl Context<'_> {
    pub fn input(&self, field: &str) -> Option<&InputArtifact> {
        self.inputs.get(field).and_then(|v| v.first())
    }

    /// The bytes of an input artifact, read from storage.
    pub async fn read(&self, artifact: &InputArtifact) -> Result<Vec<u8>, GenerateError> {
        let key = artifact.storage_key.as_deref().ok_or_else(|| {
            GenerateError::Permanent(format!(
                "Input generation {} has no stored artifact this server can read",
                artifact.generation_id
            ))
        })?;
        self.storage.get(key).await.map_err(|e| match e {
            crate::storage::StorageError::NotFound(_) => GenerateError::Permanent(format!(
                "The artifact of input generation {} is missing from storage",
                artifact.generation_id
            )),
            other => GenerateError::Transient(format!("Reading an input artifact failed: {other}")),
        })
    }

    pub fn check_cancelled(&self) -> Result<(), GenerateError> {
        if self.cancel.is_cancelled() {
            Err(GenerateError::Cancelled)
        } else {
            Ok(())
        }
    }
}

/// The executable half of a generator.
#[async_trait::async_trait]
pub trait Execute: Send + Sync {
    async fn generate(&self, input: Value, ctx: &Context<'_>) -> Result<Output, GenerateError>;

    /// Time limit of one run; `None` uses the configured default.
    fn timeout(&self) -> Option<Duration> {
        None
    }
}

/// Deserialises validated input into a generator's input struct.
pub fn parse_input<T: serde::de::DeserializeOwned>(input: Value) -> Result<T, GenerateError> {
    serde_path_to_error::deserialize(input).map_err(|e| {
        let path = e.path().to_string();
        GenerateError::Invalid(if path == "." {
            e.inner().to_string()
        } else {
            format!("{path}: {}", e.inner())
        })
    })
}
