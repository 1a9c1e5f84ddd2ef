//! The job state machine on `boards.generations` + `boards.job_runs`. Every status change is a
//! conditional update, and every write a worker makes while it runs a job is **fenced** by its
//! [`Claim`]: the run's row in `job_runs` must still name this worker and this attempt. A worker
//! that lost its claim (paused past its lease and reaped, cancelled, finished elsewhere) sees
//! zero rows and stops; its late writes change nothing.
//!
//! `job_runs` keeps one row per generation for its whole life (a finished run leaves its row
//! with the lease ended), so `attempt` only grows and `(generation, attempt)` names one run.

use chrono::{DateTime, Utc};
use diesel::{prelude::*, sql_types};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use serde_json::Value;
use uuid::Uuid;

use super::generations::Generation;
use crate::db::tables::{generations, job_runs};

#[derive(Clone, Debug, Queryable, Selectable)]
#[diesel(table_name = job_runs, check_for_backend(diesel::pg::Pg))]
pub struct JobRun {
    pub generation_id: Uuid,
    pub worker_id: String,
    pub attempt: i32,
    pub claimed_at: DateTime<Utc>,
    pub lease_until: DateTime<Utc>,
}

/// The fencing token of one run: which worker claimed which generation, on which attempt.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Claim {
    pub generation_id: Uuid,
    pub worker_id: String,
    /// Grows with every claim of the generation (never reused), so it names this run.
    pub attempt: i32,
}

fn lease_sql(lease_seconds: i64) -> diesel::expression::SqlLiteral<sql_types::Timestamptz> {
    diesel::dsl::sql::<sql_types::Timestamptz>(&format!(
        "now() + interval '{lease_seconds} seconds'"
    ))
}

/// Claims `id` for `worker_id`: a `pending` generation, or a `processing` one whose lease ran
/// out (its worker died or stalled). Returns the row (now `processing`) and the claim.
pub async fn claim(
    conn: &mut AsyncPgConnection,
    id: Uuid,
    worker_id: &str,
    lease_seconds: i64,
) -> QueryResult<Option<(Generation, Claim)>> {
    conn.transaction::<_, diesel::result::Error, _>(async move |conn| {
        #[derive(QueryableByName)]
        #[allow(dead_code)] // Only the row count matters.
        struct Claimed {
            #[diesel(sql_type = sql_types::Uuid)]
            id: Uuid,
        }
        // Wait (briefly) for a row another transaction holds instead of skipping it: a
        // skipped claim would ack the message and leave the job pending with nothing to run
        // it. The lock is re-checked after the wait, so a job claimed meanwhile is not ours.
        diesel::sql_query("SET LOCAL lock_timeout = '5s'")
            .execute(conn)
            .await?;
        let claimed: Vec<Claimed> = diesel::sql_query(
            "SELECT g.id FROM boards.generations g
             LEFT JOIN boards.job_runs r ON r.generation_id = g.id
             WHERE g.id = $1
               AND (g.status = 'pending' OR (g.status = 'processing' AND (r.lease_until IS NULL OR r.lease_until < now())))
             FOR UPDATE OF g",
        )
        .bind::<sql_types::Uuid, _>(id)
        .load(conn)
        .await?;
        if claimed.is_empty() {
            return Ok(None);
        }
        let attempt: i32 = diesel::insert_into(job_runs::table)
            .values((
                job_runs::generation_id.eq(id),
                job_runs::worker_id.eq(worker_id),
                job_runs::attempt.eq(1),
                job_runs::lease_until.eq(lease_sql(lease_seconds)),
            ))
            .on_conflict(job_runs::generation_id)
            .do_update()
            .set((
                job_runs::worker_id.eq(worker_id),
                job_runs::attempt.eq(job_runs::attempt + 1),
                job_runs::claimed_at.eq(diesel::dsl::now),
                job_runs::lease_until.eq(lease_sql(lease_seconds)),
            ))
            .returning(job_runs::attempt)
            .get_result(conn)
            .await?;
        let generation = diesel::update(generations::table.find(id))
            .set((
                generations::status.eq("processing"),
                generations::progress.eq(bigdecimal::BigDecimal::from(0)),
                generations::started_at.eq(diesel::dsl::now),
                generations::completed_at.eq(None::<DateTime<Utc>>),
                generations::error_message.eq(None::<String>),
            ))
            .returning(Generation::as_returning())
            .get_result(conn)
            .await?;
        let claim = Claim {
            generation_id: id,
            worker_id: worker_id.to_string(),
            attempt,
        };
        Ok(Some((generation, claim)))
    })
    .await
}

