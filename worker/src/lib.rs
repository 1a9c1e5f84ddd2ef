//! Boards worker daemon. This first version connects to its dependencies and waits for a
//! shutdown signal; the job pipeline (RabbitMQ consumer, generators, storage, progress) is
//! built on top of [`run`].

use std::time::Duration;

use anyhow::Context as _;
use boards_shared::{
    config::redact_url,
    db::{self, DbMetrics},
    Config,
};
use slog::{info, Logger};

/// Connects to PostgreSQL and RabbitMQ, then waits until `shutdown` resolves.
pub async fn run(
    config: Config,
    logger: Logger,
    shutdown: impl std::future::Future<Output = ()>,
) -> anyhow::Result<()> {
    let pool = db::build_pool(&config.database, std::sync::Arc::new(DbMetrics::default()));
    tokio::time::timeout(Duration::from_secs(30), db::ping(&pool))
        .await
        .map_err(|_| anyhow::anyhow!("timed out"))
        .and_then(|r| r)
        .with_context(|| {
            format!(
                "PostgreSQL is unreachable at {}",
                redact_url(config.database.url.expose())
            )
        })?;
    let amqp = lapin::Connection::connect(
        config.amqp.url.expose(),
        lapin::ConnectionProperties::default().with_connection_name("boards-worker".into()),
    )
    .await
    .with_context(|| {
        format!(
            "RabbitMQ is unreachable at {}",
            redact_url(config.amqp.url.expose())
        )
    })?;
    info!(logger, "worker started"; "concurrency" => config.worker.concurrency);
    shutdown.await;
    info!(logger, "shutting down");
    amqp.close(200, "worker shutdown".into()).await.ok();
    Ok(())
}

/// Resolves on SIGTERM or SIGINT.
pub async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
