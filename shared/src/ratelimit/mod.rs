//! Rate limits (issue 11): per user on what costs money or storage (starting generations,
//! uploads), per client address on refused credentials. Counters live in Redis, so every API
//! replica sees the same ones.
//!
//! **Algorithm: GCRA** (the generic cell rate algorithm, a leaky bucket kept as one timestamp).
//! A quota `count/period` lets `count` events through at once, then one more every
//! `period / count`. Each key holds a single number, its "theoretical arrival time" (when it
//! would be empty again); one event moves it `period / count` into the future, and an event is
//! refused when that would put it more than `period` ahead of now, the wait until it would not
//! being the `Retry-After`. Compared with a sliding window this is exact (no window edges where
//! twice the quota passes), needs one key of one value per client instead of a sorted set of
//! events, and the retry hint is exact. The step runs as one Lua script ([`store`]) on the
//! Redis server's clock: atomic across replicas, immune to their clock skew. Each key expires
//! when it would be empty (at most one period), so nothing is left behind.
//!
//! Keys: `{redis.channel_prefix}boards:ratelimit:{limit}:{id}` (`id`: a user id, or a client
//! address, IPv6 by /64).
//!
//! **Redis down: fail open.** A limiter that cannot reach Redis within the command timeout lets
//! the request through, logs one warning per outage and counts
//! `boards_rate_limit_fail_open_total{limit}`; for one second after a failure it does not try
//! again (requests are not slowed by a dead Redis). Rate limits protect against abuse; they are
//! not worth an outage of their own.

pub mod client_ip;
mod quota;
pub mod store;

use std::{
    fmt,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use slog::{info, warn, Logger};

pub use client_ip::{ip_bucket, TrustedProxies};
pub use quota::Quota;
use store::{Rate, Step, Store};

use crate::{config::Config, metrics::Metrics, redis_pool::RedisPool, AppError, AppResult};

/// What is limited.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Limit {
    /// Per user: every request that would start a paid job (`createGeneration`, `regenerate`,
    /// `retryGeneration`).
    Generation,
    /// Per user: `uploadArtifact` and `POST /api/uploads/artifact`.
    Upload,
    /// Per client address: requests whose credentials were refused.
    AuthFailure,
}

impl Limit {
    pub const ALL: [Limit; 3] = [Limit::Generation, Limit::Upload, Limit::AuthFailure];

    /// The name in keys and in the metrics' `limit` label.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Generation => "generation",
            Self::Upload => "upload",
            Self::AuthFailure => "auth_failure",
        }
    }

    fn refusal(self, seconds: u64) -> String {
        let what = match self {
            Self::Generation => "Too many generations started",
            Self::Upload => "Too many uploads",
            Self::AuthFailure => "Too many failed authentication attempts from this address",
        };
        format!("{what}; retry in {seconds} s")
    }
}

impl fmt::Display for Limit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The answer for one event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    Allowed,
    Limited { retry_after: Duration },
}

/// Whole seconds to wait, rounded up, at least 1 (`Retry-After` has no fractions).
pub fn retry_after_seconds(wait: Duration) -> u64 {
    let s = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    s.max(1)
}

/// After a failed call to Redis, decisions skip Redis (and let requests through) this long.
const PAUSE_AFTER_FAILURE: Duration = Duration::from_secs(1);

/// The rate limits of one process. Cheap to share (`Arc`); [`Limiter::disabled`] limits nothing.
pub struct Limiter {
    /// `None`: rate limiting is off.
    store: Option<Arc<dyn Store>>,
    generations: Quota,
    uploads: Quota,
    auth_failures: Quota,
    prefix: String,
    timeout: Duration,
    metrics: Arc<Metrics>,
    logger: Logger,
    /// Set while Redis is failing: until then, decisions fail open without trying.
    paused_until: Mutex<Option<Instant>>,
    /// Keys that [`guard`](Self::guard) found clear within [`CLEAR_FOR`] and that saw no
    /// [`record`](Self::record) here since: guarded again without a Redis round trip, so the
    /// failed-authentication gate costs nothing per request for well-behaved clients.
    clear: moka::future::Cache<String, ()>,
}

/// How long a clear guard answer is reused in this process. A lock-out caused by failures seen
/// only by other replicas reaches this one that much later; failures seen here take effect at
/// once (recording one forgets the clear answer).
pub const CLEAR_FOR: Duration = Duration::from_secs(1);

impl Limiter {
    /// The limiter the configuration asks for: Redis-backed, or off (`rate_limit.enabled`
    /// false, which the `none` auth provider forces).
    pub fn from_config(
        config: &Config,
        redis: RedisPool,
        metrics: Arc<Metrics>,
        logger: Logger,
    ) -> Self {
        let store: Option<Arc<dyn Store>> = config
            .rate_limit
            .enabled
            .then(|| Arc::new(store::RedisStore::new(redis)) as Arc<dyn Store>);
        Self::with_store(store, config, metrics, logger)
    }

