//! `boards.generations`: one row per generation job and its artifact.

use bigdecimal::BigDecimal;
use chrono::{DateTime, Utc};
use diesel::{dsl::count_star, prelude::*};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use serde_json::Value;
use uuid::Uuid;

use crate::db::tables::generations;

#[derive(Clone, Debug, PartialEq, Queryable, Selectable, Identifiable)]
#[diesel(table_name = generations, check_for_backend(diesel::pg::Pg))]
pub struct Generation {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub board_id: Uuid,
    pub user_id: Uuid,
    pub generator_name: String,
    pub artifact_type: String,
    pub input_params: Value,
    pub status: String,
    pub storage_url: Option<String>,
    pub thumbnail_url: Option<String>,
    pub additional_files: Value,
    pub output_metadata: Value,
    pub input_artifacts: Value,
    pub external_job_id: Option<String>,
    pub progress: BigDecimal,
    pub error_message: Option<String>,
    pub started_at: Option<DateTime<Utc>>,
    pub completed_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

pub async fn find(conn: &mut AsyncPgConnection, id: Uuid) -> QueryResult<Option<Generation>> {
    generations::table
        .find(id)
        .select(Generation::as_select())
        .first(conn)
        .await
        .optional()
}

/// A board's generations, newest first (ties broken by id).
pub async fn list_for_board(
    conn: &mut AsyncPgConnection,
    board_id: Uuid,
    limit: i64,
    offset: i64,
) -> QueryResult<Vec<Generation>> {
    generations::table
        .filter(generations::board_id.eq(board_id))
        .order((generations::created_at.desc(), generations::id.desc()))
        .limit(limit)
        .offset(offset)
        .select(Generation::as_select())
        .load(conn)
        .await
}

/// Number of generations of each of `board_ids` (boards without any are absent).
pub async fn count_for_boards(
    conn: &mut AsyncPgConnection,
    board_ids: &[Uuid],
) -> QueryResult<Vec<(Uuid, i64)>> {
    generations::table
        .filter(generations::board_id.eq_any(board_ids))
        .group_by(generations::board_id)
        .select((generations::board_id, count_star()))
        .load(conn)
        .await
}
