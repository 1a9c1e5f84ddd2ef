//! W3C Trace Context (<https://www.w3.org/TR/trace-context/>): one trace per job. The API takes
//! the request's `traceparent` (or starts a trace), stores it with the job's outbox message,
//! the relay sends it as an AMQP header, and the worker continues it: its log lines carry the
//! trace id, and its provider calls send `traceparent` (a child span of the job's). Spans are
//! exported over OTLP when `BOARDS_OTLP_ENDPOINT` is set (`crate::telemetry`).

use std::fmt;

use uuid::Uuid;

/// One span's place in a trace: the `traceparent` header's fields.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct TraceContext {
    pub trace_id: [u8; 16],
    pub span_id: [u8; 8],
    /// The `sampled` flag (bit 0 of `trace-flags`).
    pub sampled: bool,
}

fn random_bytes<const N: usize>() -> [u8; N] {
    let mut out = [0u8; N];
    let mut filled = 0;
    while filled < N {
        let chunk = Uuid::new_v4();
        let bytes = chunk.as_bytes();
        let n = (N - filled).min(16);
        out[filled..filled + n].copy_from_slice(&bytes[..n]);
        filled += n;
    }
    out
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex<const N: usize>(s: &str) -> Option<[u8; N]> {
    if s.len() != N * 2
        || !s
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        return None;
    }
    let mut out = [0u8; N];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&s[i * 2..i * 2 + 2], 16).ok()?;
    }
    Some(out)
}

impl TraceContext {
    /// A new trace (sampled).
    pub fn root() -> Self {
        Self {
            trace_id: random_bytes(),
            span_id: random_bytes(),
            sampled: true,
        }
    }

    /// A new span in the same trace.
    pub fn child(&self) -> Self {
        Self {
            span_id: random_bytes(),
            ..*self
        }
    }

    /// Parses a `traceparent` header by the spec's rules: lower-case hex, version `00` exactly
    /// (a higher version is read by its first four fields; `ff` is invalid), ids not all zero.
    pub fn parse(header: &str) -> Option<Self> {
        let header = header.trim();
        let mut parts = header.split('-');
        let version = unhex::<1>(parts.next()?)?[0];
        let trace_id = unhex::<16>(parts.next()?)?;
        let span_id = unhex::<8>(parts.next()?)?;
        let flags = unhex::<1>(parts.next()?)?[0];
        let rest = parts.next();
        if version == 0xff || (version == 0 && rest.is_some()) {
            return None;
        }
        if trace_id == [0; 16] || span_id == [0; 8] {
            return None;
        }
        Some(Self {
            trace_id,
            span_id,
            sampled: flags & 1 == 1,
        })
    }

    /// The `traceparent` header of this span.
    pub fn header(&self) -> String {
        format!(
            "00-{}-{}-{:02x}",
            self.trace_id_hex(),
            hex(&self.span_id),
            u8::from(self.sampled)
        )
    }

    pub fn trace_id_hex(&self) -> String {
        hex(&self.trace_id)
    }

    pub fn span_id_hex(&self) -> String {
        hex(&self.span_id)
    }

    /// The span that continues `traceparent` (a child of it), or a new trace when it is
    /// missing or malformed.
    pub fn continue_from(traceparent: Option<&str>) -> Self {
        traceparent
            .and_then(Self::parse)
            .map_or_else(Self::root, |parent| parent.child())
    }
}

impl fmt::Debug for TraceContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.header())
    }
}

tokio::task_local! {
    /// The span of the job the current task runs (provider calls send its children).
    static CURRENT: TraceContext;
}

/// Runs `future` with `trace` as the current span of its task.
pub async fn scope<F: std::future::Future>(trace: TraceContext, future: F) -> F::Output {
    CURRENT.scope(trace, future).await
}

/// The current task's span, if it runs in a [`scope`].
pub fn current() -> Option<TraceContext> {
    CURRENT.try_with(|t| *t).ok()
}

/// Where a job comes from: the request that created it and its trace.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Origin {
    pub request_id: Option<String>,
    pub trace: Option<TraceContext>,
}

impl Origin {
    pub fn new(request_id: impl Into<String>, trace: TraceContext) -> Self {
        Self {
            request_id: Some(request_id.into()),
            trace: Some(trace),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn traceparent_headers_parse_by_the_spec() {
        let h = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let t = TraceContext::parse(h).unwrap();
        assert_eq!(t.trace_id_hex(), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(t.span_id_hex(), "00f067aa0ba902b7");
        assert!(t.sampled);
        assert_eq!(t.header(), h);
        // A future version is read by its known fields.
        assert!(TraceContext::parse(&format!("cc{}-extra", &h[2..])).is_some());
        for bad in [
            "",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-x",
            "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
        ] {
            assert_eq!(TraceContext::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn children_keep_the_trace_and_roots_start_new_ones() {
        let parent = TraceContext::root();
        let child = parent.child();
        assert_eq!(child.trace_id, parent.trace_id);
        assert_ne!(child.span_id, parent.span_id);
        assert_ne!(TraceContext::root().trace_id, parent.trace_id);
        let continued = TraceContext::continue_from(Some(&parent.header()));
        assert_eq!(continued.trace_id, parent.trace_id);
        assert_ne!(
            TraceContext::continue_from(Some("junk")).trace_id,
            parent.trace_id
        );
    }

    #[tokio::test]
    async fn the_current_span_is_the_scope_s() {
        assert_eq!(current(), None);
        let t = TraceContext::root();
        assert_eq!(scope(t, async { current() }).await, Some(t));
    }
}
