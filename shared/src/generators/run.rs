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

/// Where an output's bytes are.
pub enum Body {
    /// Made here, in memory.
    Bytes(Vec<u8>),
    /// At a provider: an `http(s)` URL the worker streams into storage (never held whole in
    /// memory, size-capped, its type read from the bytes), or a `data:` URI.
    Url(String),
}

/// What a generator made: one artifact. A run returns one or more (several = batch rows).
pub struct Output {
    pub body: Body,
    /// File extension of the stored object (`png`, `wav`, `txt`); empty = from the bytes.
    pub extension: String,
    /// Empty = from the bytes.
    pub content_type: String,
    /// The artifact's `format` and type-specific fields (width/height, duration…, content);
    /// for URL outputs the worker adds what it reads from the bytes.
    pub metadata: Map<String, Value>,
    /// Memory reserved for making the artifact, kept until it is stored (the bytes are still
    /// held until then).
    pub memory: Option<MemoryReservation>,
}

impl Output {
    /// Bytes made here, of a known type.
    pub fn bytes(
        bytes: Vec<u8>,
        extension: &str,
        content_type: &str,
        metadata: Map<String, Value>,
    ) -> Self {
        Self {
            body: Body::Bytes(bytes),
            extension: extension.into(),
            content_type: content_type.into(),
            metadata,
            memory: None,
        }
    }

    /// A provider's file, typed from its bytes when stored; `format` (if known) is recorded.
    pub fn url(url: impl Into<String>, format: Option<String>) -> Self {
        let mut metadata = Map::new();
        if let Some(f) = format {
            metadata.insert("format".into(), Value::String(f));
        }
        Self {
            body: Body::Url(url.into()),
            extension: String::new(),
            content_type: String::new(),
            metadata,
            memory: None,
        }
    }
}

/// The job's row as a running generator may change it.
#[async_trait::async_trait]
pub trait JobRecord: Send + Sync {
    /// Records the upstream job id on the row right away (fenced by the run's claim), so a
    /// redelivered or reaped job resumes the same upstream job instead of submitting again.
    /// `Cancelled` when the run no longer holds the job.
    async fn set_external_job_id(&self, id: &str) -> Result<(), GenerateError>;
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
    pub record: &'a dyn JobRecord,
    /// The upstream job id an earlier run of this job recorded (resume it, do not resubmit).
    pub external_job_id: Option<String>,
    /// Cancelled when the job is cancelled, times out or loses its claim; CPU-heavy work on
    /// blocking threads checks it often.
    pub cancel: CancellationToken,
    /// Resolved artifact inputs by field name.
    pub inputs: HashMap<String, Vec<InputArtifact>>,
    pub storage: Arc<dyn Storage>,
    /// The worker's memory budget: reserve before allocating large buffers.
    pub memory: Arc<MemoryBudget>,
    /// Largest image (pixels) decoded or produced.
    pub max_image_pixels: u64,
    /// Largest artifact read or stored, in bytes.
    pub max_artifact_bytes: u64,
}

/// Memory shared by the jobs of one worker, in MiB permits: a job reserves what its large
/// buffers will need before it allocates them and waits while others hold the rest, so
/// concurrent jobs never add up past the budget.
pub struct MemoryBudget {
    permits: Arc<tokio::sync::Semaphore>,
    total_mib: u32,
}

/// Memory reserved by a job; returned when dropped. Owned, so it can move into the blocking
/// closure that uses the memory: work that outlives its job (a timed-out future is dropped,
/// its blocking thread is not) keeps its share until it really stops.
pub struct MemoryReservation {
    _permit: tokio::sync::OwnedSemaphorePermit,
}

const MIB: u64 = 1024 * 1024;

impl MemoryBudget {
    pub fn new(total_mib: u32) -> Self {
        Self {
            permits: Arc::new(tokio::sync::Semaphore::new(total_mib as usize)),
            total_mib,
        }
    }

