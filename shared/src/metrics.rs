//! Prometheus metrics shared by the API and the worker (each process serves its own `/metrics`).

use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounterVec, IntGauge, Opts, Registry,
    TextEncoder,
};

pub struct Metrics {
    registry: Registry,
    /// Jobs that reached a status, by status and generator.
    pub jobs: IntCounterVec,
    /// Wall time of a job run (claim to terminal state), by generator.
    pub job_duration: HistogramVec,
    /// Time from publishing a job message to the broker's confirm.
    pub publish_latency: Histogram,
    /// Outbox rows waiting to be published (sampled by the relay).
    pub outbox_backlog: IntGauge,
    /// Server-Sent Event streams open on this process.
    pub sse_clients: IntGauge,
    /// Jobs sent to a retry queue, by generator.
    pub retries: IntCounterVec,
    /// Jobs dead-lettered after their last attempt, by generator.
    pub dead_lettered: IntCounterVec,
    /// Jobs running on this worker.
    pub running: IntGauge,
}

impl Metrics {
    pub fn new() -> Self {
        let registry = Registry::new_custom(Some("boards".into()), None).unwrap_or_default();
        let m = Self {
            jobs: IntCounterVec::new(
                Opts::new("jobs_total", "Jobs by final or current status"),
                &["status", "generator"],
            )
            .unwrap_or_else(|_| unreachable_metric()),
            job_duration: HistogramVec::new(
                HistogramOpts::new(
                    "job_duration_seconds",
                    "Job run time from claim to terminal state",
                )
                .buckets(vec![
                    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
                    300.0, 900.0,
                ]),
                &["generator"],
            )
            .unwrap_or_else(|_| unreachable_metric()),
            publish_latency: Histogram::with_opts(
                HistogramOpts::new("queue_publish_latency_seconds", "Time to a broker confirm")
                    .buckets(vec![
                        0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0,
                    ]),
            )
            .unwrap_or_else(|_| unreachable_metric()),
            outbox_backlog: IntGauge::new("outbox_backlog", "Outbox rows waiting to be published")
                .unwrap_or_else(|_| unreachable_metric()),
            sse_clients: IntGauge::new("sse_clients", "Open progress streams")
                .unwrap_or_else(|_| unreachable_metric()),
            retries: IntCounterVec::new(
                Opts::new("job_retries_total", "Jobs scheduled for a retry"),
                &["generator"],
            )
            .unwrap_or_else(|_| unreachable_metric()),
            dead_lettered: IntCounterVec::new(
                Opts::new("jobs_dead_lettered_total", "Jobs dead-lettered"),
                &["generator"],
            )
            .unwrap_or_else(|_| unreachable_metric()),
            running: IntGauge::new("jobs_running", "Jobs running on this worker")
                .unwrap_or_else(|_| unreachable_metric()),
            registry,
        };
        for c in [
            Box::new(m.jobs.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(m.job_duration.clone()),
            Box::new(m.publish_latency.clone()),
            Box::new(m.outbox_backlog.clone()),
            Box::new(m.sse_clients.clone()),
            Box::new(m.retries.clone()),
            Box::new(m.dead_lettered.clone()),
            Box::new(m.running.clone()),
        ] {
            let _ = m.registry.register(c);
        }
        m
    }

    /// The text exposition format.
    pub fn render(&self) -> String {
        let mut buf = vec![];
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut buf);
        String::from_utf8(buf).unwrap_or_default()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

/// Metric construction only fails on invalid names, which are constants here.
fn unreachable_metric<T>() -> T {
    #[allow(clippy::panic)]
    {
        panic!("invalid metric definition")
    }
}