    /// A limiter over `store` (`None`: off) with the configuration's quotas.
    pub fn with_store(
        store: Option<Arc<dyn Store>>,
        config: &Config,
        metrics: Arc<Metrics>,
        logger: Logger,
    ) -> Self {
        if store.is_some() {
            // Every series exists from the start, at 0, so alerts see them.
            for limit in Limit::ALL {
                metrics.rate_limited.with_label_values(&[limit.as_str()]);
                metrics
                    .rate_limit_fail_open
                    .with_label_values(&[limit.as_str()]);
            }
        }
        let r = &config.rate_limit;
        Self {
            store,
            generations: r.generations,
            uploads: r.uploads,
            auth_failures: r.auth_failures,
            prefix: config.redis.channel_prefix.clone(),
            timeout: Duration::from_millis(config.redis.command_timeout_ms.max(1)),
            metrics,
            logger,
            paused_until: Mutex::new(None),
            clear: moka::future::Cache::builder()
                .max_capacity(100_000)
                .time_to_live(CLEAR_FOR)
                .build(),
        }
    }

    /// A limiter that allows everything.
    pub fn disabled(config: &Config, metrics: Arc<Metrics>, logger: Logger) -> Self {
        Self::with_store(None, config, metrics, logger)
    }

    pub fn is_enabled(&self) -> bool {
        self.store.is_some()
    }

    pub fn quota(&self, limit: Limit) -> Quota {
        match limit {
            Limit::Generation => self.generations,
            Limit::Upload => self.uploads,
            Limit::AuthFailure => self.auth_failures,
        }
    }

    /// Counts one event of `limit` for `id`, or refuses it (`AppError::RateLimited`, counted in
    /// `boards_rate_limited_total`) when its quota is used up. A refused event is not counted.
    pub async fn check(&self, limit: Limit, id: impl fmt::Display) -> AppResult<()> {
        match self.decide(limit, &id.to_string(), Step::Take).await {
            Decision::Allowed => Ok(()),
            Decision::Limited { retry_after } => Err(self.refuse(limit, retry_after)),
        }
    }

    /// Refuses when `id` has no event of `limit` left, without counting one: the gate in front
    /// of something whose failures [`record`](Self::record) counts.
    pub async fn guard(&self, limit: Limit, id: impl fmt::Display) -> AppResult<()> {
        let id = id.to_string();
        let key = self.key(limit, &id);
        if self.clear.contains_key(&key) {
            return Ok(());
        }
        match self.decide(limit, &id, Step::Peek).await {
            Decision::Allowed => {
                self.clear.insert(key, ()).await;
                Ok(())
            }
            Decision::Limited { retry_after } => Err(self.refuse(limit, retry_after)),
        }
    }

    /// Counts one event of `limit` for `id` (a failure seen by [`guard`](Self::guard)); never
    /// refuses anything itself.
    pub async fn record(&self, limit: Limit, id: impl fmt::Display) {
        let id = id.to_string();
        self.clear.invalidate(&self.key(limit, &id)).await;
        self.decide(limit, &id, Step::Take).await;
    }

    fn refuse(&self, limit: Limit, retry_after: Duration) -> AppError {
        self.metrics
            .rate_limited
            .with_label_values(&[limit.as_str()])
            .inc();
        let seconds = retry_after_seconds(retry_after);
        AppError::RateLimited {
            message: limit.refusal(seconds),
            retry_after: seconds,
        }
    }

    fn key(&self, limit: Limit, id: &str) -> String {
        format!("{}boards:ratelimit:{}:{id}", self.prefix, limit.as_str())
    }

    async fn decide(&self, limit: Limit, id: &str, step: Step) -> Decision {
        let Some(store) = &self.store else {
            return Decision::Allowed;
        };
        let Quota::Per { count, period } = self.quota(limit) else {
            return Decision::Allowed;
        };
        if self.paused() {
            return self.fail_open(limit);
        }
        let rate = Rate::new(count, period);
        let key = self.key(limit, id);
        let result = match tokio::time::timeout(self.timeout, store.step(&key, rate, step)).await {
            Ok(r) => r,
            Err(_) => Err(anyhow::anyhow!(
                "redis did not answer within {:?}",
                self.timeout
            )),
        };
        match result {
            Ok(decision) => {
                self.recovered();
                decision
            }
            Err(e) => {
                self.failed(&e);
                self.fail_open(limit)
            }
        }
    }

    fn fail_open(&self, limit: Limit) -> Decision {
        self.metrics
            .rate_limit_fail_open
            .with_label_values(&[limit.as_str()])
            .inc();
        Decision::Allowed
    }

    fn paused(&self) -> bool {
        let paused = self.paused_until.lock().unwrap_or_else(|p| p.into_inner());
        paused.is_some_and(|until| Instant::now() < until)
    }

