//! RabbitMQ topology and publishing (lapin). Names an operator can read in the management UI:
//!
//! | name | kind | purpose |
//! |---|---|---|
//! | `{p}.jobs` | direct exchange | job messages, routing key = pool |
//! | `{p}.jobs.{pool}` | quorum-less durable queue | work queue of a pool |
//! | `{p}.jobs.{pool}.retry.{n}` | durable queue, TTL | delay before retry n; dead-letters back to `{p}.jobs` |
//! | `{p}.jobs.{pool}.dead` | durable queue | jobs that exhausted their attempts |

use std::time::Duration;

use lapin::{
    options::{
        BasicPublishOptions, ConfirmSelectOptions, ExchangeDeclareOptions, QueueBindOptions,
        QueueDeclareOptions,
    },
    types::{AMQPValue, FieldTable, ShortString},
    BasicProperties, Channel, Connection, ConnectionProperties, ExchangeKind,
};

use crate::jobs::JobMessage;

/// The queue names of one deployment (prefix) and its retry delays.
#[derive(Clone, Debug)]
pub struct Topology {
    pub prefix: String,
    pub retry_delays_ms: Vec<u64>,
}

impl Topology {
    pub fn exchange(&self) -> String {
        format!("{}.jobs", self.prefix)
    }
    pub fn work_queue(&self, pool: &str) -> String {
        format!("{}.jobs.{pool}", self.prefix)
    }
    pub fn retry_queue(&self, pool: &str, n: usize) -> String {
        format!("{}.jobs.{pool}.retry.{n}", self.prefix)
    }
    pub fn dead_queue(&self, pool: &str) -> String {
        format!("{}.jobs.{pool}.dead", self.prefix)
    }
    /// Delay before retry `n` (1-based); the last configured delay repeats.
    pub fn delay_ms(&self, n: usize) -> u64 {
        let i = n
            .saturating_sub(1)
            .min(self.retry_delays_ms.len().saturating_sub(1));
        self.retry_delays_ms.get(i).copied().unwrap_or(5_000)
    }

    /// Declares the exchange and every queue of `pool` (idempotent).
    pub async fn declare(&self, channel: &Channel, pool: &str) -> lapin::Result<()> {
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
        let durable = QueueDeclareOptions {
            durable: true,
            ..Default::default()
        };
        channel
            .queue_declare(self.work_queue(pool).into(), durable, FieldTable::default())
            .await?;
        channel
            .queue_bind(
                self.work_queue(pool).into(),
                self.exchange().into(),
                pool.into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await?;
        for n in 1..=self.retry_delays_ms.len() {
            let mut args = FieldTable::default();
            args.insert(
                "x-message-ttl".into(),
                AMQPValue::LongUInt(self.delay_ms(n) as u32),
            );
            args.insert(
                "x-dead-letter-exchange".into(),
                AMQPValue::LongString(self.exchange().into()),
            );
            args.insert(
                "x-dead-letter-routing-key".into(),
                AMQPValue::LongString(pool.into()),
            );
            channel
                .queue_declare(self.retry_queue(pool, n).into(), durable, args)
                .await?;
        }
        channel
            .queue_declare(self.dead_queue(pool).into(), durable, FieldTable::default())
            .await?;
        Ok(())
    }
}

/// Opens a connection named for the management UI.
pub async fn connect(url: &str, name: &str) -> lapin::Result<Connection> {
    let props = ConnectionProperties::default().with_connection_name(name.into());
    tokio::time::timeout(Duration::from_secs(10), Connection::connect(url, props))
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

fn properties(message: &JobMessage) -> BasicProperties {
    let mut headers = FieldTable::default();
    headers.insert("x-attempt".into(), AMQPValue::LongUInt(message.attempt));
    headers.insert(
        "x-generator".into(),
        AMQPValue::LongString(message.generator.clone().into()),
    );
    if let Some(r) = &message.request_id {
        headers.insert(
            "x-request-id".into(),
            AMQPValue::LongString(r.clone().into()),
        );
    }
    BasicProperties::default()
        .with_delivery_mode(2)
        .with_content_type(ShortString::from("application/json"))
        .with_message_id(ShortString::from(message.generation_id.to_string()))
        .with_headers(headers)
}

/// Publishes `message` to `exchange`/`routing_key` and waits for the broker's confirm.
pub async fn publish_confirmed(
    channel: &Channel,
    exchange: &str,
    routing_key: &str,
    message: &JobMessage,
) -> anyhow::Result<()> {
    let payload = serde_json::to_vec(message)?;
    let confirm = channel
        .basic_publish(
            exchange.into(),
            routing_key.into(),
            BasicPublishOptions {
                mandatory: true,
                ..Default::default()
            },
            &payload,
            properties(message),
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