/// Whether `claim` is still the generation's current run. Locks the generation row first (the
/// order [`claim`] takes too), so a concurrent claim is either fully visible or not begun: the
/// run row read after the lock is the latest committed one. Call inside a transaction.
async fn holds(conn: &mut AsyncPgConnection, claim: &Claim) -> QueryResult<bool> {
    let locked: Option<Uuid> = generations::table
        .find(claim.generation_id)
        .select(generations::id)
        .for_update()
        .first(conn)
        .await
        .optional()?;
    if locked.is_none() {
        return Ok(false);
    }
    let run: Option<(String, i32)> = job_runs::table
        .find(claim.generation_id)
        .select((job_runs::worker_id, job_runs::attempt))
        .first(conn)
        .await
        .optional()?;
    Ok(run.is_some_and(|(w, a)| w == claim.worker_id && a == claim.attempt))
}

/// Extends the lease; `false` when this run no longer owns a running job (reaped, claimed
/// again, cancelled, finished).
pub async fn heartbeat(
    conn: &mut AsyncPgConnection,
    claim: &Claim,
    lease_seconds: i64,
) -> QueryResult<bool> {
    let n = diesel::update(
        job_runs::table
            .find(claim.generation_id)
            .filter(job_runs::worker_id.eq(&claim.worker_id))
            .filter(job_runs::attempt.eq(claim.attempt)),
    )
    .set(job_runs::lease_until.eq(lease_sql(lease_seconds)))
    .execute(conn)
    .await?;
    if n == 0 {
        return Ok(false);
    }
    let status: Option<String> = generations::table
        .find(claim.generation_id)
        .select(generations::status)
        .first(conn)
        .await
        .optional()?;
    Ok(status.as_deref() == Some("processing"))
}

/// Writes progress (percent) while the run still holds the job; never lowers it. Fenced like
/// every other write (a join with `job_runs` in the UPDATE itself would be re-checked against
/// the old run row after waiting for a concurrent claim).
pub async fn set_progress(
    conn: &mut AsyncPgConnection,
    claim: &Claim,
    percent: f64,
) -> QueryResult<bool> {
    let claim = claim.clone();
    conn.transaction::<_, diesel::result::Error, _>(async move |conn| {
        if !holds(conn, &claim).await? {
            return Ok(false);
        }
        let n = diesel::sql_query(
            "UPDATE boards.generations SET progress = GREATEST(progress, $2::numeric(5,2))
             WHERE id = $1 AND status = 'processing'",
        )
        .bind::<sql_types::Uuid, _>(claim.generation_id)
        .bind::<sql_types::Double, _>(percent.clamp(0.0, 100.0))
        .execute(conn)
        .await?;
        Ok(n > 0)
    })
    .await
}

/// A column a running job writes as it goes, fenced by its claim.
enum RunWrite {
    InputArtifacts(Value),
    ExternalJobId(String),
}

/// Writes `write` while the run still holds the job (`false` when it does not).
async fn write_while_held(
    conn: &mut AsyncPgConnection,
    claim: &Claim,
    write: RunWrite,
) -> QueryResult<bool> {
    let claim = claim.clone();
    conn.transaction::<_, diesel::result::Error, _>(async move |conn| {
        if !holds(conn, &claim).await? {
            return Ok(false);
        }
        let row = generations::table
            .find(claim.generation_id)
            .filter(generations::status.eq("processing"));
        let n = match write {
            RunWrite::InputArtifacts(lineage) => {
                diesel::update(row)
                    .set(generations::input_artifacts.eq(lineage))
                    .execute(conn)
                    .await?
            }
            RunWrite::ExternalJobId(id) => {
                diesel::update(row)
                    .set(generations::external_job_id.eq(Some(id)))
                    .execute(conn)
                    .await?
            }
        };
        Ok(n > 0)
    })
    .await
}

/// Records lineage while the run still holds the job.
pub async fn set_input_artifacts(
    conn: &mut AsyncPgConnection,
    claim: &Claim,
    lineage: &Value,
) -> QueryResult<bool> {
    write_while_held(conn, claim, RunWrite::InputArtifacts(lineage.clone())).await
}

/// Records the upstream job id while the run still holds the job (`false` when it does not).
pub async fn set_external_job_id(
    conn: &mut AsyncPgConnection,
    claim: &Claim,
    external_id: &str,
) -> QueryResult<bool> {
    write_while_held(
        conn,
        claim,
        RunWrite::ExternalJobId(external_id.to_string()),
    )
    .await
}

