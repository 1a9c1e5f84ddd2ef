//! `boards.generations`: one row per generation job and its artifact.

use bigdecimal::BigDecimal;
use chrono::{DateTime, Utc};
use diesel::{dsl::count_star, prelude::*};
use diesel_async::{AsyncConnection as _, AsyncPgConnection, RunQueryDsl};
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

#[derive(Debug, Insertable)]
#[diesel(table_name = generations)]
pub struct NewGeneration {
    pub tenant_id: Uuid,
    pub board_id: Uuid,
    pub user_id: Uuid,
    pub generator_name: String,
    pub artifact_type: String,
    pub input_params: Value,
    pub status: String,
}

pub async fn insert(conn: &mut AsyncPgConnection, new: &NewGeneration) -> QueryResult<Generation> {
    diesel::insert_into(generations::table)
        .values(new)
        .returning(Generation::as_returning())
        .get_result(conn)
        .await
}

/// An upload's row, written complete in one statement (after its object is stored).
#[derive(Debug, Insertable)]
#[diesel(table_name = generations)]
pub struct NewUpload {
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
    pub output_metadata: Value,
    pub input_artifacts: Value,
    pub progress: BigDecimal,
    pub error_message: Option<String>,
    pub started_at: DateTime<Utc>,
    pub completed_at: DateTime<Utc>,
}

/// Inserts a finished upload, in the current task's trace (its webhook events are sent in it).
pub async fn insert_upload(
    conn: &mut AsyncPgConnection,
    new: &NewUpload,
) -> QueryResult<Generation> {
    let trace = crate::trace::current();
    conn.transaction(async move |conn| {
        crate::db::set_transaction_trace(conn, trace).await?;
        diesel::insert_into(generations::table)
            .values(new)
            .returning(Generation::as_returning())
            .get_result(conn)
            .await
    })
    .await
}

/// The `output_metadata` of every generation on `board_id` (to remove their objects).
pub async fn metadata_of_board(
    conn: &mut AsyncPgConnection,
    board_id: Uuid,
) -> QueryResult<Vec<Value>> {
    generations::table
        .filter(generations::board_id.eq(board_id))
        .select(generations::output_metadata)
        .load(conn)
        .await
}

pub async fn find_many(conn: &mut AsyncPgConnection, ids: &[Uuid]) -> QueryResult<Vec<Generation>> {
    generations::table
        .filter(generations::id.eq_any(ids))
        .select(Generation::as_select())
        .load(conn)
        .await
}

/// Marks a pending or processing generation cancelled; `None` when it was in another state
/// (the update is conditional, never a blind write). In the current task's trace.
pub async fn cancel(conn: &mut AsyncPgConnection, id: Uuid) -> QueryResult<Option<Generation>> {
    let trace = crate::trace::current();
    conn.transaction(async move |conn| {
        crate::db::set_transaction_trace(conn, trace).await?;
        diesel::update(
            generations::table
                .find(id)
                .filter(generations::status.eq_any(["pending", "processing"])),
        )
        .set((
            generations::status.eq("cancelled"),
            generations::error_message.eq("Cancelled by user"),
            generations::completed_at.eq(diesel::dsl::now),
        ))
        .returning(Generation::as_returning())
        .get_result(conn)
        .await
        .optional()
    })
    .await
}

pub async fn delete(conn: &mut AsyncPgConnection, id: Uuid) -> QueryResult<bool> {
    let n = diesel::delete(generations::table.find(id))
        .execute(conn)
        .await?;
    Ok(n > 0)
}

/// Filters of `recentGenerations`.
#[derive(Clone, Debug, Default)]
pub struct RecentFilter {
    pub board_id: Option<Uuid>,
    pub status: Option<String>,
    pub artifact_type: Option<String>,
}

