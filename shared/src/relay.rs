//! The outbox relay: publishes `boards.job_outbox` rows to RabbitMQ with publisher confirms and
//! deletes a row only after its confirm; likewise the unpublished rows of
//! `boards.webhook_deliveries` (marked published after their confirm). Woken right after a job is committed and on an
//! interval as a safety net. Rows are leased with `FOR UPDATE SKIP LOCKED`, so several API
//! replicas never publish the same row twice in normal operation.

use std::{
    collections::BTreeMap,
    sync::Arc,
    time::{Duration, Instant},
};

use diesel::{sql_types, QueryableByName};
use diesel_async::RunQueryDsl;
use lapin::Connection;
use slog::{info, warn, Logger};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::{
    config::Config,
    db::PgPool,
    jobs::JobMessage,
    metrics::Metrics,
    queue::{self, BrokerLink, ConfirmedPublisher, Topology},
    webhooks::WebhookMessage,
};

/// How long a claimed row stays invisible to other relays while being published.
const LEASE_SECONDS: i64 = 30;
const BATCH: i64 = 200;
/// How often the relay looks for webhook deliveries whose message was lost.
const SWEEP_EVERY: Duration = Duration::from_secs(60);

/// Wakes the relay (after a commit that wrote outbox rows) and proves its broker answers.
#[derive(Clone, Default)]
pub struct RelayHandle {
    notify: Arc<Notify>,
    link: BrokerLink,
}

impl RelayHandle {
    pub fn wake(&self) {
        self.notify.notify_one();
    }

    /// Whether the relay's broker answers a round trip within `within` (readiness).
    pub async fn probe(&self, within: Duration) -> bool {
        self.link.probe(within).await
    }
}

pub struct Relay {
    pool: PgPool,
    amqp_url: String,
    heartbeat: u16,
    confirm_timeout: Duration,
    topology: Topology,
    webhooks: Topology,
    /// A pending, published delivery untouched this long lost its message.
    stale_delivery: Duration,
    /// When lost deliveries were last looked for.
    last_sweep: std::sync::Mutex<Option<Instant>>,
    pools: BTreeMap<String, String>,
    interval: Duration,
    metrics: Arc<Metrics>,
    logger: Logger,
    handle: RelayHandle,
}

#[derive(QueryableByName)]
struct Claimed {
    #[diesel(sql_type = sql_types::BigInt)]
    id: i64,
    #[diesel(sql_type = sql_types::Jsonb)]
    message: serde_json::Value,
}

/// The worker pool a generator's jobs go to.
pub fn pool_of<'a>(pools: &'a BTreeMap<String, String>, generator: &str) -> &'a str {
    pools.get(generator).map_or("default", String::as_str)
}

impl Relay {
    pub fn new(
        config: &Config,
        pool: PgPool,
        metrics: Arc<Metrics>,
        logger: Logger,
    ) -> (Self, RelayHandle) {
        let handle = RelayHandle::default();
        let relay = Self {
            pool,
            amqp_url: config.amqp.url.expose().to_string(),
            heartbeat: config.amqp.heartbeat_seconds,
            confirm_timeout: Duration::from_millis(config.amqp.confirm_timeout_ms),
            topology: Topology::new(config),
            webhooks: Topology::webhooks(config),
            stale_delivery: Duration::from_millis(
                config
                    .webhooks
                    .retry_delays_ms
                    .iter()
                    .copied()
                    .max()
                    .unwrap_or(0)
                    .saturating_add(config.webhooks.timeout_ms)
                    .saturating_add(3_600_000),
            ),
            last_sweep: std::sync::Mutex::new(None),
            pools: config.jobs.pools.clone(),
            interval: Duration::from_millis(config.jobs.relay_interval_ms.max(10)),
            metrics,
            logger,
            handle: handle.clone(),
        };
        (relay, handle)
    }