/// Ends the run's lease (its row stays: `attempt` must keep growing).
async fn end_run(conn: &mut AsyncPgConnection, id: Uuid) -> QueryResult<usize> {
    diesel::update(job_runs::table.find(id))
        .set(job_runs::lease_until.eq(diesel::dsl::now))
        .execute(conn)
        .await
}

/// Finalises a running job as completed, in one transaction with the end of its run and the
/// insertion of its batch rows (the other outputs of a multi-output run, written completed).
/// `None` when the run no longer holds the job (cancelled, reaped, finished elsewhere): then
/// no batch row is written either, so a redelivered job never makes a second set.
pub async fn complete(
    conn: &mut AsyncPgConnection,
    claim: &Claim,
    storage_url: &str,
    thumbnail_url: Option<&str>,
    output_metadata: &Value,
    batch: Vec<super::generations::NewUpload>,
) -> QueryResult<Option<Generation>> {
    let (claim, storage_url, thumbnail_url, output_metadata) = (
        claim.clone(),
        storage_url.to_string(),
        thumbnail_url.map(str::to_string),
        output_metadata.clone(),
    );
    let trace = crate::trace::current();
    conn.transaction::<_, diesel::result::Error, _>(async move |conn| {
        if !holds(conn, &claim).await? {
            return Ok(None);
        }
        // The job's trace, for the webhook events of the change.
        crate::db::set_transaction_trace(conn, trace).await?;
        let id = claim.generation_id;
        let done = diesel::update(
            generations::table
                .find(id)
                .filter(generations::status.eq("processing")),
        )
        .set((
            generations::status.eq("completed"),
            generations::progress.eq(bigdecimal::BigDecimal::from(100)),
            generations::storage_url.eq(Some(storage_url)),
            generations::thumbnail_url.eq(thumbnail_url),
            generations::output_metadata.eq(output_metadata),
            generations::error_message.eq(None::<String>),
            generations::completed_at.eq(diesel::dsl::now),
        ))
        .returning(Generation::as_returning())
        .get_result(conn)
        .await
        .optional()?;
        if done.is_some() {
            end_run(conn, id).await?;
            if !batch.is_empty() {
                diesel::insert_into(generations::table)
                    .values(&batch)
                    .execute(conn)
                    .await?;
            }
        }
        Ok(done)
    })
    .await
}

/// Marks the job failed while the run still holds it; `None` when it does not (or the job
/// is no longer running).
pub async fn fail(
    conn: &mut AsyncPgConnection,
    claim: &Claim,
    message: &str,
) -> QueryResult<Option<Generation>> {
    let (claim, message) = (claim.clone(), message.to_string());
    let trace = crate::trace::current();
    conn.transaction::<_, diesel::result::Error, _>(async move |conn| {
        if !holds(conn, &claim).await? {
            return Ok(None);
        }
        crate::db::set_transaction_trace(conn, trace).await?;
        let id = claim.generation_id;
        let failed = diesel::update(
            generations::table
                .find(id)
                .filter(generations::status.eq("processing")),
        )
        .set((
            generations::status.eq("failed"),
            generations::error_message.eq(Some(message)),
            generations::completed_at.eq(diesel::dsl::now),
        ))
        .returning(Generation::as_returning())
        .get_result(conn)
        .await
        .optional()?;
        if failed.is_some() {
            end_run(conn, id).await?;
        }
        Ok(failed)
    })
    .await
}

/// Hands a running job back (retry later, or shutdown): `processing` → `pending`, only while
/// the run still holds it.
pub async fn release(conn: &mut AsyncPgConnection, claim: &Claim) -> QueryResult<bool> {
    let claim = claim.clone();
    conn.transaction::<_, diesel::result::Error, _>(async move |conn| {
        if !holds(conn, &claim).await? {
            return Ok(false);
        }
        let id = claim.generation_id;
        let n = diesel::update(
            generations::table
                .find(id)
                .filter(generations::status.eq("processing")),
        )
        .set((
            generations::status.eq("pending"),
            generations::started_at.eq(None::<DateTime<Utc>>),
        ))
        .execute(conn)
        .await?;
        end_run(conn, id).await?;
        Ok(n > 0)
    })
    .await
}

/// What the reaper did with one job.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reaped {
    pub id: Uuid,
    /// The generation's board (its feed hears of a failure).
    pub board_id: Uuid,
    /// `pending` (queued again) or `failed` (its runs ran out).
    pub status: String,
    /// Runs the job has had.
    pub runs: i32,
}

