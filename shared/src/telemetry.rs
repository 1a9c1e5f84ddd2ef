//! Span export over OTLP/HTTP (protobuf) when `BOARDS_OTLP_ENDPOINT` is set; nothing otherwise.
//! Spans are recorded once they are over, with the ids of [`crate::trace`] (the ids in the
//! logs, the AMQP headers and the provider calls are the exported ones): the API's request
//! spans, and the worker's job spans, children of the request that created the job.

use std::{borrow::Cow, time::SystemTime};

use opentelemetry::{
    trace::{
        SpanContext, SpanId, Status, TraceContextExt as _, TraceFlags, TraceId, TraceState,
        Tracer as _, TracerProvider as _,
    },
    Context,
};
use opentelemetry_otlp::WithExportConfig as _;
use opentelemetry_sdk::{
    trace::{SdkTracer, SdkTracerProvider},
    Resource,
};

use crate::trace::TraceContext;

pub use opentelemetry::{trace::SpanKind, KeyValue};

/// A span that is over.
pub struct FinishedSpan {
    pub name: Cow<'static, str>,
    pub kind: SpanKind,
    pub trace: TraceContext,
    /// The span it continues (another process's), if any.
    pub parent: Option<TraceContext>,
    pub start: SystemTime,
    pub end: SystemTime,
    pub attributes: Vec<KeyValue>,
    /// Why it failed, if it did.
    pub error: Option<String>,
}

/// The exporter of one process (cheap to clone), or nothing.
#[derive(Clone, Default)]
pub struct Telemetry {
    inner: Option<(SdkTracerProvider, SdkTracer)>,
}

impl Telemetry {
    /// Exports to `endpoint` (the collector's base URL, e.g. `http://otel-collector:4318`;
    /// spans go to `/v1/traces` under it) as `service`; no endpoint, no export.
    pub fn from_config(endpoint: Option<&str>, service: &'static str) -> anyhow::Result<Self> {
        let Some(endpoint) = endpoint.map(str::trim).filter(|e| !e.is_empty()) else {
            return Ok(Self::default());
        };
        let url = if endpoint.ends_with("/v1/traces") {
            endpoint.to_string()
        } else {
            format!("{}/v1/traces", endpoint.trim_end_matches('/'))
        };
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .with_endpoint(url)
            .build()
            .map_err(|e| anyhow::anyhow!("OTLP exporter: {e}"))?;
        let provider = SdkTracerProvider::builder()
            .with_batch_exporter(exporter)
            .with_resource(Resource::builder().with_service_name(service).build())
            .build();
        let tracer = provider.tracer("boards");
        Ok(Self {
            inner: Some((provider, tracer)),
        })
    }

    pub fn enabled(&self) -> bool {
        self.inner.is_some()
    }

    /// Queues `span` for export (nothing when export is off).
    pub fn record(&self, span: FinishedSpan) {
        let Some((_, tracer)) = &self.inner else {
            return;
        };
        if !span.trace.sampled {
            return;
        }
        let parent = match span.parent {
            Some(p) => Context::new().with_remote_span_context(SpanContext::new(
                TraceId::from_bytes(p.trace_id),
                SpanId::from_bytes(p.span_id),
                TraceFlags::SAMPLED,
                true,
                TraceState::default(),
            )),
            None => Context::new(),
        };
        let mut builder = tracer
            .span_builder(span.name)
            .with_kind(span.kind)
            .with_start_time(span.start)
            .with_attributes(span.attributes);
        builder.trace_id = Some(TraceId::from_bytes(span.trace.trace_id));
        builder.span_id = Some(SpanId::from_bytes(span.trace.span_id));
        let mut live = tracer.build_with_context(builder, &parent);
        if let Some(error) = span.error {
            opentelemetry::trace::Span::set_status(&mut live, Status::error(error));
        }
        opentelemetry::trace::Span::end_with_timestamp(&mut live, span.end);
    }

    /// Exports what is queued and stops (call once, on shutdown; blocks for the export).
    pub fn shutdown(&self) {
        if let Some((provider, _)) = &self.inner {
            let _ = provider.shutdown();
        }
    }
}
