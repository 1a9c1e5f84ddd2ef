//! RabbitMQ topology and publishing (lapin). Names an operator can read in the management UI:
//!
//! | name | kind | purpose |
//! |---|---|---|
//! | `{p}.jobs` | direct exchange | job messages, routing key = pool |
//! | `{p}.jobs.{pool}` | durable queue | work queue of a pool |
//! | `{p}.jobs.{pool}.retry.{delay}` | durable queue, TTL | waits `{delay}` (`5s`, `1500ms`), then dead-letters back to `{p}.jobs` |
//! | `{p}.jobs.{pool}.dead` | durable queue | jobs that exhausted their attempts |
//! | `{p}.webhooks` | direct exchange | webhook deliveries, routing key `deliveries` |
//! | `{p}.webhooks.deliveries` | durable queue | deliveries to send (every worker consumes it) |
//! | `{p}.webhooks.deliveries.retry.{delay}` | durable queue, TTL | waits, then back to `{p}.webhooks` |
//! | `{p}.webhooks.deliveries.dead` | durable queue | deliveries that ran out of attempts |
//!
//! Retry queues are named by their delay, so changing `BOARDS_JOB_RETRY_DELAYS_MS` declares new
//! queues instead of redeclaring old ones with other arguments (which RabbitMQ refuses with
//! `PRECONDITION_FAILED`). A queue that already exists with other arguments (say, a classic
//! queue after switching to quorum) is used as it is, with a warning: a configuration change
//! never stops the pipeline. docs/operations.md says how to move messages on an upgrade.

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use lapin::{
    options::{
        BasicPublishOptions, ConfirmSelectOptions, ExchangeDeclareOptions, QueueBindOptions,
        QueueDeclareOptions,
    },
    types::{AMQPValue, FieldTable, ShortString},
    BasicProperties, Channel, Connection, ConnectionProperties, ExchangeKind,
};

use crate::jobs::JobMessage;

pub use crate::config::QueueType;

/// The queue names of one kind of message (jobs, webhook deliveries) in one deployment
/// (prefix), its retry delays and its queue type.
#[derive(Clone, Debug)]
pub struct Topology {
    pub prefix: String,
    /// `jobs` or `webhooks`: the second part of every name.
    pub kind: &'static str,
    pub retry_delays_ms: Vec<u64>,
    pub queue_type: QueueType,
}

/// The one pool of the webhook topology.
pub const WEBHOOK_POOL: &str = "deliveries";

/// Deliveries of one message a quorum work queue allows before dead-lettering it (a worker
/// keeps a message unsettled while its database is down, so redeliveries mean crashes).
pub const QUORUM_DELIVERY_LIMIT: u32 = 100;

/// `5000` → `5s`, `1500` → `1500ms`.
fn delay_label(ms: u64) -> String {
    if ms > 0 && ms.is_multiple_of(1000) {
        format!("{}s", ms / 1000)
    } else {
        format!("{ms}ms")
    }
}

/// What happened when a queue was declared.
#[derive(Debug, PartialEq, Eq)]
pub enum Declared {
    /// Created, or already there with the same arguments.
    AsConfigured(String),
    /// Already there with other arguments; used as it is.
    Existing { queue: String, reason: String },
}

impl Topology {
    /// The job queues.
    pub fn new(config: &crate::config::Config) -> Self {
        Self {
            prefix: config.amqp.prefix.clone(),
            kind: "jobs",
            retry_delays_ms: config.jobs.retry_delays_ms.clone(),
            queue_type: config.amqp.queue_type,
        }
    }

    /// The webhook delivery queues (one pool, [`WEBHOOK_POOL`]).
    pub fn webhooks(config: &crate::config::Config) -> Self {
        Self {
            prefix: config.amqp.prefix.clone(),
            kind: "webhooks",
            retry_delays_ms: config.webhooks.retry_delays_ms.clone(),
            queue_type: config.amqp.queue_type,
        }
    }

