//! The RabbitMQ side: connect (and reconnect with backoff), declare the topology, consume the
//! pools' queues with manual ack and a bounded prefetch, run jobs concurrently, settle messages.

use std::{sync::Arc, time::Duration};

use boards_shared::{
    jobs::{JobMessage, JOB_MESSAGE_VERSION},
    queue::{self, WEBHOOK_POOL},
    telemetry::{FinishedSpan, KeyValue, SpanKind},
    trace::{self, TraceContext},
};
use futures::StreamExt as _;
use lapin::{
    message::Delivery,
    options::{
        BasicAckOptions, BasicCancelOptions, BasicConsumeOptions, BasicNackOptions, BasicQosOptions,
    },
    types::FieldTable,
};
use slog::{info, warn};
use tokio::{sync::Semaphore, task::JoinSet};
use tokio_util::sync::CancellationToken;

use crate::{
    env::WorkerEnv,
    job::{self, Settle},
    webhooks,
};

/// Consumes until `shutdown`; then stops consuming and drains running jobs.
pub async fn consume(env: Arc<WorkerEnv>, shutdown: CancellationToken) {
    let mut backoff = Duration::from_millis(200);
    let mut jobs: JoinSet<()> = JoinSet::new();
    let slots = Arc::new(Semaphore::new(env.config.worker.concurrency));
    while !shutdown.is_cancelled() {
        match session(&env, &shutdown, &mut jobs, &slots).await {
            Ok(()) => break,
            Err(e) => {
                env.broker.set(None);
                warn!(env.logger, "RabbitMQ session ended; reconnecting"; "error" => format!("{e:#}"),
                    "retry_in_ms" => backoff.as_millis() as u64);
                tokio::select! {
                    _ = shutdown.cancelled() => break,
                    _ = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(Duration::from_secs(10));
            }
        }
    }
    env.broker.set(None);
    info!(env.logger, "draining running jobs"; "running" => jobs.len());
    while jobs.join_next().await.is_some() {}
}

async fn session(
    env: &Arc<WorkerEnv>,
    shutdown: &CancellationToken,
    jobs: &mut JoinSet<()>,
    slots: &Arc<Semaphore>,
) -> anyhow::Result<()> {
    let conn = queue::connect(
        env.config.amqp.url.expose(),
        &format!("boards-worker {}", env.worker_id),
        Some(env.config.amqp.heartbeat_seconds),
    )
    .await?;
    let conn = Arc::new(conn);
    let consume_channel = conn.create_channel().await?;
    let publish_channel = Arc::new(
        queue::ConfirmedPublisher::open(
            &conn,
            Duration::from_millis(env.config.amqp.confirm_timeout_ms),
        )
        .await?,
    );
    let prefetch = u16::try_from(env.config.worker.concurrency).unwrap_or(u16::MAX);
    consume_channel
        .basic_qos(prefetch, BasicQosOptions { global: false })
        .await?;
    let mut streams = vec![];
    for pool in &env.config.worker.pools {
        let declared = env.topology.declare(&conn, pool).await?;
        queue::warn_existing(&env.logger, &declared);
        let consumer = consume_channel
            .basic_consume(
                env.topology.work_queue(pool).into(),
                format!("{}-{pool}", env.worker_id).into(),
                BasicConsumeOptions::default(),
                FieldTable::default(),
            )
            .await?;
        streams.push(consumer);
    }
    // Webhook deliveries on a channel of their own: their prefetch does not depend on the
    // job concurrency (a GPU worker running one job at a time still sends webhooks).
    let webhook_channel = conn.create_channel().await?;
    webhook_channel
        .basic_qos(webhooks::CONCURRENCY, BasicQosOptions { global: false })
        .await?;
    let declared = env.webhook_topology.declare(&conn, WEBHOOK_POOL).await?;
    queue::warn_existing(&env.logger, &declared);
    let webhook_tag = format!("{}-webhooks", env.worker_id);
    let mut webhook_deliveries = webhook_channel
        .basic_consume(
            env.webhook_topology.work_queue(WEBHOOK_POOL).into(),
            webhook_tag.as_str().into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await?;
    let webhook_slots = Arc::new(Semaphore::new(usize::from(webhooks::CONCURRENCY)));
    env.broker.set(Some(conn.clone()));
    info!(env.logger, "consuming"; "pools" => env.config.worker.pools.join(","), "prefetch" => prefetch);
    let mut deliveries = futures::stream::select_all(streams);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => {
                for pool in &env.config.worker.pools {
                    let _ = consume_channel
                        .basic_cancel(format!("{}-{pool}", env.worker_id).into(), BasicCancelOptions::default())
                        .await;
                }
                let _ = webhook_channel
                    .basic_cancel(webhook_tag.as_str().into(), BasicCancelOptions::default())
                    .await;
                info!(env.logger, "stopped consuming");
                // Jobs keep running (their grace period starts now); their acks still need
                // this connection, so wait for them before it closes.
                while jobs.join_next().await.is_some() {}
                let _ = conn.close(200, "worker shutdown".into()).await;
                return Ok(());
            }
            Some(_) = jobs.join_next(), if !jobs.is_empty() => {}
            next = deliveries.next() => {
                let delivery = match next {
                    Some(Ok(d)) => d,
                    Some(Err(e)) => anyhow::bail!("consumer error: {e}"),
                    None => anyhow::bail!("the broker closed the consumer"),
                };
                let permit = slots.clone().acquire_owned().await?;
                let (env, shutdown, publish_channel) = (env.clone(), shutdown.clone(), publish_channel.clone());
                jobs.spawn(async move {
                    handle(env, delivery, shutdown, publish_channel).await;
                    drop(permit);
                });
            }
            next = webhook_deliveries.next() => {
                let delivery = match next {
                    Some(Ok(d)) => d,
                    Some(Err(e)) => anyhow::bail!("webhook consumer error: {e}"),
                    None => anyhow::bail!("the broker closed the webhook consumer"),
                };
                let permit = webhook_slots.clone().acquire_owned().await?;
                let (env, publish_channel) = (env.clone(), publish_channel.clone());
                jobs.spawn(async move {
                    webhooks::handle(env, delivery, publish_channel).await;
                    drop(permit);
                });
            }
        }
        if !conn.status().connected() {
            anyhow::bail!("connection lost");
        }
    }
}

