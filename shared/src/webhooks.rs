//! Webhooks (issue 12): the event types an endpoint can ask for, the queue message of one
//! delivery, and signing by the Standard Webhooks spec (<https://www.standardwebhooks.com>):
//!
//! - `webhook-id`: `msg_<delivery id>`, the same on every attempt and on a resend;
//! - `webhook-timestamp`: seconds since the epoch when the attempt was signed;
//! - `webhook-signature`: `v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">`, one per
//!   active key, space-separated (the previous key signs too for a while after a rotation).
//!
//! Secrets are 32 random bytes, shown to the owner as `whsec_<base64>`.

use base64::{engine::general_purpose::STANDARD, Engine as _};
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use uuid::Uuid;

/// Version of [`WebhookMessage`]; consumers refuse versions they do not know.
pub const WEBHOOK_MESSAGE_VERSION: u32 = 1;

/// The queue message of one delivery attempt: ids only (the worker reads the row).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WebhookMessage {
    pub v: u32,
    pub delivery_id: Uuid,
    /// 1 for the first attempt; incremented by retries.
    pub attempt: u32,
    /// W3C trace context of the change that caused the event, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub traceparent: Option<String>,
}

impl WebhookMessage {
    pub fn first(delivery_id: Uuid) -> Self {
        Self {
            v: WEBHOOK_MESSAGE_VERSION,
            delivery_id,
            attempt: 1,
            traceparent: None,
        }
    }
}

/// What an endpoint can subscribe to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EventType {
    GenerationCreated,
    GenerationCompleted,
    GenerationFailed,
    GenerationCancelled,
}

impl EventType {
    pub const ALL: [EventType; 4] = [
        Self::GenerationCreated,
        Self::GenerationCompleted,
        Self::GenerationFailed,
        Self::GenerationCancelled,
    ];

    /// The name on the wire (`type` in the payload) and in `eventTypes`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::GenerationCreated => "generation.created",
            Self::GenerationCompleted => "generation.completed",
            Self::GenerationFailed => "generation.failed",
            Self::GenerationCancelled => "generation.cancelled",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|e| e.as_str() == s)
    }
}

/// The type of the event `sendTestWebhook` sends (whatever the endpoint subscribed to).
pub const TEST_EVENT: &str = "webhook.test";

/// A fresh signing key (base64 of 32 random bytes).
pub fn new_secret() -> String {
    let mut key = [0u8; 32];
    key[..16].copy_from_slice(Uuid::new_v4().as_bytes());
    key[16..].copy_from_slice(Uuid::new_v4().as_bytes());
    STANDARD.encode(key)
}

/// How a key is shown to its owner.
pub fn display_secret(key: &str) -> String {
    format!("whsec_{key}")
}

/// The `webhook-id` of a delivery.
pub fn message_id(delivery: Uuid) -> String {
    format!("msg_{}", delivery.simple())
}

/// `v1,<signature>` of one attempt with one key (the key as stored: base64, no prefix).
pub fn sign(key: &str, message_id: &str, timestamp: i64, body: &[u8]) -> Option<String> {
    let key = STANDARD.decode(key.trim_start_matches("whsec_")).ok()?;
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).ok()?;
    mac.update(message_id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    Some(format!(
        "v1,{}",
        STANDARD.encode(mac.finalize().into_bytes())
    ))
}

/// The `webhook-signature` header: one signature per key, space-separated.
pub fn signature_header(keys: &[&str], message_id: &str, timestamp: i64, body: &[u8]) -> String {
    keys.iter()
        .filter_map(|k| sign(k, message_id, timestamp, body))
        .collect::<Vec<_>>()
        .join(" ")
}

/// What a receiver checks (for tests and as the reference for integrators): one of the
/// signatures in `header` is `secret`'s (with or without `whsec_`), and the timestamp is
/// within `tolerance_seconds` of `now`.
pub fn verify(
    secret: &str,
    message_id: &str,
    timestamp: i64,
    body: &[u8],
    header: &str,
    now: i64,
    tolerance_seconds: i64,
) -> bool {
    if (now - timestamp).abs() > tolerance_seconds {
        return false;
    }
    let Some(expected) = sign(secret, message_id, timestamp, body) else {
        return false;
    };
    header.split(' ').any(|candidate| {
        subtle::ConstantTimeEq::ct_eq(candidate.as_bytes(), expected.as_bytes()).into()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_match_the_standard_webhooks_reference_vector() {
        // From the Standard Webhooks reference libraries' tests.
        let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
        let id = "msg_p5jXN8AQM9LWM0D4loKWxJek";
        let timestamp = 1_614_265_330;
        let body = br#"{"test": 2432232314}"#;
        assert_eq!(
            sign(secret, id, timestamp, body).unwrap(),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
        let header = format!("v1,bm9wZQ== {}", sign(secret, id, timestamp, body).unwrap());
        assert!(verify(
            secret,
            id,
            timestamp,
            body,
            &header,
            timestamp + 10,
            300
        ));
        assert!(!verify(
            secret, id, timestamp, b"{}", &header, timestamp, 300
        ));
        assert!(!verify(
            secret,
            id,
            timestamp,
            body,
            &header,
            timestamp + 301,
            300
        ));
    }

    #[test]
    fn secrets_are_fresh_32_byte_keys_and_event_types_round_trip() {
        let (a, b) = (new_secret(), new_secret());
        assert_ne!(a, b);
        assert_eq!(STANDARD.decode(&a).unwrap().len(), 32);
        assert!(display_secret(&a).starts_with("whsec_"));
        for e in EventType::ALL {
            assert_eq!(EventType::parse(e.as_str()), Some(e));
        }
        assert_eq!(EventType::parse("generation.exploded"), None);
        let id = Uuid::new_v4();
        assert_eq!(message_id(id), format!("msg_{}", id.simple()));
    }
}
