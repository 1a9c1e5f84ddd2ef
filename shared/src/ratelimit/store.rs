//! Where the limiter keeps its state: [`RedisStore`] (one atomic Lua script, shared by every API
//! replica) and [`MemoryStore`] (one process; unit tests). Both run the same GCRA step.

use std::{
    collections::HashMap,
    sync::Mutex,
    time::{Duration, Instant},
};

use async_trait::async_trait;

use super::Decision;
use crate::redis_pool::RedisPool;

/// A quota as the GCRA step uses it, in microseconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rate {
    /// Time one event "costs": period / count.
    pub interval_us: u64,
    /// The window: at most period / interval events fit in it (the burst).
    pub period_us: u64,
}

impl Rate {
    pub fn new(count: u32, period: Duration) -> Self {
        let period_us = u64::try_from(period.as_micros()).unwrap_or(u64::MAX);
        Self {
            interval_us: (period_us / u64::from(count.max(1))).max(1),
            period_us,
        }
    }
}

/// Whether an event is taken or the key only looked at.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// Take one event when allowed (a refused event takes nothing).
    Take,
    /// Only tell whether one more event would be allowed.
    Peek,
}

/// A limiter's storage: one GCRA step on one key, atomically.
#[async_trait]
pub trait Store: Send + Sync {
    async fn step(&self, key: &str, rate: Rate, step: Step) -> anyhow::Result<Decision>;
}

/// One GCRA step (the Lua script below is the same arithmetic). `tat` is the key's
/// theoretical arrival time: when it would be empty again. Returns the decision and, when an
/// event was taken, the new `tat` (the key then lives until it, at most one period).
pub fn gcra(now_us: u64, tat: Option<u64>, rate: Rate, step: Step) -> (Decision, Option<u64>) {
    let tat = tat.unwrap_or(now_us).max(now_us);
    let new_tat = tat.saturating_add(rate.interval_us);
    let allowed_at = new_tat.saturating_sub(rate.period_us);
    if allowed_at > now_us {
        let wait = Duration::from_micros(allowed_at - now_us);
        return (Decision::Limited { retry_after: wait }, None);
    }
    match step {
        Step::Take => (Decision::Allowed, Some(new_tat)),
        Step::Peek => (Decision::Allowed, None),
    }
}

/// The GCRA step in Redis, on the Redis server's clock (`TIME`) so that every API replica
/// agrees whatever their own clocks say. Numbers are microseconds (below 2^53: exact in Lua).
const SCRIPT: &str = r"
if redis.replicate_commands then redis.replicate_commands() end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local period = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1])) or now
if tat < now then tat = now end
local new_tat = tat + interval
local wait = new_tat - period - now
if wait > 0 then return {0, wait} end
if ARGV[3] == '1' then
  local ttl_ms = math.max(1, math.ceil((new_tat - now) / 1000))
  redis.call('SET', KEYS[1], string.format('%.0f', new_tat), 'PX', string.format('%.0f', ttl_ms))
end
return {1, 0}
";

/// Counters in Redis, shared by every process using the same Redis and key prefix.
pub struct RedisStore {
    pool: RedisPool,
    script: redis::Script,
}

impl RedisStore {
    pub fn new(pool: RedisPool) -> Self {
        Self {
            pool,
            script: redis::Script::new(SCRIPT),
        }
    }
}

#[async_trait]
impl Store for RedisStore {
    async fn step(&self, key: &str, rate: Rate, step: Step) -> anyhow::Result<Decision> {
        let mut conn = self
            .pool
            .get()
            .await
            .map_err(|e| anyhow::anyhow!("redis: {e}"))?;
        let (allowed, wait_us): (i64, i64) = self
            .script
            .key(key)
            .arg(rate.interval_us)
            .arg(rate.period_us)
            .arg(u8::from(step == Step::Take))
            .invoke_async(&mut *conn)
            .await?;
        Ok(if allowed == 1 {
            Decision::Allowed
        } else {
            Decision::Limited {
                retry_after: Duration::from_micros(wait_us.max(1).unsigned_abs()),
            }
        })
    }
}

/// Counters in this process only (tests, or a single process without Redis).
pub struct MemoryStore {
    started: Instant,
    keys: Mutex<HashMap<String, u64>>,
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self {
            started: Instant::now(),
            keys: Mutex::default(),
        }
    }
}

/// Past this many keys, expired ones are swept before a new one is added.
const MEMORY_SWEEP_AT: usize = 10_000;

