//! `boards.board_members`: the roles of users on boards (the owner has no row).

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

use crate::db::tables::board_members;

#[derive(Clone, Debug, PartialEq, Queryable, Selectable, Identifiable)]
#[diesel(table_name = board_members, check_for_backend(diesel::pg::Pg))]
pub struct BoardMember {
    pub id: Uuid,
    pub board_id: Uuid,
    pub user_id: Uuid,
    /// `viewer`, `editor` or `admin` (a CHECK constraint keeps it so).
    pub role: String,
    pub invited_by: Option<Uuid>,
    pub joined_at: DateTime<Utc>,
}

#[derive(Debug, Insertable)]
#[diesel(table_name = board_members)]
pub struct NewBoardMember<'a> {
    pub board_id: Uuid,
    pub user_id: Uuid,
    pub role: &'a str,
    pub invited_by: Option<Uuid>,
}

pub async fn find(conn: &mut AsyncPgConnection, id: Uuid) -> QueryResult<Option<BoardMember>> {
    board_members::table
        .find(id)
        .select(BoardMember::as_select())
        .first(conn)
        .await
        .optional()
}

pub async fn find_for(
    conn: &mut AsyncPgConnection,
    board_id: Uuid,
    user_id: Uuid,
) -> QueryResult<Option<BoardMember>> {
    board_members::table
        .filter(board_members::board_id.eq(board_id))
        .filter(board_members::user_id.eq(user_id))
        .select(BoardMember::as_select())
        .first(conn)
        .await
        .optional()
}

/// Members of several boards at once, in joining order.
pub async fn list_for_boards(
    conn: &mut AsyncPgConnection,
    board_ids: &[Uuid],
) -> QueryResult<Vec<BoardMember>> {
    board_members::table
        .filter(board_members::board_id.eq_any(board_ids))
        .order((board_members::joined_at.asc(), board_members::id.asc()))
        .select(BoardMember::as_select())
        .load(conn)
        .await
}

/// `(board_id, role)` of `user_id` on each of `board_ids` where it is a member.
pub async fn roles_of(
    conn: &mut AsyncPgConnection,
    user_id: Uuid,
    board_ids: &[Uuid],
) -> QueryResult<Vec<(Uuid, String)>> {
    board_members::table
        .filter(board_members::user_id.eq(user_id))
        .filter(board_members::board_id.eq_any(board_ids))
        .select((board_members::board_id, board_members::role))
        .load(conn)
        .await
}

/// The users among `users` who share a board with `viewer`: both are the owner or a member of
/// one board. One statement for any number of users (identity fields are shown to them).
pub async fn sharing_a_board_with(
    conn: &mut AsyncPgConnection,
    viewer: Uuid,
    users: &[Uuid],
) -> QueryResult<Vec<Uuid>> {
    #[derive(QueryableByName)]
    struct Row {
        #[diesel(sql_type = diesel::sql_types::Uuid)]
        user_id: Uuid,
    }
    let rows: Vec<Row> = diesel::sql_query(
        "WITH mine AS (
             SELECT id AS board_id FROM boards.boards WHERE owner_id = $1
             UNION
             SELECT board_id FROM boards.board_members WHERE user_id = $1
         )
         SELECT b.owner_id AS user_id
           FROM boards.boards b JOIN mine ON mine.board_id = b.id
          WHERE b.owner_id = ANY($2)
         UNION
         SELECT m.user_id
           FROM boards.board_members m JOIN mine ON mine.board_id = m.board_id
          WHERE m.user_id = ANY($2)",
    )
    .bind::<diesel::sql_types::Uuid, _>(viewer)
    .bind::<diesel::sql_types::Array<diesel::sql_types::Uuid>, _>(users)
    .load(conn)
    .await?;
    Ok(rows.into_iter().map(|r| r.user_id).collect())
}

/// Boards on which `user_id` is a member.
/// The boards `user_id` joined most recently, at most `limit`.
pub async fn board_ids_of(
    conn: &mut AsyncPgConnection,
    user_id: Uuid,
    limit: i64,
) -> QueryResult<Vec<Uuid>> {
    board_members::table
        .filter(board_members::user_id.eq(user_id))
        .order((board_members::joined_at.desc(), board_members::id.desc()))
        .select(board_members::board_id)
        .limit(limit)
        .load(conn)
        .await
}

/// Inserts a membership; `None` when the user is already a member (unique key).
pub async fn insert(
    conn: &mut AsyncPgConnection,
    new: &NewBoardMember<'_>,
) -> QueryResult<Option<BoardMember>> {
    diesel::insert_into(board_members::table)
        .values(new)
        .on_conflict((board_members::board_id, board_members::user_id))
        .do_nothing()
        .returning(BoardMember::as_returning())
        .get_result(conn)
        .await
        .optional()
}

pub async fn update_role(
    conn: &mut AsyncPgConnection,
    id: Uuid,
    role: &str,
) -> QueryResult<Option<BoardMember>> {
    diesel::update(board_members::table.find(id))
        .set(board_members::role.eq(role))
        .returning(BoardMember::as_returning())
        .get_result(conn)
        .await
        .optional()
}

pub async fn delete(conn: &mut AsyncPgConnection, id: Uuid) -> QueryResult<bool> {
    let n = diesel::delete(board_members::table.find(id))
        .execute(conn)
        .await?;
    Ok(n > 0)
}
