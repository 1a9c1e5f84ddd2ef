//! The HTTP client every provider adapter shares: one connection pool per worker process, a
//! deadline per call, and retries on transport errors and 408/409/429/5xx with exponential
//! backoff that honours `Retry-After`. Calls that create something upstream (a submit) are
//! retried only when the request surely did not land (connection refused, or an answer that
//! says it was not taken: 408/409/429/502/503/504).
//!
//! Every attempt made for a job is a span of the job's trace: its `traceparent` goes to the
//! provider, and with export on, the span (`<METHOD> <host>`, until the answer's headers) goes
//! to the collector.

use std::time::{Duration, SystemTime};

use boards_shared::{
    generators::{run::GenerateError, Provider},
    telemetry::{FinishedSpan, KeyValue, SpanKind, Telemetry},
};
use reqwest::{RequestBuilder, Response, StatusCode};
use serde_json::Value;
use tokio_util::sync::CancellationToken;

/// Retry policy and deadline of provider calls.
#[derive(Clone, Debug)]
pub struct Policy {
    pub max_attempts: u32,
    pub first_backoff: Duration,
    pub max_backoff: Duration,
    pub timeout: Duration,
}

impl Default for Policy {
    fn default() -> Self {
        Self {
            max_attempts: 5,
            first_backoff: Duration::from_millis(250),
            max_backoff: Duration::from_secs(30),
            timeout: Duration::from_secs(120),
        }
    }
}

/// Whether repeating a call can do harm.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Call {
    /// Reads, cancels, uploads of content-addressed files: repeat on any transient failure.
    Idempotent,
    /// Creates a paid job upstream: repeat only when it surely did not land.
    Create,
}

/// Why a call failed.
#[derive(Debug)]
pub enum CallError {
    /// No usable answer (connection, TLS, deadline), after the retries.
    Transport(String),
    /// A non-2xx answer that is not retried (or still failing after the retries).
    Status {
        status: u16,
        detail: String,
    },
    Cancelled,
}

impl CallError {
    /// The error users see, named after the provider: a 4xx is the request's fault (final),
    /// 5xx and transport failures are retried as a job.
    pub fn into_generate(self, provider: Provider) -> GenerateError {
        let label = provider.label();
        match self {
            Self::Cancelled => GenerateError::Cancelled,
            Self::Transport(e) => GenerateError::Transient(format!("{label}: {e}")),
            Self::Status { status, detail } if status == 401 || status == 403 => {
                GenerateError::Permanent(format!(
                    "{label}: the API key was refused (HTTP {status}): {detail}"
                ))
            }
            Self::Status { status, detail } if retryable(status) => {
                GenerateError::Transient(format!("{label}: HTTP {status}: {detail}"))
            }
            Self::Status { detail, .. } => GenerateError::Permanent(format!("{label}: {detail}")),
        }
    }
}

fn retryable(status: u16) -> bool {
    matches!(status, 408 | 409 | 429) || status >= 500
}

/// For creating calls: the answer says the request was not taken.
fn not_taken(status: u16) -> bool {
    matches!(status, 408 | 409 | 429 | 502 | 503 | 504)
}

/// The shared client.
#[derive(Clone)]
pub struct Http {
    client: reqwest::Client,
    pub policy: Policy,
    telemetry: Telemetry,
}

impl Http {
    pub fn new(policy: Policy, telemetry: Telemetry) -> anyhow::Result<Self> {
        let client = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .timeout(policy.timeout)
            .pool_max_idle_per_host(256)
            .user_agent(concat!("boards-rs/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Self {
            client,
            policy,
            telemetry,
        })
    }

    pub fn client(&self) -> &reqwest::Client {
        &self.client
    }

    /// Sends one attempt; `None` when `cancel` fires first. For a job, as a new span, child of
    /// the job's: its `traceparent` goes with the request (the provider's own tracing, if any,
    /// joins the job's trace) and, with export on, the span is exported with the attempt's
    /// outcome (a cancelled attempt too, so the provider's spans keep their parent).
    async fn send_once(
        &self,
        request: RequestBuilder,
        attempt: u32,
        cancel: &CancellationToken,
    ) -> Option<reqwest::Result<Response>> {
        let cancellable = async |request: reqwest::Request, client: reqwest::Client| {
            tokio::select! {
                r = client.execute(request) => Some(r),
                _ = cancel.cancelled() => None,
            }
        };
        let job = boards_shared::trace::current();
        let span = job.map(|job| job.child());
        let request = match span {
            Some(span) => request.header("traceparent", span.header()),
            None => request,
        };
        let (client, request) = request.build_split();
        let request = match request {
            Ok(r) => r,
            Err(e) => return Some(Err(e)),
        };
        let (Some(job), Some(span), true) = (job, span, self.telemetry.enabled()) else {
            return cancellable(request, client).await;
        };
        let method = request.method().to_string();
        let host = request.url().host_str().unwrap_or_default().to_string();
        let mut attributes = vec![
            KeyValue::new("http.request.method", method.clone()),
            KeyValue::new("server.address", host.clone()),
            // The path only: a query may carry what does not belong in a trace.
            KeyValue::new("url.path", request.url().path().to_string()),
            KeyValue::new("attempt", i64::from(attempt)),
        ];
        let start = SystemTime::now();
        let result = cancellable(request, client).await;
        let error = match &result {
            Some(Ok(r)) => {
                let status = r.status().as_u16();
                attributes.push(KeyValue::new(
                    "http.response.status_code",
                    i64::from(status),
                ));
                (status >= 400).then(|| format!("HTTP {status}"))
            }
            Some(Err(e)) => Some(describe(e)),
            None => Some("cancelled".into()),
        };
        self.telemetry.record(FinishedSpan {
            name: format!("{method} {host}").into(),
            kind: SpanKind::Client,
            trace: span,
            parent: Some(job),
            start,
            end: SystemTime::now(),
            attributes,
            error,
        });
        result
    }

