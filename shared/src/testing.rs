//! Test support (feature `test-helpers`): a fresh PostgreSQL database per test, cloned from a
//! template that is migrated once per migration set; a SeaweedFS server per S3 test.

use std::sync::atomic::{AtomicU64, Ordering};

use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use tokio::sync::OnceCell;

pub mod fake_fal;
pub mod fake_idp;
pub mod fake_providers;
mod seaweedfs;
pub use seaweedfs::SeaweedFs;

/// The server to create test databases on (`BOARDS_TEST_DATABASE_URL`, any database on it).
pub fn admin_url() -> String {
    std::env::var("BOARDS_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

/// `url` with its database (path) replaced by `db`, keeping any query string.
pub fn with_database(url: &str, db: &str) -> String {
    let authority_start = url.find("://").map_or(0, |i| i + 3);
    let (head, rest) = url.split_at(authority_start);
    let query_at = rest.find('?').unwrap_or(rest.len());
    let (before_query, query) = rest.split_at(query_at);
    let authority = before_query.split('/').next().unwrap_or_default();
    format!("{head}{authority}/{db}{query}")
}

/// A name that changes whenever the migrations change, so stale templates are never reused.
/// The migrations this binary embeds count as well as the files on disk: a binary built before
/// a migration was added (a benchmark, another checkout's build) must not make a template under
/// the name the current files give, without that migration.
fn template_name() -> String {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    crate::db::migration_names().hash(&mut h);
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../migrations");
    let mut files: Vec<_> = walk(&dir);
    files.sort();
    for file in files {
        file.hash(&mut h);
        std::fs::read(&file).unwrap_or_default().hash(&mut h);
    }
    format!("boards_test_tpl_{:016x}", h.finish())
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return vec![];
    };
    entries
        .flatten()
        .flat_map(|e| {
            let p = e.path();
            if p.is_dir() {
                walk(&p)
            } else {
                vec![p]
            }
        })
        .collect()
}

static TEMPLATE: OnceCell<String> = OnceCell::const_new();
static COUNTER: AtomicU64 = AtomicU64::new(0);

async fn admin() -> anyhow::Result<AsyncPgConnection> {
    Ok(AsyncPgConnection::establish(&admin_url()).await?)
}

async fn ensure_template() -> anyhow::Result<String> {
    TEMPLATE
        .get_or_try_init(|| async {
            let name = template_name();
            let mut conn = admin().await?;
            // Serialise template creation across test processes.
            diesel::sql_query("SELECT pg_advisory_lock(727274)")
                .execute(&mut conn)
                .await?;
            let result = async {
                let exists: i64 = diesel::select(diesel::dsl::sql::<diesel::sql_types::BigInt>(
                    &format!("(SELECT count(*) FROM pg_database WHERE datname = '{name}')"),
                ))
                .get_result(&mut conn)
                .await?;
                if exists == 0 {
                    let building = format!("{name}_building");
                    diesel::sql_query(format!("DROP DATABASE IF EXISTS {building} WITH (FORCE)"))
                        .execute(&mut conn)
                        .await?;
                    diesel::sql_query(format!("CREATE DATABASE {building}"))
                        .execute(&mut conn)
                        .await?;
                    crate::db::run_migrations(&with_database(&admin_url(), &building)).await?;
                    diesel::sql_query(format!("ALTER DATABASE {building} RENAME TO {name}"))
                        .execute(&mut conn)
                        .await?;
                }
                anyhow::Ok(())
            }
            .await;
            diesel::sql_query("SELECT pg_advisory_unlock(727274)")
                .execute(&mut conn)
                .await?;
            result?;
            Ok(name)
        })
        .await
        .cloned()
}

/// A database of its own for one test; dropped (forcefully) when this value is dropped.
pub struct TestDb {
    name: String,
    url: String,
}

impl TestDb {
    /// Clones the migrated template into a new database.
    pub async fn new() -> anyhow::Result<Self> {
        let template = ensure_template().await?;
        let name = format!(
            "boards_test_{}_{}_{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed),
            uuid::Uuid::new_v4()
                .simple()
                .to_string()
                .get(..8)
                .unwrap_or("x")
        );
        let mut conn = admin().await?;
        diesel::sql_query(format!("CREATE DATABASE {name} TEMPLATE {template}"))
            .execute(&mut conn)
            .await?;
        Ok(Self {
            url: with_database(&admin_url(), &name),
            name,
        })
    }

    /// A new, empty (unmigrated) database.
    pub async fn empty() -> anyhow::Result<Self> {
        let name = format!("boards_test_empty_{}", uuid::Uuid::new_v4().simple());
        let mut conn = admin().await?;
        diesel::sql_query(format!("CREATE DATABASE {name}"))
            .execute(&mut conn)
            .await?;
        Ok(Self {
            url: with_database(&admin_url(), &name),
            name,
        })
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub async fn connect(&self) -> anyhow::Result<AsyncPgConnection> {
        Ok(AsyncPgConnection::establish(&self.url).await?)
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let name = self.name.clone();
        // Drop runs outside any async context we can rely on: use a short-lived runtime.
        let _ = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            rt.block_on(async move {
                if let Ok(mut conn) = admin().await {
                    let _ =
                        diesel::sql_query(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                            .execute(&mut conn)
                            .await;
                }
            });
        })
        .join();
    }
}

/// Resident memory of process `pid`, in KiB (0 when unknown); Linux only.
pub fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|n| n.parse().ok())
        })
        .unwrap_or(0)
}

