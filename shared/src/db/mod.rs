//! PostgreSQL access: the connection pool, embedded migrations, the diesel schema and models.

pub mod models;
pub mod schema;

use std::{
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc,
    },
    time::Duration,
};

use diesel::migration::MigrationSource;
use diesel_async::{
    async_connection_wrapper::AsyncConnectionWrapper,
    pooled_connection::{AsyncDieselConnectionManager, ManagerConfig, RecyclingMethod},
    AsyncConnection, AsyncPgConnection, RunQueryDsl, SimpleAsyncConnection as _,
};
use diesel_migrations::{embed_migrations, EmbeddedMigrations, MigrationHarness};
use futures::FutureExt as _;

use crate::config::DatabaseConfig;

pub use schema::boards as tables;

/// Migrations compiled into the binaries (`boards-api migrate` runs them).
pub const MIGRATIONS: EmbeddedMigrations = embed_migrations!("../migrations");

pub type PgPool = bb8::Pool<AsyncDieselConnectionManager<AsyncPgConnection>>;
pub type PgConn<'a> = bb8::PooledConnection<'a, AsyncDieselConnectionManager<AsyncPgConnection>>;
pub type PoolError = bb8::RunError<diesel_async::pooled_connection::PoolError>;

/// Counters over every connection of a pool.
#[derive(Debug, Default)]
pub struct DbMetrics {
    queries: AtomicU64,
}

impl DbMetrics {
    /// SQL statements started so far.
    pub fn queries(&self) -> u64 {
        AtomicU64::load(&self.queries, Ordering::Relaxed)
    }
}

struct CountQueries(Arc<DbMetrics>);

impl diesel::connection::Instrumentation for CountQueries {
    fn on_connection_event(&mut self, event: diesel::connection::InstrumentationEvent<'_>) {
        if let diesel::connection::InstrumentationEvent::StartQuery { query, .. } = event {
            if std::env::var("BOARDS_DEBUG_SQL").is_ok() {
                eprintln!(
                    "SQL {}",
                    query.to_string().chars().take(120).collect::<String>()
                );
            }
            self.0.queries.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Builds the pool without connecting: connections are opened on demand, so a process starts
/// (and reports itself unready) while PostgreSQL is down, and recovers when it comes back.
pub fn build_pool(config: &DatabaseConfig, metrics: Arc<DbMetrics>) -> PgPool {
    let statement_timeout = config.statement_timeout_ms;
    let idle_in_transaction = config.idle_in_transaction_timeout_ms;
    let connect_timeout = Duration::from_millis(config.connect_timeout_ms);
    let mut manager_config = ManagerConfig::<AsyncPgConnection>::default();
    // No `SELECT 1` before every checkout: a broken connection is detected when it fails and
    // is then discarded by the pool.
    manager_config.recycling_method = RecyclingMethod::Fast;
    manager_config.custom_setup = Box::new(move |url| {
        let url = url.to_string();
        let metrics = metrics.clone();
        async move {
            let mut conn =
                tokio::time::timeout(connect_timeout, AsyncPgConnection::establish(&url))
                    .await
                    .map_err(|_| {
                        diesel::ConnectionError::BadConnection("connect timed out".into())
                    })??;
            diesel::sql_query(format!("SET statement_timeout = {statement_timeout}"))
                .execute(&mut conn)
                .await
                .map_err(diesel::ConnectionError::CouldntSetupConfiguration)?;
            // A process stalled inside a transaction (paused, partitioned) must not hold its
            // row locks forever: PostgreSQL ends such a session after this long.
            diesel::sql_query(format!(
                "SET idle_in_transaction_session_timeout = {idle_in_transaction}"
            ))
            .execute(&mut conn)
            .await
            .map_err(diesel::ConnectionError::CouldntSetupConfiguration)?;
            conn.set_instrumentation(CountQueries(metrics));
            Ok(conn)
        }
        .boxed()
    });
    let manager =
        AsyncDieselConnectionManager::new_with_config(config.url.expose(), manager_config);
    bb8::Pool::builder()
        .max_size(config.pool_size + config.max_overflow)
        .min_idle(Some(config.pool_size.min(2)))
        .test_on_check_out(false)
        .connection_timeout(connect_timeout)
        .idle_timeout(Some(Duration::from_secs(300)))
        .build_unchecked(manager)
}

/// Runs every pending migration against `url` (blocking work moved off the runtime).
pub async fn run_migrations(url: &str) -> anyhow::Result<Vec<String>> {
    let url = url.to_string();
    tokio::task::spawn_blocking(move || {
        let mut conn =
            <AsyncConnectionWrapper<AsyncPgConnection> as diesel::Connection>::establish(&url)?;
        let applied = conn
            .run_pending_migrations(MIGRATIONS)
            .map_err(|e| anyhow::anyhow!("migration failed: {e}"))?;
        Ok(applied.into_iter().map(|v| v.to_string()).collect())
    })
    .await?
}

/// Whether `url`'s database lacks migrations this binary knows.
pub async fn has_pending_migrations(url: &str) -> anyhow::Result<bool> {
    let url = url.to_string();
    tokio::task::spawn_blocking(move || {
        let mut conn =
            <AsyncConnectionWrapper<AsyncPgConnection> as diesel::Connection>::establish(&url)?;
        conn.has_pending_migration(MIGRATIONS)
            .map_err(|e| anyhow::anyhow!("cannot read migration state: {e}"))
    })
    .await?
}

/// Reverts every migration (tests prove down.sql works).
pub async fn revert_all_migrations(url: &str) -> anyhow::Result<usize> {
    let url = url.to_string();
    tokio::task::spawn_blocking(move || {
        let mut conn =
            <AsyncConnectionWrapper<AsyncPgConnection> as diesel::Connection>::establish(&url)?;
        let reverted = conn
            .revert_all_migrations(MIGRATIONS)
            .map_err(|e| anyhow::anyhow!("revert failed: {e}"))?;
        Ok(reverted.len())
    })
    .await?
}

/// Names of the migrations compiled in, in order.
pub fn migration_names() -> Vec<String> {
    MigrationSource::<diesel::pg::Pg>::migrations(&MIGRATIONS)
        .map(|ms| ms.iter().map(|m| m.name().to_string()).collect())
        .unwrap_or_default()
}

/// `SELECT 1` through the pool, for readiness checks.
pub async fn ping(pool: &PgPool) -> anyhow::Result<()> {
    let mut conn = pool.get().await.map_err(|e| anyhow::anyhow!("{e}"))?;
    conn.batch_execute("SELECT 1").await?;
    Ok(())
}

/// Names `trace` as the trace of the current transaction (the setting `boards.traceparent`,
/// for this transaction only), so the webhook deliveries its changes cause are sent in that
/// trace. Outside a transaction it would last one statement: call it inside one. Nothing is
/// sent without a trace.
pub async fn set_transaction_trace(
    conn: &mut AsyncPgConnection,
    trace: Option<crate::trace::TraceContext>,
) -> diesel::QueryResult<()> {
    let Some(trace) = trace else {
        return Ok(());
    };
    // One simple-protocol round trip: a bound `sql_query` is not a cached statement, and would
    // take two (prepare, then execute). The header is ours: hex digits and dashes only.
    conn.batch_execute(&format!(
        "SELECT set_config('boards.traceparent', '{}', true)",
        trace.header()
    ))
    .await
}
