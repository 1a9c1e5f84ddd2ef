//! The job state machine on `boards.generations` + `boards.job_runs`. Every status change is a
//! conditional update: a worker that loses a race (cancelled, reaped, claimed elsewhere) sees
//! zero rows and stops.

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

/// Claims `id` for `worker_id`: a `pending` generation, or a `processing` one whose lease ran
/// out (its worker died). Returns the row (now `processing`) and the run's attempt number.
pub async fn claim(
    conn: &mut AsyncPgConnection,
    id: Uuid,
    worker_id: &str,
    lease_seconds: i64,
) -> QueryResult<Option<(Generation, i32)>> {
    conn.transaction::<_, diesel::result::Error, _>(async move |conn| {
        #[derive(QueryableByName)]
        #[allow(dead_code)] // Only the row count matters.
        struct Claimed {
            #[diesel(sql_type = sql_types::Uuid)]
            id: Uuid,
        }
        let claimed: Vec<Claimed> = diesel::sql_query(
            "SELECT g.id FROM boards.generations g
             LEFT JOIN boards.job_runs r ON r.generation_id = g.id
             WHERE g.id = $1
               AND (g.status = 'pending' OR (g.status = 'processing' AND (r.lease_until IS NULL OR r.lease_until < now())))
             FOR UPDATE OF g SKIP LOCKED",
        )
        .bind::<sql_types::Uuid, _>(id)
        .load(conn)
        .await?;
        if claimed.is_empty() {
            return Ok(None);
        }
        let lease = diesel::dsl::sql::<sql_types::Timestamptz>(&format!(
            "now() + interval '{lease_seconds} seconds'"
        ));
        let attempt: i32 = diesel::insert_into(job_runs::table)
            .values((
                job_runs::generation_id.eq(id),
                job_runs::worker_id.eq(worker_id),
                job_runs::attempt.eq(1),
                job_runs::lease_until.eq(lease),
            ))
            .on_conflict(job_runs::generation_id)
            .do_update()
            .set((
                job_runs::worker_id.eq(worker_id),
                job_runs::attempt.eq(job_runs::attempt + 1),
                job_runs::claimed_at.eq(diesel::dsl::now),
                job_runs::lease_until.eq(diesel::dsl::sql::<sql_types::Timestamptz>(&format!(
                    "now() + interval '{lease_seconds} seconds'"
                ))),
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
        Ok(Some((generation, attempt)))
    })
    .await
}

/// Extends the lease; `false` when this worker no longer owns a running job.
pub async fn heartbeat(
    conn: &mut AsyncPgConnection,
    id: Uuid,
    worker_id: &str,
    lease_seconds: i64,
) -> QueryResult<bool> {
    let n = diesel::update(
        job_runs::table
            .find(id)
            .filter(job_runs::worker_id.eq(worker_id)),
    )
    .set(
        job_runs::lease_until.eq(diesel::dsl::sql::<sql_types::Timestamptz>(&format!(
            "now() + interval '{lease_seconds} seconds'"
        ))),
    )
    .execute(conn)
    .await?;
    if n == 0 {
        return Ok(false);
    }
    let status: Option<String> = generations::table
        .find(id)
        .select(generations::status)
        .first(conn)
        .await
        .optional()?;
    Ok(status.as_deref() == Some("processing"))
}

/// Writes progress (percent) while the job is still running; never lowers it.
pub async fn set_progress(
    conn: &mut AsyncPgConnection,
    id: Uuid,
    percent: f64,
) -> QueryResult<bool> {
    let n = diesel::sql_query(
        "UPDATE boards.generations SET progress = GREATEST(progress, $2::numeric(5,2))
         WHERE id = $1 AND status = 'processing'",
    )
    .bind::<sql_types::Uuid, _>(id)
    .bind::<sql_types::Double, _>(percent.clamp(0.0, 100.0))
    .execute(conn)
    .await?;
    Ok(n > 0)
}

/// Records lineage while the job is still running.
pub async fn set_input_artifacts(
    conn: &mut AsyncPgConnection,
    id: Uuid,
    lineage: &Value,
) -> QueryResult<bool> {
    let n = diesel::update(
        generations::table
            .find(id)
            .filter(generations::status.eq("processing")),
    )
    .set(generations::input_artifacts.eq(lineage))
    .execute(conn)
    .await?;
    Ok(n > 0)
}

/// Finalises a running job as completed, in one transaction with the end of its run.
/// `None` when the job was no longer `processing` (cancelled, or finished elsewhere).
pub async fn complete(
    conn: &mut AsyncPgConnection,
    id: Uuid,
    storage_url: &str,
    output_metadata: &Value,
) -> QueryResult<Option<Generation>> {
    let storage_url = storage_url.to_string();
    let output_metadata = output_metadata.clone();
    conn.transaction::<_, diesel::result::Error, _>(async move |conn| {
        let done = diesel::update(
            generations::table
                .find(id)
                .filter(generations::status.eq("processing")),
        )
        .set((
            generations::status.eq("completed"),
            generations::progress.eq(bigdecimal::BigDecimal::from(100)),
            generations::storage_url.eq(Some(storage_url)),
            generations::thumbnail_url.eq(None::<String>),
            generations::output_metadata.eq(output_metadata),
            generations::error_message.eq(None::<String>),
            generations::completed_at.eq(diesel::dsl::now),
        ))
        .returning(Generation::as_returning())
        .get_result(conn)
        .await
        .optional()?;
        if done.is_some() {
            diesel::delete(job_runs::table.find(id))
                .execute(conn)
                .await?;
        }
        Ok(done)
    })
    .await
}

/// Marks a running (or still pending) job failed; `None` when it was already terminal.
pub async fn fail(
    conn: &mut AsyncPgConnection,
    id: Uuid,
    message: &str,
) -> QueryResult<Option<Generation>> {
    let message = message.to_string();
    conn.transaction::<_, diesel::result::Error, _>(async move |conn| {
        let failed = diesel::update(
            generations::table
                .find(id)
                .filter(generations::status.eq_any(["processing", "pending"])),
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
        diesel::delete(job_runs::table.find(id))
            .execute(conn)
            .await?;
        Ok(failed)
    })
    .await
}

/// Hands a running job back (retry later, or shutdown): `processing` → `pending`.
pub async fn release(conn: &mut AsyncPgConnection, id: Uuid) -> QueryResult<bool> {
    conn.transaction::<_, diesel::result::Error, _>(async move |conn| {
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
        diesel::update(job_runs::table.find(id))
            .set(job_runs::lease_until.eq(diesel::dsl::now))
            .execute(conn)
            .await?;
        Ok(n > 0)
    })
    .await
}

/// The reaper: jobs `processing` whose lease expired more than `grace_seconds` ago go back to
/// `pending` with a fresh outbox message, in one transaction each batch. Returns their ids.
pub async fn reap_expired(
    conn: &mut AsyncPgConnection,
    grace_seconds: i64,
    limit: i64,
) -> QueryResult<Vec<Uuid>> {
    #[derive(QueryableByName)]
    struct Reaped {
        #[diesel(sql_type = sql_types::Uuid)]
        id: Uuid,
        #[diesel(sql_type = sql_types::Text)]
        generator_name: String,
    }
    conn.transaction::<_, diesel::result::Error, _>(async move |conn| {
        let reaped: Vec<Reaped> = diesel::sql_query(
            "UPDATE boards.generations g SET status = 'pending', started_at = NULL
             FROM boards.job_runs r
             WHERE r.generation_id = g.id AND g.status = 'processing'
               AND r.lease_until < now() - make_interval(secs => $1)
               AND g.id IN (SELECT r2.generation_id FROM boards.job_runs r2
                            WHERE r2.lease_until < now() - make_interval(secs => $1)
                            ORDER BY r2.lease_until LIMIT $2 FOR UPDATE SKIP LOCKED)
             RETURNING g.id, g.generator_name::text AS generator_name",
        )
        .bind::<sql_types::Double, _>(grace_seconds as f64)
        .bind::<sql_types::BigInt, _>(limit)
        .load(conn)
        .await?;
        for r in &reaped {
            let message = crate::jobs::JobMessage::new(r.id, &r.generator_name, None);
            let message = serde_json::to_value(&message).unwrap_or(Value::Null);
            super::outbox::insert(conn, r.id, &message).await?;
        }
        Ok(reaped.into_iter().map(|r| r.id).collect())
    })
    .await
}