    /// Runs until `shutdown` is cancelled; reconnects to RabbitMQ with backoff.
    pub async fn run(self, shutdown: CancellationToken) {
        let mut backoff = Duration::from_millis(200);
        let mut warned = false;
        while !shutdown.is_cancelled() {
            let connected = async {
                let conn = queue::connect(
                    &self.amqp_url,
                    "boards-api outbox relay",
                    Some(self.heartbeat),
                )
                .await?;
                let publisher = ConfirmedPublisher::open(&conn, self.confirm_timeout).await?;
                let mut pools: Vec<&str> = vec![];
                for pool in self.pools.values().map(String::as_str).chain(["default"]) {
                    if !pools.contains(&pool) {
                        let declared = self.topology.declare(&conn, pool).await?;
                        queue::warn_existing(&self.logger, &declared);
                        pools.push(pool);
                    }
                }
                let declared = self.webhooks.declare(&conn, queue::WEBHOOK_POOL).await?;
                queue::warn_existing(&self.logger, &declared);
                anyhow::Ok((Arc::new(conn), publisher))
            };
            // A broker that accepts the connection but stops answering must not hold the
            // relay here forever.
            let connected = match tokio::time::timeout(self.confirm_timeout * 3, connected).await {
                Ok(r) => r,
                Err(_) => Err(anyhow::anyhow!(
                    "the broker did not answer while connecting"
                )),
            };
            match connected {
                Ok((conn, publisher)) => {
                    self.handle.link.set(Some(conn.clone()));
                    if warned {
                        info!(self.logger, "outbox relay connected to RabbitMQ");
                    }
                    warned = false;
                    backoff = Duration::from_millis(200);
                    if let Err(e) = self.publish_loop(&conn, &publisher, &shutdown).await {
                        warn!(self.logger, "outbox relay lost RabbitMQ; jobs stay in the outbox"; "error" => format!("{e:#}"));
                    }
                    self.handle.link.set(None);
                    let close = async {
                        let _ = publisher
                            .channel()
                            .close(200, "relay stopping".into())
                            .await;
                        let _ = conn.close(200, "relay stopping".into()).await;
                    };
                    let _ = tokio::time::timeout(Duration::from_secs(2), close).await;
                }
                Err(e) => {
                    if !warned {
                        warn!(self.logger, "outbox relay cannot reach RabbitMQ; jobs stay in the outbox until it is back";
                            "error" => format!("{e:#}"));
                        warned = true;
                    }
                }
            }
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(backoff) => {}
            }
            backoff = (backoff * 2).min(Duration::from_secs(5));
        }
    }

    async fn publish_loop(
        &self,
        conn: &Connection,
        publisher: &ConfirmedPublisher,
        shutdown: &CancellationToken,
    ) -> anyhow::Result<()> {
        loop {
            if !conn.status().connected() {
                anyhow::bail!("connection closed");
            }
            // Each outbox on its own: one that keeps failing does not hold up the other.
            let jobs = self.publish_batch(publisher).await;
            let deliveries = self.publish_deliveries(publisher).await;
            let (jobs, deliveries) = (jobs?, deliveries?);
            if jobs as i64 >= BATCH || deliveries as i64 >= BATCH {
                continue;
            }
            tokio::select! {
                _ = shutdown.cancelled() => return Ok(()),
                _ = self.handle.notify.notified() => {}
                _ = tokio::time::sleep(self.interval) => {}
            }
        }
    }

    /// Leases up to a batch of unpublished webhook deliveries, publishes them, marks the
    /// confirmed ones published.
    async fn publish_deliveries(&self, publisher: &ConfirmedPublisher) -> anyhow::Result<usize> {
        #[derive(QueryableByName)]
        struct Due {
            #[diesel(sql_type = sql_types::Uuid)]
            id: uuid::Uuid,
            #[diesel(sql_type = sql_types::Nullable<sql_types::Text>)]
            traceparent: Option<String>,
        }
        let mut conn = self
            .pool
            .get()
            .await
            .map_err(|e| anyhow::anyhow!("database: {e}"))?;
        // Pending deliveries whose message is gone (dead-lettered by a quorum queue's delivery
        // limit, a purged queue): nothing would ever send them, so they go out again once
        // nothing could still be waiting for them (the longest retry delay, a timeout, an
        // hour). A scan of the table: once a minute, not on every tick.
        let sweep_due = self
            .last_sweep
            .lock()
            .map(|mut last| {
                let due = last.is_none_or(|t| t.elapsed() >= SWEEP_EVERY);
                if due {
                    *last = Some(Instant::now());
                }
                due
            })
            .unwrap_or(false);
        if sweep_due {
            diesel::sql_query(
                "UPDATE boards.webhook_deliveries SET published = false, publish_after = now()
                 WHERE published AND status = 'pending'
                   AND updated_at < now() - make_interval(secs => $1)",
            )
            .bind::<sql_types::Double, _>(self.stale_delivery.as_secs_f64())
            .execute(&mut conn)
            .await?;
        }
        let rows: Vec<Due> = diesel::sql_query(
            "UPDATE boards.webhook_deliveries SET publish_after = now() + make_interval(secs => $1)
             WHERE id IN (SELECT id FROM boards.webhook_deliveries
                          WHERE NOT published AND publish_after <= now()
                          ORDER BY publish_after LIMIT $2 FOR UPDATE SKIP LOCKED)
             RETURNING id, traceparent",
        )
        .bind::<sql_types::Double, _>(LEASE_SECONDS as f64)
        .bind::<sql_types::BigInt, _>(BATCH)
        .load(&mut conn)
        .await?;
        if rows.is_empty() {
            return Ok(0);
        }
        let exchange = self.webhooks.exchange();
        let results = futures::future::join_all(rows.iter().map(|row| {
            let message = WebhookMessage {
                traceparent: row.traceparent.clone(),
                ..WebhookMessage::first(row.id)
            };
            let exchange = exchange.clone();
            async move {
                let sent = publisher
                    .publish_webhook(&exchange, queue::WEBHOOK_POOL, &message)
                    .await;
                (row.id, sent)
            }
        }))
        .await;
        let mut done = vec![];
        let mut error = None;
        for (id, sent) in results {
            match sent {
                Ok(()) => done.push(id),
                Err(e) => error = Some(format!("{e:#}")),
            }
        }
        if !done.is_empty() {
            // Only rows still under this lease: a resend in the meantime (which resets
            // `publish_after` to now) must go out again.
            diesel::sql_query(
                "UPDATE boards.webhook_deliveries SET published = true
                 WHERE id = ANY($1) AND NOT published AND publish_after > now()",
            )
            .bind::<sql_types::Array<sql_types::Uuid>, _>(&done)
            .execute(&mut conn)
            .await?;
        }
        if let Some(error) = error {
            // The rest are retried once their lease runs out.
            anyhow::bail!(
                "{} of {} webhook deliveries were not confirmed: {error}",
                rows.len() - done.len(),
                rows.len()
            );
        }
        Ok(rows.len())
    }

    /// Leases up to a batch of due rows, publishes them, deletes the confirmed ones.
    async fn publish_batch(&self, publisher: &ConfirmedPublisher) -> anyhow::Result<usize> {
        let mut conn = self
            .pool
            .get()
            .await
            .map_err(|e| anyhow::anyhow!("database: {e}"))?;
        let rows: Vec<Claimed> = diesel::sql_query(
            "UPDATE boards.job_outbox SET available_at = now() + make_interval(secs => $1),
                    publish_attempts = publish_attempts + 1
             WHERE id IN (SELECT id FROM boards.job_outbox WHERE available_at <= now()
                          ORDER BY id LIMIT $2 FOR UPDATE SKIP LOCKED)
             RETURNING id, message",
        )
        .bind::<sql_types::Double, _>(LEASE_SECONDS as f64)
        .bind::<sql_types::BigInt, _>(BATCH)
        .load(&mut conn)
        .await?;
        if rows.is_empty() {
            let backlog = crate::db::models::outbox::count(&mut conn)
                .await
                .unwrap_or(0);
            self.metrics.outbox_backlog.set(backlog);
            return Ok(0);
        }
        let count = rows.len();
        let mut done = vec![];
        let mut failed: Vec<(i64, String)> = vec![];
        let exchange = self.topology.exchange();
        let confirms = futures::future::join_all(rows.into_iter().map(|row| {
            let exchange = exchange.clone();
            async move {
                let started = Instant::now();
                let result = match serde_json::from_value::<JobMessage>(row.message.clone()) {
                    Ok(message) => {
                        let pool = pool_of(&self.pools, &message.generator).to_string();
                        publisher.publish(&exchange, &pool, &message).await
                    }
                    Err(e) => Err(anyhow::anyhow!("malformed outbox message: {e}")),
                };
                (row.id, result, started.elapsed())
            }
        }))
        .await;
        for (id, result, elapsed) in confirms {
            match result {
                Ok(()) => {
                    self.metrics.publish_latency.observe(elapsed.as_secs_f64());
                    done.push(id);
                }
                Err(e) => failed.push((id, format!("{e:#}"))),
            }
        }
        if !done.is_empty() {
            diesel::sql_query("DELETE FROM boards.job_outbox WHERE id = ANY($1)")
                .bind::<sql_types::Array<sql_types::BigInt>, _>(&done)
                .execute(&mut conn)
                .await?;
        }
        for (id, error) in &failed {
            // Try again soon (the lease would otherwise hide the row for its full length).
            diesel::sql_query(
                "UPDATE boards.job_outbox SET available_at = now() + interval '1 second', last_error = $2 WHERE id = $1",
            )
            .bind::<sql_types::BigInt, _>(*id)
            .bind::<sql_types::Text, _>(error)
            .execute(&mut conn)
            .await?;
        }
        if let Some((_, error)) = <[(i64, String)]>::first(&failed) {
            anyhow::bail!(
                "{} of {count} messages were not confirmed: {error}",
                failed.len()
            );
        }
        Ok(count)
    }
}