    fn failed(&self, e: &anyhow::Error) {
        let mut paused = self.paused_until.lock().unwrap_or_else(|p| p.into_inner());
        if paused.is_none() {
            warn!(self.logger, "rate limits cannot reach Redis: requests are let through unlimited until it answers";
                "error" => format!("{e:#}"));
        }
        *paused = Some(Instant::now() + PAUSE_AFTER_FAILURE);
    }

    fn recovered(&self) {
        let mut paused = self.paused_until.lock().unwrap_or_else(|p| p.into_inner());
        if paused.take().is_some() {
            info!(self.logger, "rate limits reach Redis again");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(pairs: &[(&str, &str)]) -> Config {
        let env = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::load_from(&env).unwrap()
    }

    fn memory(config: &Config) -> (Limiter, Arc<Metrics>) {
        let metrics = Arc::new(Metrics::new());
        let store: Arc<dyn Store> = Arc::new(store::MemoryStore::default());
        let limiter = Limiter::with_store(
            Some(store),
            config,
            metrics.clone(),
            crate::logging::discard(),
        );
        (limiter, metrics)
    }

    #[tokio::test]
    async fn each_user_has_a_quota_of_their_own_and_refusals_say_when_to_retry() {
        let c = config(&[("BOARDS_RATE_LIMIT_GENERATIONS", "2/60")]);
        let (limiter, metrics) = memory(&c);
        limiter.check(Limit::Generation, "alice").await.unwrap();
        limiter.check(Limit::Generation, "alice").await.unwrap();
        let e = limiter.check(Limit::Generation, "alice").await.unwrap_err();
        assert_eq!(e.code(), "RATE_LIMITED");
        assert_eq!(e.http_status(), 429);
        assert_eq!(e.retry_after(), Some(30));
        assert_eq!(e.to_string(), "Too many generations started; retry in 30 s");
        limiter.check(Limit::Generation, "bob").await.unwrap();
        // Another limit is another quota.
        limiter.check(Limit::Upload, "alice").await.unwrap();
        assert_eq!(
            metrics
                .rate_limited
                .with_label_values(&["generation"])
                .get(),
            1
        );
    }

    #[tokio::test]
    async fn guard_refuses_only_once_recorded_failures_fill_the_quota() {
        let c = config(&[("BOARDS_RATE_LIMIT_AUTH_FAILURES", "2/60")]);
        let (limiter, _) = memory(&c);
        for _ in 0..2 {
            limiter.guard(Limit::AuthFailure, "1.2.3.4").await.unwrap();
            limiter.record(Limit::AuthFailure, "1.2.3.4").await;
        }
        let e = limiter
            .guard(Limit::AuthFailure, "1.2.3.4")
            .await
            .unwrap_err();
        assert_eq!(e.code(), "RATE_LIMITED");
        limiter.guard(Limit::AuthFailure, "5.6.7.8").await.unwrap();
    }

    #[tokio::test]
    async fn off_quotas_and_a_disabled_limiter_allow_everything() {
        let c = config(&[("BOARDS_RATE_LIMIT_UPLOADS", "off")]);
        let (limiter, _) = memory(&c);
        for _ in 0..100 {
            limiter.check(Limit::Upload, "alice").await.unwrap();
        }
        let disabled = Limiter::disabled(&c, Arc::new(Metrics::new()), crate::logging::discard());
        assert!(!disabled.is_enabled());
        for _ in 0..100 {
            disabled.check(Limit::Generation, "alice").await.unwrap();
        }
    }

    struct Down;

    #[async_trait::async_trait]
    impl Store for Down {
        async fn step(&self, _: &str, _: Rate, _: Step) -> anyhow::Result<Decision> {
            anyhow::bail!("connection refused")
        }
    }

    #[tokio::test]
    async fn a_failing_store_lets_requests_through_and_counts_them() {
        let c = config(&[("BOARDS_RATE_LIMIT_GENERATIONS", "1/60")]);
        let metrics = Arc::new(Metrics::new());
        let limiter = Limiter::with_store(
            Some(Arc::new(Down)),
            &c,
            metrics.clone(),
            crate::logging::discard(),
        );
        for _ in 0..3 {
            limiter.check(Limit::Generation, "alice").await.unwrap();
        }
        assert_eq!(
            metrics
                .rate_limit_fail_open
                .with_label_values(&["generation"])
                .get(),
            3
        );
    }

    #[test]
    fn retry_hints_round_up_to_whole_seconds() {
        assert_eq!(retry_after_seconds(Duration::from_millis(1)), 1);
        assert_eq!(retry_after_seconds(Duration::from_millis(1000)), 1);
        assert_eq!(retry_after_seconds(Duration::from_millis(1001)), 2);
        assert_eq!(retry_after_seconds(Duration::ZERO), 1);
    }
}
