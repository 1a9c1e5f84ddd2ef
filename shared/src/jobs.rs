//! Job messages: the versioned envelope written to the outbox and published to RabbitMQ. It
//! carries ids, never a copy of the generation row (the worker reads the row).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::trace::Origin;

/// Version of [`JobMessage`]; consumers refuse versions they do not know.
pub const JOB_MESSAGE_VERSION: u32 = 1;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct JobMessage {
    /// Envelope version ([`JOB_MESSAGE_VERSION`]).
    pub v: u32,
    pub generation_id: Uuid,
    /// Generator name, used to route the message to its worker pool.
    pub generator: String,
    /// 1 for the first delivery; incremented by retries.
    pub attempt: u32,
    /// The request that created the job, for tracing across processes.
    pub request_id: Option<String>,
    /// The W3C `traceparent` of the request that created the job (the worker continues it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub traceparent: Option<String>,
    pub enqueued_at: DateTime<Utc>,
}

impl JobMessage {
    pub fn new(generation_id: Uuid, generator: &str, origin: &Origin) -> Self {
        Self {
            v: JOB_MESSAGE_VERSION,
            generation_id,
            generator: generator.to_string(),
            attempt: 1,
            request_id: origin.request_id.clone(),
            traceparent: origin.trace.map(|t| t.header()),
            enqueued_at: Utc::now(),
        }
    }
}
