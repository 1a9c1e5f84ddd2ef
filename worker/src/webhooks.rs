//! Sending webhook deliveries (issue 12). Each message of `{p}.webhooks.deliveries` names one
//! delivery row; the worker signs its payload (Standard Webhooks, `boards_shared::webhooks`),
//! POSTs it through the SSRF guard within `webhooks.timeout_ms`, records the attempt, and
//! settles the message:
//!
//! - 2xx: delivered.
//! - 4xx other than 408, 425 and 429, or a URL the guard refuses: failed for good (the receiver
//!   said no; retrying would not change its mind).
//! - anything else (3xx, 5xx, 408/425/429, no connection, timeout): retried after
//!   `webhooks.retry_delays_ms[n]` through the delay queues; out of delays, failed and
//!   dead-lettered.
//!
//! The message is acknowledged only after the attempt is recorded (and the retry published): a
//! worker killed mid-send leaves it to the broker, which hands it to another worker, and the
//! endpoint sees the same `webhook-id` again (at-least-once; receivers drop duplicates by id).
//!
//! Each attempt is a span in the trace of the change that caused the event (the request, or
//! the job that finished the generation; `traceparent` on the delivery row): the POST carries
//! it as `traceparent`, the attempt's log line its trace id, and the span is exported with the
//! others.

use std::{sync::Arc, time::Duration};

use boards_shared::{
    db::models::webhooks::{self as rows, Attempt, DeliveryStatus},
    net::{AllowList, FetchError, FetchPolicy, Fetcher, SystemResolver},
    queue::{ConfirmedPublisher, WEBHOOK_POOL},
    telemetry::{FinishedSpan, KeyValue, SpanKind},
    trace::TraceContext,
    webhooks::{message_id, signature_header, WebhookMessage, TEST_EVENT, WEBHOOK_MESSAGE_VERSION},
    Config,
};
use bytes::Bytes;
use lapin::{
    message::Delivery,
    options::{BasicAckOptions, BasicNackOptions},
};
use slog::{info, warn};

use crate::env::WorkerEnv;

/// Deliveries sent at once by one worker (they mostly wait on the network).
pub const CONCURRENCY: u16 = 16;

/// The SSRF-guarded client of webhook endpoints: `webhooks.allowed_hosts` may be private, no
/// redirects, `webhooks.timeout_ms` per attempt.
pub fn client(config: &Config) -> anyhow::Result<Fetcher> {
    let allow = AllowList::parse(&config.webhooks.allowed_hosts)
        .map_err(|e| anyhow::anyhow!("webhooks.allowed_hosts: {e}"))?;
    let timeout = Duration::from_millis(config.webhooks.timeout_ms.max(1));
    Ok(Fetcher::new(
        FetchPolicy {
            allow,
            max_redirects: 0,
            connect_timeout: timeout.min(Duration::from_secs(10)),
            total_timeout: timeout,
            max_bytes: 1024,
        },
        Arc::new(SystemResolver),
    ))
}

/// What one attempt came to, before it is recorded.
#[derive(Debug, PartialEq)]
enum Outcome {
    Delivered(u16),
    /// The endpoint refused for good.
    Refused {
        code: Option<u16>,
        error: String,
    },
    /// Worth another try.
    Transient {
        code: Option<u16>,
        error: String,
    },
}

fn classify(result: Result<boards_shared::net::Posted, FetchError>) -> Outcome {
    match result {
        Ok(p) if (200..300).contains(&p.status) => Outcome::Delivered(p.status),
        Ok(p) => {
            let mut error = format!("HTTP {}", p.status);
            // The receiver's words, as text the database can keep (no NUL, no control
            // characters: PostgreSQL refuses NUL, and the record is shown to people).
            let excerpt: String = p
                .body
                .chars()
                .map(|c| if c.is_control() { ' ' } else { c })
                .take(200)
                .collect();
            let excerpt = excerpt.trim();
            if !excerpt.is_empty() {
                error.push_str(": ");
                error.push_str(excerpt);
            }
            let code = Some(p.status);
            if (400..500).contains(&p.status) && !matches!(p.status, 408 | 425 | 429) {
                Outcome::Refused { code, error }
            } else {
                Outcome::Transient { code, error }
            }
        }
        Err(FetchError::NotAllowed(reason)) => Outcome::Refused {
            code: None,
            error: format!("URL not allowed: {reason}"),
        },
        Err(FetchError::Timeout) => Outcome::Transient {
            code: None,
            error: "timed out".into(),
        },
        // Network details stay out of the owner's record (they may name internal addresses);
        // the worker logs them.
        Err(_) => Outcome::Transient {
            code: None,
            error: "could not connect to the endpoint".into(),
        },
    }
}