    /// MiB not reserved right now.
    pub fn available_mib(&self) -> usize {
        self.permits.available_permits()
    }

    /// Reserves `bytes` (rounded up to MiB), waiting for other jobs to return theirs; a job
    /// that needs more than the whole budget fails at once, and a cancelled one stops waiting.
    pub async fn reserve(
        &self,
        bytes: u64,
        cancel: &CancellationToken,
    ) -> Result<MemoryReservation, GenerateError> {
        let mib = bytes.div_ceil(MIB).max(1);
        if mib > u64::from(self.total_mib) {
            return Err(GenerateError::Invalid(format!(
                "this job needs about {mib} MiB of memory, more than the worker's budget of {} MiB",
                self.total_mib
            )));
        }
        tokio::select! {
            permit = self.permits.clone().acquire_many_owned(mib as u32) => match permit {
                Ok(p) => Ok(MemoryReservation { _permit: p }),
                Err(_) => Err(GenerateError::Transient("the worker is shutting down".into())),
            },
            _ = cancel.cancelled() => Err(GenerateError::Cancelled),
        }
    }
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
        crate::storage::read_all(self.storage.as_ref(), key, self.max_artifact_bytes)
            .await
            .map_err(|e| match e {
                crate::storage::StorageError::NotFound(_) => GenerateError::Permanent(format!(
                    "The artifact of input generation {} is missing from storage",
                    artifact.generation_id
                )),
                e @ crate::storage::StorageError::TooLarge { .. } => {
                    GenerateError::Permanent(format!(
                        "The artifact of input generation {} is too large: {e}",
                        artifact.generation_id
                    ))
                }
                other => {
                    GenerateError::Transient(format!("Reading an input artifact failed: {other}"))
                }
            })
    }

    /// A URL a provider can fetch the artifact from by itself, when this deployment's
    /// storage URLs are public and absolute (they never expire); `None` means upload it.
    pub fn public_url(&self, artifact: &InputArtifact) -> Option<String> {
        let url = &artifact.storage_url;
        let absolute = url.starts_with("https://") || url.starts_with("http://");
        (absolute && !self.storage.urls_expire()).then(|| url.clone())
    }

    /// An input artifact's bytes as a stream, with its size and content type when known
    /// (for uploads to a provider's file store without holding the file in memory).
    pub async fn open(
        &self,
        artifact: &InputArtifact,
    ) -> Result<(crate::storage::ByteStream, Option<u64>, String), GenerateError> {
        let key = artifact.storage_key.as_deref().ok_or_else(|| {
            GenerateError::Permanent(format!(
                "Input generation {} has no stored artifact this server can read",
                artifact.generation_id
            ))
        })?;
        let stream = self.storage.get(key, None).await.map_err(|e| match e {
            crate::storage::StorageError::NotFound(_) => GenerateError::Permanent(format!(
                "The artifact of input generation {} is missing from storage",
                artifact.generation_id
            )),
            other => GenerateError::Transient(format!("Reading an input artifact failed: {other}")),
        })?;
        let size = artifact.metadata.get("size").and_then(Value::as_u64);
        let content_type = artifact
            .metadata
            .get("content_type")
            .and_then(Value::as_str)
            .map(str::to_string)
            .unwrap_or_else(|| "application/octet-stream".into());
        Ok((stream, size, content_type))
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
    /// Runs the generator; at least one output on success (the first is the job's own
    /// artifact, the others become batch rows).
    async fn generate(&self, input: Value, ctx: &Context<'_>)
        -> Result<Vec<Output>, GenerateError>;

    /// Time limit of one run; `None` uses the configured default.
    fn timeout(&self) -> Option<Duration> {
        None
    }

    /// Stops the upstream job `external_id` (after a user cancel or a timeout); generators
    /// without an upstream have nothing to stop.
    async fn cancel(&self, _external_id: &str) -> Result<(), GenerateError> {
        Ok(())
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