#[async_trait]
impl Store for MemoryStore {
    async fn step(&self, key: &str, rate: Rate, step: Step) -> anyhow::Result<Decision> {
        let now = u64::try_from(self.started.elapsed().as_micros()).unwrap_or(u64::MAX);
        let mut keys = self.keys.lock().unwrap_or_else(|p| p.into_inner());
        let tat = keys.get(key).copied().filter(|&t| t > now);
        let (decision, new_tat) = gcra(now, tat, rate, step);
        if let Some(new_tat) = new_tat {
            if keys.len() >= MEMORY_SWEEP_AT {
                keys.retain(|_, t| *t > now);
            }
            keys.insert(key.to_string(), new_tat);
        }
        Ok(decision)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: u64 = 1_000_000;

    #[test]
    fn a_burst_of_count_events_passes_then_one_per_interval() {
        let rate = Rate::new(3, Duration::from_secs(60));
        assert_eq!(rate.interval_us, 20 * S);
        let mut tat = None;
        for _ in 0..3 {
            let (d, t) = gcra(1_000 * S, tat, rate, Step::Take);
            assert_eq!(d, Decision::Allowed);
            tat = t;
        }
        assert_eq!(tat, Some(1_060 * S), "the key lives one period");
        let (d, t) = gcra(1_000 * S, tat, rate, Step::Take);
        assert_eq!(
            d,
            Decision::Limited {
                retry_after: Duration::from_secs(20)
            }
        );
        assert_eq!(t, None, "a refused event takes nothing");
        // 20 s later there is room for exactly one.
        let (d, t) = gcra(1_020 * S, tat, rate, Step::Take);
        assert_eq!(d, Decision::Allowed);
        let (d, _) = gcra(1_020 * S, t, rate, Step::Take);
        assert!(matches!(d, Decision::Limited { .. }));
        // A key idle for a whole period is full again.
        let (d, _) = gcra(2_000 * S, t, rate, Step::Take);
        assert_eq!(d, Decision::Allowed);
    }

    #[test]
    fn peeking_takes_nothing() {
        let rate = Rate::new(1, Duration::from_secs(10));
        let (d, t) = gcra(0, None, rate, Step::Peek);
        assert_eq!((d, t), (Decision::Allowed, None));
        let (_, tat) = gcra(0, None, rate, Step::Take);
        let (d, t) = gcra(S, tat, rate, Step::Peek);
        assert_eq!(
            (d, t),
            (
                Decision::Limited {
                    retry_after: Duration::from_secs(9)
                },
                None
            )
        );
    }

    #[tokio::test]
    async fn the_memory_store_keeps_keys_apart() {
        let store = MemoryStore::default();
        let rate = Rate::new(1, Duration::from_secs(60));
        assert_eq!(
            store.step("a", rate, Step::Take).await.unwrap(),
            Decision::Allowed
        );
        assert!(matches!(
            store.step("a", rate, Step::Take).await.unwrap(),
            Decision::Limited { .. }
        ));
        assert_eq!(
            store.step("b", rate, Step::Take).await.unwrap(),
            Decision::Allowed
        );
    }

    /// The Lua script against the local Redis: the same decisions as [`gcra`], and the key
    /// expires by itself.
    #[tokio::test]
    async fn the_redis_script_limits_and_expires_its_keys() {
        let config = crate::Config::default().redis;
        let pool = crate::redis_pool::build_redis_pool(&config).unwrap();
        let store = RedisStore::new(pool.clone());
        let key = format!("test-{}:ratelimit-script", uuid::Uuid::new_v4().simple());
        let rate = Rate::new(2, Duration::from_secs(30));
        assert_eq!(
            store.step(&key, rate, Step::Peek).await.unwrap(),
            Decision::Allowed
        );
        let mut conn = pool.get().await.unwrap();
        let exists: bool = redis::cmd("EXISTS")
            .arg(&key)
            .query_async(&mut *conn)
            .await
            .unwrap();
        assert!(!exists, "peeking writes nothing");
        for _ in 0..2 {
            assert_eq!(
                store.step(&key, rate, Step::Take).await.unwrap(),
                Decision::Allowed
            );
        }
        let Decision::Limited { retry_after } = store.step(&key, rate, Step::Take).await.unwrap()
        else {
            panic!("the third event within the period passed");
        };
        assert!(
            retry_after > Duration::from_secs(14) && retry_after <= Duration::from_secs(15),
            "{retry_after:?}"
        );
        assert!(matches!(
            store.step(&key, rate, Step::Peek).await.unwrap(),
            Decision::Limited { .. }
        ));
        let ttl: i64 = redis::cmd("PTTL")
            .arg(&key)
            .query_async(&mut *conn)
            .await
            .unwrap();
        assert!(ttl > 29_000 && ttl <= 30_000, "{ttl}");
        let _: () = redis::cmd("DEL")
            .arg(&key)
            .query_async(&mut *conn)
            .await
            .unwrap();
    }
}
