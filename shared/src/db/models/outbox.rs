//! `boards.job_outbox`: job messages written with their generation, published by a relay.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use serde_json::Value;
use uuid::Uuid;

use crate::db::tables::job_outbox;

#[derive(Clone, Debug, Queryable, Selectable, Identifiable)]
#[diesel(table_name = job_outbox, check_for_backend(diesel::pg::Pg))]
pub struct OutboxRow {
    pub id: i64,
    pub generation_id: Uuid,
    pub message: Value,
    pub created_at: DateTime<Utc>,
    pub available_at: DateTime<Utc>,
    pub publish_attempts: i32,
    pub last_error: Option<String>,
}

pub async fn insert(
    conn: &mut AsyncPgConnection,
    generation_id: Uuid,
    message: &Value,
) -> QueryResult<i64> {
    diesel::insert_into(job_outbox::table)
        .values((
            job_outbox::generation_id.eq(generation_id),
            job_outbox::message.eq(message),
        ))
        .returning(job_outbox::id)
        .get_result(conn)
        .await
}

/// Rows waiting to be published (oldest first).
pub async fn pending(conn: &mut AsyncPgConnection) -> QueryResult<Vec<OutboxRow>> {
    job_outbox::table
        .order(job_outbox::id.asc())
        .select(OutboxRow::as_select())
        .load(conn)
        .await
}

pub async fn count(conn: &mut AsyncPgConnection) -> QueryResult<i64> {
    job_outbox::table.count().get_result(conn).await
}