    pub fn exchange(&self) -> String {
        format!("{}.{}", self.prefix, self.kind)
    }
    pub fn work_queue(&self, pool: &str) -> String {
        format!("{}.{}.{pool}", self.prefix, self.kind)
    }
    /// The queue that delays retry `n` (1-based).
    pub fn retry_queue(&self, pool: &str, n: usize) -> String {
        self.delay_queue(pool, self.delay_ms(n))
    }
    fn delay_queue(&self, pool: &str, delay_ms: u64) -> String {
        format!(
            "{}.{}.{pool}.retry.{}",
            self.prefix,
            self.kind,
            delay_label(delay_ms)
        )
    }
    pub fn dead_queue(&self, pool: &str) -> String {
        format!("{}.{}.{pool}.dead", self.prefix, self.kind)
    }
    /// Delay before retry `n` (1-based); the last configured delay repeats.
    pub fn delay_ms(&self, n: usize) -> u64 {
        let i = n
            .saturating_sub(1)
            .min(self.retry_delays_ms.len().saturating_sub(1));
        self.retry_delays_ms.get(i).copied().unwrap_or(5_000)
    }

    /// Every queue of `pool`: work, one per distinct delay, dead.
    pub fn queues(&self, pool: &str) -> Vec<String> {
        let mut names = vec![self.work_queue(pool)];
        for &delay in &self.retry_delays_ms {
            let name = self.delay_queue(pool, delay);
            if !names.contains(&name) {
                names.push(name);
            }
        }
        names.push(self.dead_queue(pool));
        names
    }

    fn arguments(&self, extra: &[(&str, AMQPValue)]) -> FieldTable {
        let mut args = FieldTable::default();
        if self.queue_type == QueueType::Quorum {
            args.insert(
                "x-queue-type".into(),
                AMQPValue::LongString("quorum".into()),
            );
        }
        for (k, v) in extra {
            args.insert((*k).into(), v.clone());
        }
        args
    }