fn pool_of_delivery(delivery: &Delivery) -> String {
    delivery.routing_key.as_str().to_string()
}

async fn handle(
    env: Arc<WorkerEnv>,
    delivery: Delivery,
    shutdown: CancellationToken,
    publish: Arc<queue::ConfirmedPublisher>,
) {
    let message: JobMessage = match serde_json::from_slice(&delivery.data) {
        Ok(m) => m,
        Err(e) => {
            warn!(env.logger, "unreadable job message; dead-lettering"; "error" => %e);
            let pool = pool_of_delivery(&delivery);
            let raw = String::from_utf8_lossy(&delivery.data).to_string();
            let dead = JobMessage {
                v: JOB_MESSAGE_VERSION,
                generation_id: uuid::Uuid::nil(),
                generator: format!("unreadable: {raw:.200}"),
                attempt: 0,
                request_id: None,
                traceparent: None,
                enqueued_at: chrono::Utc::now(),
            };
            let _ = publish
                .publish("", &env.topology.dead_queue(&pool), &dead)
                .await;
            let _ = delivery.ack(BasicAckOptions::default()).await;
            return;
        }
    };
    if message.v != JOB_MESSAGE_VERSION {
        warn!(env.logger, "unknown job message version; dead-lettering"; "version" => message.v);
        let _ = publish
            .publish(
                "",
                &env.topology.dead_queue(&pool_of_delivery(&delivery)),
                &message,
            )
            .await;
        let _ = delivery.ack(BasicAckOptions::default()).await;
        return;
    }
    let pool = pool_of_delivery(&delivery);
    // The job continues the trace of the request that created it (or starts one).
    let parent = message.traceparent.as_deref().and_then(TraceContext::parse);
    let trace = parent.map_or_else(TraceContext::root, |p| p.child());
    let started = std::time::SystemTime::now();
    let settle = trace::scope(trace, job::run(env.clone(), message.clone(), shutdown)).await;
    env.telemetry.record(FinishedSpan {
        name: format!("job {}", message.generator).into(),
        kind: SpanKind::Consumer,
        trace,
        parent,
        start: started,
        end: std::time::SystemTime::now(),
        attributes: vec![
            KeyValue::new("generation_id", message.generation_id.to_string()),
            KeyValue::new("generator", message.generator.clone()),
            KeyValue::new("attempt", i64::from(message.attempt)),
            KeyValue::new("outcome", settle.name()),
        ],
        error: match &settle {
            Settle::Retry { reason, .. } | Settle::Dead { reason } => Some(reason.clone()),
            _ => None,
        },
    });
    let result = match settle {
        Settle::Ack => delivery
            .ack(BasicAckOptions::default())
            .await
            .map_err(anyhow::Error::from),
        Settle::Requeue => delivery
            .nack(BasicNackOptions {
                requeue: true,
                multiple: false,
            })
            .await
            .map_err(anyhow::Error::from),
        Settle::Retry { attempt, .. } => {
            let next = JobMessage {
                attempt,
                ..message.clone()
            };
            // `attempt` is the next delivery's number: the delay of retry `attempt - 1`.
            let queue_name = env
                .topology
                .retry_queue(&pool, (attempt as usize).saturating_sub(1));
            match publish.publish("", &queue_name, &next).await {
                Ok(()) => delivery
                    .ack(BasicAckOptions::default())
                    .await
                    .map_err(anyhow::Error::from),
                Err(e) => {
                    // Not confirmed: let the broker redeliver the original instead.
                    let _ = delivery
                        .nack(BasicNackOptions {
                            requeue: true,
                            multiple: false,
                        })
                        .await;
                    Err(e)
                }
            }
        }
        Settle::Dead { .. } => {
            match publish
                .publish("", &env.topology.dead_queue(&pool), &message)
                .await
            {
                Ok(()) => delivery
                    .ack(BasicAckOptions::default())
                    .await
                    .map_err(anyhow::Error::from),
                Err(e) => {
                    let _ = delivery.ack(BasicAckOptions::default()).await;
                    Err(e)
                }
            }
        }
    };
    if let Err(e) = result {
        warn!(env.logger, "settling a job message failed (it will be redelivered)";
            "generation_id" => %message.generation_id, "error" => format!("{e:#}"));
    }
}