/// The reaper: jobs `processing` whose lease expired more than `grace_seconds` ago go back to
/// `pending` with a fresh outbox message, in one transaction each batch, unless they have had
/// `max_runs` runs already (a job whose worker keeps dying, say of memory): those fail.
///
/// Only jobs still `processing` are considered (finished runs keep their rows, so a filter on
/// the lease alone would fill the batch with them). Rows are locked generation first, then
/// run (the order of claims and fenced writes) and skipped when busy, so the reaper never
/// waits and never deadlocks; the lease is re-checked on the locked run row, so a heartbeat
/// that just renewed it wins.
pub async fn reap_expired(
    conn: &mut AsyncPgConnection,
    grace_seconds: i64,
    limit: i64,
    max_runs: i32,
) -> QueryResult<Vec<Reaped>> {
    #[derive(QueryableByName)]
    struct Row {
        #[diesel(sql_type = sql_types::Uuid)]
        id: Uuid,
        #[diesel(sql_type = sql_types::Uuid)]
        board_id: Uuid,
        #[diesel(sql_type = sql_types::Text)]
        generator_name: String,
        #[diesel(sql_type = sql_types::Text)]
        status: String,
        #[diesel(sql_type = sql_types::Integer)]
        runs: i32,
    }
    conn.transaction::<_, diesel::result::Error, _>(async move |conn| {
        let rows: Vec<Row> = diesel::sql_query(
            "WITH expired AS (
                 SELECT g.id, r.attempt FROM boards.generations g
                 JOIN boards.job_runs r ON r.generation_id = g.id
                 WHERE g.status = 'processing'
                   AND r.lease_until < now() - make_interval(secs => $1)
                 ORDER BY r.lease_until LIMIT $2
                 FOR UPDATE OF g, r SKIP LOCKED)
             UPDATE boards.generations g SET
                 status = CASE WHEN e.attempt >= $3 THEN 'failed' ELSE 'pending' END,
                 started_at = CASE WHEN e.attempt >= $3 THEN g.started_at END,
                 completed_at = CASE WHEN e.attempt >= $3 THEN now() END,
                 error_message = CASE WHEN e.attempt >= $3
                     THEN 'Failed after ' || e.attempt || ' runs: the worker running it stopped responding'
                     ELSE g.error_message END
             FROM expired e
             WHERE g.id = e.id
             RETURNING g.id, g.board_id, g.generator_name::text AS generator_name, g.status::text AS status,
                       e.attempt AS runs",
        )
        .bind::<sql_types::Double, _>(grace_seconds as f64)
        .bind::<sql_types::BigInt, _>(limit)
        .bind::<sql_types::Integer, _>(max_runs)
        .load(conn)
        .await?;
        for r in rows.iter().filter(|r| r.status == "pending") {
            let message = crate::jobs::JobMessage::new(r.id, &r.generator_name, &Default::default());
            let message = serde_json::to_value(&message).unwrap_or(Value::Null);
            super::outbox::insert(conn, r.id, &message).await?;
        }
        Ok(rows
            .into_iter()
            .map(|r| Reaped {
                id: r.id,
                board_id: r.board_id,
                status: r.status,
                runs: r.runs,
            })
            .collect())
    })
    .await
}

/// Waiting generations of one generator: how many, and the age of the oldest (seconds).
#[derive(Debug, QueryableByName)]
pub struct Waiting {
    #[diesel(sql_type = sql_types::Text)]
    pub generator_name: String,
    #[diesel(sql_type = sql_types::BigInt)]
    pub pending: i64,
    #[diesel(sql_type = sql_types::Double)]
    pub oldest_seconds: f64,
}

/// What the job gauges show: waiting generations by generator, and how many `processing`
/// ones have a lease that ran out.
pub async fn gauges(conn: &mut AsyncPgConnection) -> QueryResult<(Vec<Waiting>, i64)> {
    let waiting: Vec<Waiting> = diesel::sql_query(
        "SELECT generator_name, count(*) AS pending,
                extract(epoch FROM now() - min(created_at))::float8 AS oldest_seconds
         FROM boards.generations WHERE status = 'pending' GROUP BY generator_name",
    )
    .load(conn)
    .await?;
    #[derive(QueryableByName)]
    struct Stuck {
        #[diesel(sql_type = sql_types::BigInt)]
        n: i64,
    }
    let stuck: Stuck = diesel::sql_query(
        "SELECT count(*) AS n FROM boards.job_runs r JOIN boards.generations g ON g.id = r.generation_id
         WHERE g.status = 'processing' AND r.lease_until < now()",
    )
    .get_result(conn)
    .await?;
    Ok((waiting, stuck.n))
}