/// Sends one delivery and settles its message.
pub async fn handle(env: Arc<WorkerEnv>, delivery: Delivery, publish: Arc<ConfirmedPublisher>) {
    let topology = &env.webhook_topology;
    let message = match serde_json::from_slice::<WebhookMessage>(&delivery.data) {
        Ok(m) if m.v == WEBHOOK_MESSAGE_VERSION => m,
        other => {
            warn!(env.logger, "unreadable webhook message; dead-lettering";
                "error" => match other { Err(e) => e.to_string(), Ok(m) => format!("version {}", m.v) });
            let _ = publish
                .publish_bytes("", &topology.dead_queue(WEBHOOK_POOL), &delivery.data)
                .await;
            let _ = delivery.ack(BasicAckOptions::default()).await;
            return;
        }
    };
    match send(&env, &message, &publish).await {
        Ok(()) => {
            let _ = delivery.ack(BasicAckOptions::default()).await;
        }
        Err(e) => {
            // The database or the broker failed us: the broker hands the message out again.
            warn!(env.logger, "webhook delivery not settled; it will be redelivered";
                "delivery_id" => %message.delivery_id, "error" => format!("{e:#}"));
            tokio::time::sleep(Duration::from_secs(2)).await;
            let _ = delivery
                .nack(BasicNackOptions {
                    requeue: true,
                    multiple: false,
                })
                .await;
        }
    }
}

