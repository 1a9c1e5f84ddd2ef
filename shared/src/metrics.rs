//! Prometheus metrics shared by the API and the worker (each process serves its own `/metrics`).

use std::{collections::HashSet, sync::RwLock, time::Duration};

use prometheus::{
    Encoder, GaugeVec, Histogram, HistogramOpts, HistogramVec, IntCounterVec, IntGauge,
    IntGaugeVec, Opts, Registry, TextEncoder,
};

/// Distinct GraphQL operation names kept as label values; later ones count as `other`, so a
/// client sending random names cannot grow the series without bound.
const MAX_OPERATIONS: usize = 200;

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
    /// GraphQL requests by operation name and HTTP status.
    pub graphql_requests: IntCounterVec,
    /// GraphQL request time by operation name.
    pub graphql_duration: HistogramVec,
    /// Generations waiting for a worker, by pool (sampled by the API).
    pub jobs_pending: IntGaugeVec,
    /// Age of the oldest waiting generation, by pool, in seconds (0 when none waits).
    pub oldest_pending_seconds: GaugeVec,
    /// Generations `processing` whose run's lease ran out (their worker died or stalls; the
    /// reaper hands them out again).
    pub jobs_stuck: IntGauge,
    /// Requests refused by a rate limit, by limit (`generation`, `upload`, `auth_failure`).
    pub rate_limited: IntCounterVec,
    /// Rate-limit decisions taken without Redis (it was unreachable): the request was let
    /// through. By limit.
    pub rate_limit_fail_open: IntCounterVec,
    /// Webhook delivery attempts by outcome (`delivered`, `retry`, `failed`).
    pub webhook_attempts: IntCounterVec,
    operations: RwLock<HashSet<String>>,
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
            graphql_requests: IntCounterVec::new(
                Opts::new(
                    "graphql_requests_total",
                    "GraphQL requests by operation and status",
                ),
                &["operation", "status"],
            )
            .unwrap_or_else(|_| unreachable_metric()),
            graphql_duration: HistogramVec::new(
                HistogramOpts::new("graphql_request_duration_seconds", "GraphQL request time")
                    .buckets(vec![
                        0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
                    ]),
                &["operation"],
            )
            .unwrap_or_else(|_| unreachable_metric()),
            jobs_pending: IntGaugeVec::new(
                Opts::new("jobs_pending", "Generations waiting for a worker, by pool"),
                &["pool"],
            )
            .unwrap_or_else(|_| unreachable_metric()),
            oldest_pending_seconds: GaugeVec::new(
                Opts::new(
                    "oldest_pending_seconds",
                    "Age of the oldest waiting generation, by pool",
                ),
                &["pool"],
            )
            .unwrap_or_else(|_| unreachable_metric()),
            jobs_stuck: IntGauge::new(
                "jobs_stuck_processing",
                "Processing generations whose lease ran out",
            )
            .unwrap_or_else(|_| unreachable_metric()),
            rate_limited: IntCounterVec::new(
                Opts::new("rate_limited_total", "Requests refused by a rate limit"),
                &["limit"],
            )
            .unwrap_or_else(|_| unreachable_metric()),
            rate_limit_fail_open: IntCounterVec::new(
                Opts::new(
                    "rate_limit_fail_open_total",
                    "Rate-limit decisions that let a request through because Redis was unreachable",
                ),
                &["limit"],
            )
            .unwrap_or_else(|_| unreachable_metric()),
            webhook_attempts: IntCounterVec::new(
                Opts::new(
                    "webhook_attempts_total",
                    "Webhook delivery attempts by outcome",
                ),
                &["outcome"],
            )
            .unwrap_or_else(|_| unreachable_metric()),
            operations: RwLock::new(HashSet::new()),
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
            Box::new(m.graphql_requests.clone()),
            Box::new(m.graphql_duration.clone()),
            Box::new(m.jobs_pending.clone()),
            Box::new(m.oldest_pending_seconds.clone()),
            Box::new(m.jobs_stuck.clone()),
            Box::new(m.rate_limited.clone()),
            Box::new(m.rate_limit_fail_open.clone()),
            Box::new(m.webhook_attempts.clone()),
        ] {
            let _ = m.registry.register(c);
        }
        m
    }

    /// Counts one GraphQL request of operation `name` (unnamed: `anonymous`; past the first
    /// [`MAX_OPERATIONS`] names, or not a GraphQL name: `other`).
    pub fn graphql(&self, name: Option<&str>, status: u16, took: Duration) {
        let label = match name {
            None => "anonymous".to_string(),
            Some(n)
                if n.len() <= 64
                    && n.chars()
                        .next()
                        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                    && n.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') =>
            {
                // Known names (every request after the first of each) take the read lock only.
                let known = self
                    .operations
                    .read()
                    .map(|k| k.contains(n))
                    .unwrap_or(false);
                let set = || {
                    let mut k = self.operations.write().unwrap_or_else(|p| p.into_inner());
                    (k.len() < MAX_OPERATIONS && k.insert(n.to_string())) || k.contains(n)
                };
                if known || set() {
                    n.to_string()
                } else {
                    "other".to_string()
                }
            }
            Some(_) => "other".to_string(),
        };
        self.graphql_requests
            .with_label_values(&[&label, &status.to_string()])
            .inc();
        self.graphql_duration
            .with_label_values(&[&label])
            .observe(took.as_secs_f64());
    }

    /// The full names of every metric registered (with the `boards_` prefix), whether or not
    /// it has a sample yet.
    pub fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = [
            Box::new(self.jobs.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(self.job_duration.clone()),
            Box::new(self.publish_latency.clone()),
            Box::new(self.outbox_backlog.clone()),
            Box::new(self.sse_clients.clone()),
            Box::new(self.retries.clone()),
            Box::new(self.dead_lettered.clone()),
            Box::new(self.running.clone()),
            Box::new(self.graphql_requests.clone()),
            Box::new(self.graphql_duration.clone()),
            Box::new(self.jobs_pending.clone()),
            Box::new(self.oldest_pending_seconds.clone()),
            Box::new(self.jobs_stuck.clone()),
            Box::new(self.rate_limited.clone()),
            Box::new(self.rate_limit_fail_open.clone()),
        ]
        .iter()
        .flat_map(|c| {
            c.desc()
                .into_iter()
                .map(|d| format!("boards_{}", d.fq_name))
        })
        .collect();
        names.sort();
        names
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
