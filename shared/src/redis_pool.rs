//! The Redis connection pool both binaries use for publishing, rate limits and readiness.

use std::time::Duration;

use bb8_redis::RedisConnectionManager;

use crate::config::RedisConfig;

pub type RedisPool = bb8::Pool<RedisConnectionManager>;

/// A lazily connecting Redis pool; checkouts wait at most the command timeout.
pub fn build_redis_pool(config: &RedisConfig) -> anyhow::Result<RedisPool> {
    let manager = RedisConnectionManager::new(config.url.expose())?;
    Ok(bb8::Pool::builder()
        .max_size(config.pool_size)
        .connection_timeout(Duration::from_millis(config.command_timeout_ms.max(1)))
        .build_unchecked(manager))
}

pub async fn ping(pool: &RedisPool) -> anyhow::Result<()> {
    let mut conn = pool
        .get()
        .await
        .map_err(|e| anyhow::anyhow!("redis: {e}"))?;
    let _: String = redis::cmd("PING").query_async(&mut *conn).await?;
    Ok(())
}
