//! Readiness (`/ready` of the API and of the worker): every dependency must answer a round
//! trip within a bound, not merely look connected.

use std::{future::Future, time::Duration};

use serde_json::{json, Map, Value};

use crate::{db::PgPool, redis_pool::RedisPool};

/// How long one dependency may take to answer.
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// Probes PostgreSQL, Redis, the broker (`broker` proves a round trip, see
/// [`crate::queue::BrokerLink::probe`]) and the artifact store concurrently. Returns whether all answered and the
/// body naming each failing dependency.
pub async fn check(
    pool: &PgPool,
    redis: &RedisPool,
    broker: impl Future<Output = bool>,
    storage: &dyn crate::storage::Storage,
) -> (bool, Value) {
    let (db, redis, broker, store) = tokio::join!(
        tokio::time::timeout(PROBE_TIMEOUT, crate::db::ping(pool)),
        tokio::time::timeout(PROBE_TIMEOUT, crate::redis_pool::ping(redis)),
        broker,
        tokio::time::timeout(PROBE_TIMEOUT, storage.probe()),
    );
    let checks = [
        ("postgresql", matches!(db, Ok(Ok(())))),
        ("redis", matches!(redis, Ok(Ok(())))),
        ("rabbitmq", broker),
        ("storage", matches!(store, Ok(Ok(())))),
    ];
    let failing: Vec<&str> = checks
        .iter()
        .filter(|(_, ok)| !ok)
        .map(|(n, _)| *n)
        .collect();
    let ok = failing.is_empty();
    let body = json!({
        "status": if ok { "ready" } else { "unavailable" },
        "checks": checks
            .iter()
            .map(|(n, ok)| (n.to_string(), json!(if *ok { "ok" } else { "unavailable" })))
            .collect::<Map<_, _>>(),
        "failing": failing,
    });
    (ok, body)
}
