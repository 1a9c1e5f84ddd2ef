//! The progress document (contract §3.3): what workers publish and the API relays to the
//! Boards client's per-generation stream. One scale: `progress` is a percentage, 0 to 100.
//! Built here, and only here, from a stored row ([`ProgressEvent::snapshot`]).

use bigdecimal::ToPrimitive as _;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use uuid::Uuid;

use crate::db::models::Generation;

/// The SSE payload (contract §3.3 keys, in that order, plus `jobId` for the Boards client).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ProgressEvent {
    pub job_id: Uuid,
    /// `pending`, `processing`, `completed`, `failed` or `cancelled`.
    pub status: String,
    /// Percent complete, 0-100.
    pub progress: f64,
    /// `queued`, `initializing`, `processing` or `finalizing`.
    pub phase: String,
    pub message: Option<String>,
    pub estimated_completion: Option<DateTime<Utc>>,
    pub artifacts: Vec<Value>,
    pub timestamp: DateTime<Utc>,
    #[serde(rename = "jobId")]
    pub job_id_camel: Uuid,
}

impl ProgressEvent {
    pub fn new(
        job_id: Uuid,
        status: &str,
        progress: f64,
        phase: &str,
        message: Option<String>,
    ) -> Self {
        Self {
            job_id,
            status: status.to_string(),
            progress: progress.clamp(0.0, 100.0),
            phase: phase.to_string(),
            message,
            estimated_completion: None,
            artifacts: vec![],
            timestamp: Utc::now(),
            job_id_camel: job_id,
        }
    }

    /// The event that says what a stored row says: its status, progress and, once completed,
    /// its artifact (`{"url", "type", "metadata"}`, the one place that document is built).
    pub fn snapshot(g: &Generation) -> Self {
        let message = match g.status.as_str() {
            "failed" | "cancelled" => g.error_message.clone(),
            "completed" => Some("Completed".into()),
            _ => None,
        };
        let progress = if g.status == "completed" {
            100.0
        } else {
            g.progress.to_f64().unwrap_or(0.0)
        };
        let mut e = Self::new(g.id, &g.status, progress, phase_of(&g.status), message);
        if let (true, Some(url)) = (g.status == "completed", &g.storage_url) {
            e.artifacts =
                vec![json!({"url": url, "type": g.artifact_type, "metadata": g.output_metadata})];
        }
        e
    }

    pub fn is_terminal(&self) -> bool {
        is_terminal(&self.status)
    }
}

pub fn is_terminal(status: &str) -> bool {
    matches!(status, "completed" | "failed" | "cancelled")
}

/// The phase that goes with a stored status (for snapshots).
pub fn phase_of(status: &str) -> &'static str {
    match status {
        "pending" => "queued",
        "processing" => "processing",
        _ => "finalizing",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_carry_both_id_spellings_and_clamp_progress() {
        let id = Uuid::new_v4();
        let e = ProgressEvent::new(id, "processing", 150.0, "processing", None);
        let v = serde_json::to_value(&e).unwrap();
        assert_eq!(v["job_id"], id.to_string());
        assert_eq!(v["jobId"], id.to_string());
        assert_eq!(v["progress"], 100.0);
        let keys: Vec<&String> = v.as_object().unwrap().keys().collect();
        assert_eq!(keys[0], "job_id");
    }
}