/// Deletes the Redis keys a test or benchmark left under its channel prefix (board replay
/// streams, rate-limit counters): they would otherwise live until they expire. An empty prefix
/// (production's) is never touched.
pub fn delete_redis_keys(url: &str, prefix: &str) {
    if prefix.is_empty() {
        return;
    }
    let Ok(client) = redis::Client::open(url) else {
        return;
    };
    let Ok(mut conn) = client.get_connection_with_timeout(std::time::Duration::from_secs(2)) else {
        return;
    };
    let keys: Vec<String> =
        match redis::Commands::scan_match::<_, String>(&mut conn, format!("{prefix}*")) {
            Ok(iter) => iter.filter_map(Result::ok).collect(),
            Err(_) => return,
        };
    for chunk in keys.chunks(500) {
        let _: redis::RedisResult<()> = redis::Commands::del(&mut conn, chunk);
    }
}

/// Deletes a test's RabbitMQ topology (durable queues outlive the test otherwise): the
/// queues of `pools` as `config` names them, and the exchange.
pub fn delete_topology(config: &crate::Config, pools: &[&str]) {
    let url = config.amqp.url.expose().to_string();
    let jobs = crate::queue::Topology::new(config);
    let webhooks = crate::queue::Topology::webhooks(config);
    let mut doomed: Vec<(crate::queue::Topology, String)> = pools
        .iter()
        .map(|p| (jobs.clone(), (*p).to_string()))
        .collect();
    doomed.push((webhooks, crate::queue::WEBHOOK_POOL.to_string()));
    let _ = std::thread::spawn(move || {
        let Ok(rt) = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        else {
            return;
        };
        rt.block_on(async move {
            let Ok(conn) = crate::queue::connect(&url, "test cleanup", None).await else {
                return;
            };
            let Ok(ch) = conn.create_channel().await else {
                return;
            };
            let mut exchanges = vec![];
            for (topology, pool) in doomed {
                for q in topology.queues(&pool) {
                    let _ = ch.queue_delete(q.as_str().into(), Default::default()).await;
                }
                if !exchanges.contains(&topology.exchange()) {
                    exchanges.push(topology.exchange());
                }
            }
            for exchange in exchanges {
                let _ = ch
                    .exchange_delete(exchange.as_str().into(), Default::default())
                    .await;
            }
            let _ = conn.close(200, "done".into()).await;
        });
    })
    .join();
}

#[cfg(test)]
mod tests {
    #[test]
    fn database_names_are_swapped_in_urls() {
        assert_eq!(
            super::with_database("postgres://u:p@h:5432/postgres?sslmode=disable", "x"),
            "postgres://u:p@h:5432/x?sslmode=disable"
        );
        assert_eq!(super::with_database("postgres://h", "x"), "postgres://h/x");
    }
}

/// What a [`capture_logger`] logged: JSON records, in order.
#[derive(Clone, Default)]
pub struct LogCapture(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for LogCapture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if let Ok(mut out) = self.0.lock() {
            out.extend_from_slice(buf);
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl LogCapture {
    /// Every record so far, with its message under `message`.
    pub fn records(&self) -> Vec<serde_json::Value> {
        let text = self
            .0
            .lock()
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default();
        text.lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }
}

/// A logger writing JSON records (as production's) into memory, synchronously.
pub fn capture_logger() -> (slog::Logger, LogCapture) {
    use slog::Drain as _;
    let capture = LogCapture::default();
    let drain = slog_json::Json::new(capture.clone())
        .add_key_value(slog::o!(
            "message" => slog::PushFnValue(|rec, ser| ser.emit(rec.msg())),
        ))
        .build();
    let logger = slog::Logger::root(std::sync::Mutex::new(drain).fuse(), slog::o!());
    (logger, capture)
}