    /// Sends the request `make` builds (again for every attempt) until it succeeds, fails for
    /// good, runs out of attempts, or `cancel` fires.
    pub async fn send(
        &self,
        call: Call,
        cancel: &CancellationToken,
        make: impl Fn(&reqwest::Client) -> RequestBuilder,
    ) -> Result<Response, CallError> {
        let mut backoff = self.policy.first_backoff;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let last = attempt >= self.policy.max_attempts;
            let Some(sent) = self.send_once(make(&self.client), attempt, cancel).await else {
                return Err(CallError::Cancelled);
            };
            let wait = match sent {
                Ok(response) if response.status().is_success() => return Ok(response),
                Ok(response) => {
                    let status = response.status().as_u16();
                    let again = match call {
                        Call::Idempotent => retryable(status),
                        Call::Create => not_taken(status),
                    };
                    let retry_after = retry_after(&response);
                    if !again || last {
                        let detail = detail_of(response).await;
                        return Err(CallError::Status { status, detail });
                    }
                    // The server's own wait is honoured as given; ours is spread out.
                    retry_after.unwrap_or_else(|| jitter(backoff))
                }
                Err(e) => {
                    let again = match call {
                        Call::Idempotent => true,
                        Call::Create => e.is_connect(),
                    };
                    if !again || last {
                        return Err(CallError::Transport(describe(&e)));
                    }
                    jitter(backoff)
                }
            };
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = cancel.cancelled() => return Err(CallError::Cancelled),
            }
            backoff = (backoff * 2).min(self.policy.max_backoff);
        }
    }

    /// [`Http::send`], then the body as JSON.
    pub async fn json(
        &self,
        call: Call,
        cancel: &CancellationToken,
        make: impl Fn(&reqwest::Client) -> RequestBuilder,
    ) -> Result<Value, CallError> {
        let response = self.send(call, cancel, make).await?;
        response
            .json::<Value>()
            .await
            .map_err(|e| CallError::Transport(format!("unreadable answer: {}", describe(&e))))
    }
}

impl Http {
    /// Sends a request whose body cannot be replayed (a file streamed from storage): `make`
    /// builds it afresh for every attempt. Retried on transport errors, 429 and 5xx (an upload
    /// creates nothing that costs twice); errors are named after `provider`.
    pub async fn send_fresh<F, Fut>(
        &self,
        provider: Provider,
        cancel: &CancellationToken,
        make: F,
    ) -> Result<Response, GenerateError>
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = Result<RequestBuilder, GenerateError>>,
    {
        let mut backoff = self.policy.first_backoff;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let request = make().await?;
            let Some(sent) = self.send_once(request, attempt, cancel).await else {
                return Err(GenerateError::Cancelled);
            };
            let error = match sent {
                Ok(r) if r.status().is_success() => return Ok(r),
                Ok(r) => {
                    let status = r.status().as_u16();
                    CallError::Status {
                        status,
                        detail: detail_of(r).await,
                    }
                }
                Err(e) => {
                    CallError::Transport(format!("uploading a file failed: {}", describe(&e)))
                }
            };
            let again = match &error {
                CallError::Status { status, .. } => *status == 429 || *status >= 500,
                _ => true,
            };
            if !again || attempt >= self.policy.max_attempts {
                return Err(error.into_generate(provider));
            }
            tokio::select! {
                _ = tokio::time::sleep(jitter(backoff)) => {}
                _ = cancel.cancelled() => return Err(GenerateError::Cancelled),
            }
            backoff = (backoff * 2).min(self.policy.max_backoff);
        }
    }
}

/// A provider's API key and how it is sent (`Authorization: <scheme> <key>`).
#[derive(Clone)]
pub struct Key {
    provider: Provider,
    scheme: &'static str,
    secret: Option<boards_shared::config::Secret>,
}

impl Key {
    pub fn new(
        provider: Provider,
        scheme: &'static str,
        secret: Option<boards_shared::config::Secret>,
    ) -> Self {
        Self {
            provider,
            scheme,
            secret,
        }
    }

    /// The `Authorization` header, or the error users see before any upstream call.
    pub fn header(&self) -> Result<String, GenerateError> {
        self.secret
            .as_ref()
            .map(|k| format!("{} {}", self.scheme, k.expose()))
            .ok_or_else(|| {
                GenerateError::Permanent(boards_shared::generators::ProviderKeys::missing(
                    self.provider,
                ))
            })
    }
}