/// One attempt, recorded; a retry or the dead-letter queue when it calls for one. `Err` when
/// the message must be redelivered instead of acknowledged.
async fn send(
    env: &WorkerEnv,
    message: &WebhookMessage,
    publish: &ConfirmedPublisher,
) -> anyhow::Result<()> {
    let topology = &env.webhook_topology;
    let id = message.delivery_id;
    let found = {
        let mut conn = env.pool.get().await?;
        rows::find_delivery(&mut conn, id).await?
    };
    let Some((row, webhook)) = found else {
        // Its webhook was deleted since.
        return Ok(());
    };
    if row.state() != DeliveryStatus::Pending {
        // Settled already (a duplicate message, or a retry overtaken by a resend).
        return Ok(());
    }
    // The attempt's span: a child of the change's trace (a new trace when it ran in none).
    let parent = row
        .traceparent
        .as_deref()
        .or(message.traceparent.as_deref())
        .and_then(TraceContext::parse);
    let span = parent.map_or_else(TraceContext::root, |p| p.child());
    let started = std::time::SystemTime::now();
    let disabled = !webhook.enabled && row.event_type != TEST_EVENT;
    let outcome = if disabled {
        Outcome::Refused {
            code: None,
            error: "the webhook is disabled".into(),
        }
    } else {
        let body = Bytes::from(serde_json::to_vec(&row.payload)?);
        let msg_id = message_id(row.id);
        let now = chrono::Utc::now();
        let timestamp = now.timestamp();
        let signature = signature_header(&webhook.signing_keys(now), &msg_id, timestamp, &body);
        let mut headers = vec![
            ("webhook-id", msg_id),
            ("webhook-timestamp", timestamp.to_string()),
            ("webhook-signature", signature),
        ];
        headers.push(("traceparent", span.header()));
        let result = env.webhook_client.post(&webhook.url, &headers, body).await;
        if let Err(e) = &result {
            if let Some(detail) = e.detail() {
                info!(env.logger, "webhook endpoint unreachable"; "delivery_id" => %id,
                    "webhook_id" => %webhook.id, "detail" => detail);
            }
        }
        classify(result)
    };
    let retries = topology.retry_delays_ms.len();
    let attempt_no = message.attempt as usize;
    let (record, next) = match outcome {
        Outcome::Delivered(code) => (
            Attempt {
                status: DeliveryStatus::Delivered,
                status_code: Some(i32::from(code)),
                error: None,
            },
            Next::Done,
        ),
        Outcome::Refused { code, error } => (
            Attempt {
                status: DeliveryStatus::Failed,
                status_code: code.map(i32::from),
                error: Some(error),
            },
            Next::Done,
        ),
        Outcome::Transient { code, error } if attempt_no <= retries => (
            Attempt {
                status: DeliveryStatus::Pending,
                status_code: code.map(i32::from),
                error: Some(error),
            },
            Next::Retry,
        ),
        Outcome::Transient { code, error } => (
            Attempt {
                status: DeliveryStatus::Failed,
                status_code: code.map(i32::from),
                error: Some(format!("{error} (gave up after {attempt_no} attempts)")),
            },
            Next::Dead,
        ),
    };
    // A span for each POST (none when the webhook was disabled and nothing was sent).
    if !disabled {
        env.telemetry.record(FinishedSpan {
            name: format!("webhook {}", row.event_type).into(),
            kind: SpanKind::Client,
            trace: span,
            parent,
            start: started,
            end: std::time::SystemTime::now(),
            attributes: [
                KeyValue::new("delivery_id", id.to_string()),
                KeyValue::new("webhook_id", webhook.id.to_string()),
                KeyValue::new("attempt", i64::from(message.attempt)),
                KeyValue::new("status", record.status.as_str()),
            ]
            .into_iter()
            .chain(
                record
                    .status_code
                    .map(|c| KeyValue::new("http.response.status_code", i64::from(c))),
            )
            .collect(),
            error: record.error.clone(),
        });
    }
    let recorded = {
        let mut conn = env.pool.get().await?;
        rows::record_attempt(&mut conn, id, &record).await?
    };
    if !recorded {
        // Settled by another attempt meanwhile.
        return Ok(());
    }
    let outcome = match (&next, record.status) {
        (_, DeliveryStatus::Delivered) => "delivered",
        (Next::Retry, _) => "retry",
        _ => "failed",
    };
    env.metrics
        .webhook_attempts
        .with_label_values(&[outcome])
        .inc();
    info!(env.logger, "webhook attempt"; "delivery_id" => %id, "webhook_id" => %webhook.id,
        "event_type" => &row.event_type, "attempt" => message.attempt,
        "status" => record.status.as_str(), "status_code" => record.status_code,
        "error" => record.error.as_deref().unwrap_or(""), "trace_id" => span.trace_id_hex());
    match next {
        Next::Done => Ok(()),
        Next::Retry => {
            let retry = WebhookMessage {
                attempt: message.attempt + 1,
                ..message.clone()
            };
            let queue = topology.retry_queue(WEBHOOK_POOL, attempt_no);
            publish.publish_webhook("", &queue, &retry).await
        }
        Next::Dead => {
            publish
                .publish_webhook("", &topology.dead_queue(WEBHOOK_POOL), message)
                .await
        }
    }
}

enum Next {
    Done,
    Retry,
    Dead,
}

#[cfg(test)]
mod tests {
    use boards_shared::net::Posted;

    use super::*;

    fn status(code: u16) -> Outcome {
        classify(Ok(Posted {
            status: code,
            body: "nope".into(),
        }))
    }

    #[test]
    fn answers_are_delivered_refused_or_retried() {
        assert_eq!(status(204), Outcome::Delivered(204));
        assert!(matches!(
            status(400),
            Outcome::Refused {
                code: Some(400),
                ..
            }
        ));
        assert!(matches!(status(410), Outcome::Refused { .. }));
        for code in [301, 408, 425, 429, 500, 503] {
            assert!(matches!(status(code), Outcome::Transient { .. }), "{code}");
        }
        let Outcome::Refused { error, .. } = status(404) else {
            panic!()
        };
        assert_eq!(error, "HTTP 404: nope");
        let Outcome::Transient { error, .. } = classify(Ok(Posted {
            status: 500,
            body: "bad\u{0}\r\nthing".into(),
        })) else {
            panic!()
        };
        assert_eq!(error, "HTTP 500: bad   thing");
        assert!(matches!(
            classify(Err(FetchError::NotAllowed("loopback".into()))),
            Outcome::Refused { .. }
        ));
        assert!(matches!(
            classify(Err(FetchError::Network("10.0.0.1 refused".into()))),
            Outcome::Transient { ref error, .. } if !error.contains("10.0.0.1")
        ));
        assert!(matches!(
            classify(Err(FetchError::Timeout)),
            Outcome::Transient { .. }
        ));
    }
}