    /// Declares the exchange and every queue of `pool` (idempotent). Each queue is declared
    /// on a channel of its own, so a queue the broker refuses to redeclare (other arguments)
    /// closes only that channel; it is then checked passively and used as it is.
    pub async fn declare(&self, conn: &Connection, pool: &str) -> anyhow::Result<Vec<Declared>> {
        let channel = conn.create_channel().await?;
        channel
            .exchange_declare(
                self.exchange().into(),
                ExchangeKind::Direct,
                ExchangeDeclareOptions {
                    durable: true,
                    ..Default::default()
                },
                FieldTable::default(),
            )
            .await?;
        let mut results = vec![];
        let work = self.work_queue(pool);
        // Quorum queues limit redeliveries (RabbitMQ 4 defaults to 20 and then drops): set the
        // limit explicitly and send what exceeds it to the dead-letter queue, where an
        // operator sees it, instead of losing it.
        let work_args = match self.queue_type {
            QueueType::Quorum => self.arguments(&[
                (
                    "x-delivery-limit",
                    AMQPValue::LongUInt(QUORUM_DELIVERY_LIMIT),
                ),
                ("x-dead-letter-exchange", AMQPValue::LongString("".into())),
                (
                    "x-dead-letter-routing-key",
                    AMQPValue::LongString(self.dead_queue(pool).into()),
                ),
            ]),
            QueueType::Classic => self.arguments(&[]),
        };
        results.push(declare_queue(conn, &work, work_args).await?);
        channel
            .queue_bind(
                work.as_str().into(),
                self.exchange().into(),
                pool.into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await?;
        let mut seen = vec![];
        for &delay in &self.retry_delays_ms {
            if seen.contains(&delay) {
                continue;
            }
            seen.push(delay);
            let args = self.arguments(&[
                (
                    "x-message-ttl",
                    AMQPValue::LongUInt(u32::try_from(delay).unwrap_or(u32::MAX)),
                ),
                (
                    "x-dead-letter-exchange",
                    AMQPValue::LongString(self.exchange().into()),
                ),
                (
                    "x-dead-letter-routing-key",
                    AMQPValue::LongString(pool.into()),
                ),
            ]);
            results.push(declare_queue(conn, &self.delay_queue(pool, delay), args).await?);
        }
        results.push(declare_queue(conn, &self.dead_queue(pool), self.arguments(&[])).await?);
        let _ = channel.close(200, "declared".into()).await;
        Ok(results)
    }
}

fn is_precondition_failed(e: &lapin::Error) -> bool {
    matches!(e.kind(), lapin::ErrorKind::ProtocolError(amqp) if amqp.get_id() == 406)
}

/// Declares one durable queue; when it exists with other arguments, checks that it exists
/// and reports it instead of failing.
async fn declare_queue(
    conn: &Connection,
    name: &str,
    args: FieldTable,
) -> anyhow::Result<Declared> {
    let channel = conn.create_channel().await?;
    let durable = QueueDeclareOptions {
        durable: true,
        ..Default::default()
    };
    match channel.queue_declare(name.into(), durable, args).await {
        Ok(_) => {
            let _ = channel.close(200, "declared".into()).await;
            Ok(Declared::AsConfigured(name.to_string()))
        }
        Err(e) if is_precondition_failed(&e) => {
            // The broker closed that channel; look at the queue from a fresh one.
            let check = conn.create_channel().await?;
            check
                .queue_declare(
                    name.into(),
                    QueueDeclareOptions {
                        passive: true,
                        ..Default::default()
                    },
                    FieldTable::default(),
                )
                .await?;
            let _ = check.close(200, "checked".into()).await;
            Ok(Declared::Existing {
                queue: name.to_string(),
                reason: e.to_string(),
            })
        }
        Err(e) => Err(e.into()),
    }
}

/// Logs the queues that exist with other arguments than configured (once per declaration).
pub fn warn_existing(logger: &slog::Logger, declared: &[Declared]) {
    for d in declared {
        if let Declared::Existing { queue, reason } = d {
            slog::warn!(logger, "queue exists with other arguments than configured; using it as it is (see docs/operations.md)";
                "queue" => queue, "broker_said" => reason);
        }
    }
}

/// Opens a connection named for the management UI. `heartbeat_seconds` is asked of the broker
/// unless the URL already sets `heartbeat=`: with a short heartbeat, the broker notices a
/// stalled peer quickly and returns its unacknowledged deliveries to the queue.
pub async fn connect(
    url: &str,
    name: &str,
    heartbeat_seconds: Option<u16>,
) -> lapin::Result<Connection> {
    let mut uri: lapin::uri::AMQPUri = url.parse().map_err(|e: String| {
        lapin::Error::from(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("invalid AMQP URL: {e}"),
        ))
    })?;
    if uri.query.heartbeat.is_none() {
        uri.query.heartbeat = heartbeat_seconds;
    }
    let props = ConnectionProperties::default().with_connection_name(name.into());
    tokio::time::timeout(Duration::from_secs(10), Connection::connect_uri(uri, props))
        .await
        .unwrap_or_else(|_| {
            Err(lapin::Error::from(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "connect timed out",
            )))
        })
}

/// A channel with publisher confirms on.
pub async fn confirm_channel(conn: &Connection) -> lapin::Result<Channel> {
    let channel = conn.create_channel().await?;
    channel
        .confirm_select(ConfirmSelectOptions::default())
        .await?;
    Ok(channel)
}

/// A persistent JSON message's properties: its id, and headers for the dashboard (`x-attempt`,
/// `traceparent` when there is one, and `extra`).
fn message_properties(
    id: String,
    attempt: u32,
    traceparent: Option<&str>,
    extra: &[(&str, Option<&str>)],
) -> BasicProperties {
    let mut headers = FieldTable::default();
    headers.insert("x-attempt".into(), AMQPValue::LongUInt(attempt));
    let strings = extra.iter().copied().chain([("traceparent", traceparent)]);
    for (name, value) in strings {
        if let Some(v) = value {
            headers.insert(name.into(), AMQPValue::LongString(v.to_string().into()));
        }
    }
    BasicProperties::default()
        .with_delivery_mode(2)
        .with_content_type(ShortString::from("application/json"))
        .with_message_id(ShortString::from(id))
        .with_headers(headers)
}

fn job_properties(message: &JobMessage) -> BasicProperties {
    message_properties(
        message.generation_id.to_string(),
        message.attempt,
        message.traceparent.as_deref(),
        &[
            ("x-generator", Some(message.generator.as_str())),
            ("x-request-id", message.request_id.as_deref()),
        ],
    )
}