/// A multipart file part streamed from storage.
pub fn file_part(
    provider: Provider,
    stream: boards_shared::storage::ByteStream,
    size: Option<u64>,
    name: String,
    content_type: &str,
) -> Result<reqwest::multipart::Part, GenerateError> {
    use futures::TryStreamExt as _;
    let body = reqwest::Body::wrap_stream(stream.map_err(std::io::Error::other));
    match size {
        Some(n) => reqwest::multipart::Part::stream_with_length(body, n),
        None => reqwest::multipart::Part::stream(body),
    }
    .file_name(name)
    .mime_str(content_type)
    .map_err(|e| GenerateError::Permanent(format!("{}: {e}", provider.label())))
}

/// `Retry-After` in seconds (capped at 5 minutes); dates are not worth a parser here.
fn retry_after(response: &Response) -> Option<Duration> {
    let value = response.headers().get(reqwest::header::RETRY_AFTER)?;
    let secs: f64 = value.to_str().ok()?.trim().parse().ok()?;
    (secs.is_finite() && secs >= 0.0).then(|| Duration::from_secs_f64(secs.min(300.0)))
}

/// Up to a quarter less, so that many jobs retrying together spread out.
fn jitter(d: Duration) -> Duration {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|t| t.subsec_nanos())
        .unwrap_or(0);
    d.mul_f64(1.0 - f64::from(nanos % 250) / 1000.0)
}

fn describe(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        "the request timed out".into()
    } else if e.is_connect() {
        "could not connect".into()
    } else if e.is_decode() {
        "the answer could not be decoded".into()
    } else {
        "the connection failed".into()
    }
}

/// The message of an error answer: the provider's own (`detail`, `error.message`, `msg`…),
/// else the start of the body, else the status.
pub async fn detail_of(response: Response) -> String {
    let status = response.status();
    let text = response.text().await.unwrap_or_default();
    detail_in(status, &text)
}

pub fn detail_in(status: StatusCode, text: &str) -> String {
    if let Ok(doc) = serde_json::from_str::<Value>(text) {
        if let Some(d) = message_in(&doc) {
            return d;
        }
    }
    let text = text.trim();
    if text.is_empty() {
        format!("HTTP {}", status.as_u16())
    } else {
        text.chars().take(300).collect()
    }
}

/// The first message found in a JSON error document.
pub fn message_in(doc: &Value) -> Option<String> {
    let text = |v: &Value| v.as_str().map(str::to_string).filter(|s| !s.is_empty());
    if let Some(d) = doc.get("detail") {
        if let Some(s) = text(d) {
            return Some(s);
        }
        // FastAPI validation errors: [{"loc": [..., "field"], "msg": "..."}].
        if let Some(items) = d.as_array() {
            let msgs: Vec<String> = items
                .iter()
                .filter_map(|i| {
                    let msg = i.get("msg").and_then(Value::as_str)?;
                    let field = i
                        .get("loc")
                        .and_then(Value::as_array)
                        .and_then(|l| l.last())
                        .map(|f| f.as_str().map_or(f.to_string(), str::to_string));
                    Some(match field {
                        Some(f) => format!("{f}: {msg}"),
                        None => msg.to_string(),
                    })
                })
                .collect();
            if !msgs.is_empty() {
                return Some(msgs.join("; "));
            }
        }
    }
    if let Some(e) = doc.get("error") {
        if let Some(s) = text(e).or_else(|| e.get("message").and_then(text)) {
            return Some(s);
        }
    }
    ["message", "msg", "title", "errorMessage", "failMsg"]
        .iter()
        .find_map(|k| doc.get(*k).and_then(text))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn provider_messages_are_found_where_each_provider_puts_them() {
        assert_eq!(
            message_in(&json!({"detail": "Image too large"})).unwrap(),
            "Image too large"
        );
        assert_eq!(
            message_in(&json!({"detail": [{"loc": ["body", "prompt"], "msg": "field required"}]}))
                .unwrap(),
            "prompt: field required"
        );
        assert_eq!(
            message_in(&json!({"error": {"message": "Billing hard limit"}})).unwrap(),
            "Billing hard limit"
        );
        assert_eq!(
            message_in(&json!({"code": 402, "msg": "Credits insufficient"})).unwrap(),
            "Credits insufficient"
        );
        assert_eq!(detail_in(StatusCode::BAD_GATEWAY, ""), "HTTP 502");
    }

    #[test]
    fn a_4xx_is_final_and_a_5xx_is_retried_as_a_job() {
        let e = CallError::Status {
            status: 422,
            detail: "prompt: too long".into(),
        }
        .into_generate(Provider::Fal);
        assert!(matches!(&e, GenerateError::Permanent(m) if m == "fal.ai: prompt: too long"));
        let e = CallError::Status {
            status: 503,
            detail: "busy".into(),
        }
        .into_generate(Provider::Replicate);
        assert!(matches!(&e, GenerateError::Transient(m) if m.starts_with("Replicate: HTTP 503")));
    }
}