/// Generations on boards `viewer` may read (owned, member or public), newest first.
pub async fn recent(
    conn: &mut AsyncPgConnection,
    viewer: Uuid,
    filter: &RecentFilter,
    limit: i64,
    offset: i64,
) -> QueryResult<Vec<Generation>> {
    use crate::db::tables::{board_members, boards};
    let member_of = board_members::table
        .filter(board_members::user_id.eq(viewer))
        .select(board_members::board_id);
    let readable = boards::table
        .filter(
            boards::is_public
                .eq(true)
                .or(boards::owner_id.eq(viewer))
                .or(boards::id.eq_any(member_of)),
        )
        .select(boards::id);
    let mut query = generations::table
        .filter(generations::board_id.eq_any(readable))
        .into_boxed();
    if let Some(b) = filter.board_id {
        query = query.filter(generations::board_id.eq(b));
    }
    if let Some(s) = &filter.status {
        query = query.filter(generations::status.eq(s.clone()));
    }
    if let Some(t) = &filter.artifact_type {
        query = query.filter(generations::artifact_type.eq(t.clone()));
    }
    query
        .order((generations::created_at.desc(), generations::id.desc()))
        .limit(limit)
        .offset(offset)
        .select(Generation::as_select())
        .load(conn)
        .await
}

/// Generations of `tenant_id` reachable from `root` within `max_depth` steps along
/// `input_artifacts` (upwards: the inputs of inputs) — one recursive query, cycle-safe (each
/// (id, depth) pair is visited once). The root is included.
pub async fn ancestors_within(
    conn: &mut AsyncPgConnection,
    root: Uuid,
    tenant_id: Uuid,
    max_depth: i32,
) -> QueryResult<Vec<Generation>> {
    let ids: Vec<IdRow> = diesel::sql_query(
        "WITH RECURSIVE reach(id, depth) AS (
            SELECT g.id, 0 FROM boards.generations g WHERE g.id = $1 AND g.tenant_id = $2
          UNION
            SELECT p.id, r.depth + 1
            FROM reach r
            JOIN boards.generations c ON c.id = r.id
            CROSS JOIN LATERAL jsonb_array_elements(
                CASE WHEN jsonb_typeof(c.input_artifacts) = 'array' THEN c.input_artifacts ELSE '[]'::jsonb END
            ) AS e(entry)
            JOIN boards.generations p
              ON p.id = CASE WHEN (e.entry->>'generation_id') ~* '^[0-9a-f]{8}-?([0-9a-f]{4}-?){3}[0-9a-f]{12}$'
                             THEN (e.entry->>'generation_id')::uuid END
             AND p.tenant_id = $2
            WHERE r.depth < $3
        )
        SELECT DISTINCT id FROM reach",
    )
    .bind::<diesel::sql_types::Uuid, _>(root)
    .bind::<diesel::sql_types::Uuid, _>(tenant_id)
    .bind::<diesel::sql_types::Integer, _>(max_depth)
    .load(conn)
    .await?;
    find_many(conn, &ids.into_iter().map(|r| r.id).collect::<Vec<_>>()).await
}

/// Generations of `tenant_id` that use `root` (directly or transitively) within `max_depth`
/// steps, found through the GIN index on `input_artifacts`. The root is included.
pub async fn descendants_within(
    conn: &mut AsyncPgConnection,
    root: Uuid,
    tenant_id: Uuid,
    max_depth: i32,
) -> QueryResult<Vec<Generation>> {
    let ids: Vec<IdRow> = diesel::sql_query(
        "WITH RECURSIVE reach(id, depth) AS (
            SELECT g.id, 0 FROM boards.generations g WHERE g.id = $1 AND g.tenant_id = $2
          UNION
            SELECT c.id, r.depth + 1
            FROM reach r
            JOIN boards.generations c
              ON c.input_artifacts @> jsonb_build_array(jsonb_build_object('generation_id', r.id::text))
             AND c.tenant_id = $2
            WHERE r.depth < $3
        )
        SELECT DISTINCT id FROM reach",
    )
    .bind::<diesel::sql_types::Uuid, _>(root)
    .bind::<diesel::sql_types::Uuid, _>(tenant_id)
    .bind::<diesel::sql_types::Integer, _>(max_depth)
    .load(conn)
    .await?;
    find_many(conn, &ids.into_iter().map(|r| r.id).collect::<Vec<_>>()).await
}

#[derive(QueryableByName)]
struct IdRow {
    #[diesel(sql_type = diesel::sql_types::Uuid)]
    id: Uuid,
}