/// A channel in confirm mode that waits at most `timeout` for each confirm: a broker that
/// stops answering (black-holed, overloaded) turns into an error the caller can retry,
/// never a publish that waits forever.
pub struct ConfirmedPublisher {
    channel: Channel,
    timeout: Duration,
}

impl ConfirmedPublisher {
    /// Opens a confirm-mode channel on `conn`.
    pub async fn open(conn: &Connection, timeout: Duration) -> lapin::Result<Self> {
        Ok(Self {
            channel: confirm_channel(conn).await?,
            timeout,
        })
    }

    pub fn channel(&self) -> &Channel {
        &self.channel
    }

    /// Publishes `message` to `exchange`/`routing_key` and waits for the broker's confirm.
    pub async fn publish(
        &self,
        exchange: &str,
        routing_key: &str,
        message: &JobMessage,
    ) -> anyhow::Result<()> {
        let payload = serde_json::to_vec(message)?;
        self.publish_raw(exchange, routing_key, &payload, job_properties(message))
            .await
    }

    /// Publishes a webhook delivery message (its id is the delivery's).
    pub async fn publish_webhook(
        &self,
        exchange: &str,
        routing_key: &str,
        message: &crate::webhooks::WebhookMessage,
    ) -> anyhow::Result<()> {
        let payload = serde_json::to_vec(message)?;
        let props = message_properties(
            message.delivery_id.to_string(),
            message.attempt,
            message.traceparent.as_deref(),
            &[],
        );
        self.publish_raw(exchange, routing_key, &payload, props)
            .await
    }

    /// Publishes bytes as they are (a message that could not be read, to a dead-letter queue).
    pub async fn publish_bytes(
        &self,
        exchange: &str,
        routing_key: &str,
        payload: &[u8],
    ) -> anyhow::Result<()> {
        let props = BasicProperties::default().with_delivery_mode(2);
        self.publish_raw(exchange, routing_key, payload, props)
            .await
    }

    async fn publish_raw(
        &self,
        exchange: &str,
        routing_key: &str,
        payload: &[u8],
        properties: BasicProperties,
    ) -> anyhow::Result<()> {
        match tokio::time::timeout(
            self.timeout,
            publish_confirmed(&self.channel, exchange, routing_key, payload, properties),
        )
        .await
        {
            Ok(result) => result,
            Err(_) => anyhow::bail!(
                "the broker did not confirm within {} ms",
                self.timeout.as_millis()
            ),
        }
    }
}

/// The broker connection a process currently holds, for readiness probes.
#[derive(Clone, Default)]
pub struct BrokerLink(Arc<Mutex<Option<Arc<Connection>>>>);

impl BrokerLink {
    pub fn set(&self, conn: Option<Arc<Connection>>) {
        if let Ok(mut slot) = self.0.lock() {
            *slot = conn;
        }
    }

    /// Proves the broker answers: opens and closes a channel (two round trips) within
    /// `within`. A connection that merely looks open (a black-holed broker) fails.
    pub async fn probe(&self, within: Duration) -> bool {
        let conn = self.0.lock().ok().and_then(|slot| slot.clone());
        let Some(conn) = conn else {
            return false;
        };
        if !conn.status().connected() {
            return false;
        }
        let round_trip = async {
            let channel = conn.create_channel().await?;
            channel.close(200, "readiness probe".into()).await
        };
        matches!(tokio::time::timeout(within, round_trip).await, Ok(Ok(())))
    }
}

/// Publishes `message` to `exchange`/`routing_key` and waits for the broker's confirm.
async fn publish_confirmed(
    channel: &Channel,
    exchange: &str,
    routing_key: &str,
    payload: &[u8],
    properties: BasicProperties,
) -> anyhow::Result<()> {
    let confirm = channel
        .basic_publish(
            exchange.into(),
            routing_key.into(),
            BasicPublishOptions {
                mandatory: true,
                ..Default::default()
            },
            payload,
            properties,
        )
        .await?
        .await?;
    if !confirm.is_ack() {
        anyhow::bail!("the broker did not confirm the message");
    }
    if confirm.take_message().is_some() {
        anyhow::bail!("the message was unroutable (queue {routing_key} missing)");
    }
    Ok(())
}
