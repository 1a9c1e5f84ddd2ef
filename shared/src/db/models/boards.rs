//! `boards.boards`.

use chrono::{DateTime, Utc};
use diesel::{pg::Pg, prelude::*};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use serde_json::Value;
use uuid::Uuid;

use crate::db::tables::{board_members, boards};

#[derive(Clone, Debug, PartialEq, Queryable, Selectable, Identifiable)]
#[diesel(table_name = boards, check_for_backend(diesel::pg::Pg))]
pub struct Board {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub owner_id: Uuid,
    pub title: String,
    pub description: Option<String>,
    pub is_public: bool,
    pub settings: Value,
    pub metadata: Value,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Insertable)]
#[diesel(table_name = boards)]
pub struct NewBoard {
    pub tenant_id: Uuid,
    pub owner_id: Uuid,
    pub title: String,
    pub description: Option<String>,
    pub is_public: bool,
    pub settings: Value,
    pub metadata: Value,
}

/// Fields to replace; `None` leaves a column as it is.
#[derive(Debug, Default, AsChangeset)]
#[diesel(table_name = boards)]
pub struct BoardChanges {
    pub title: Option<String>,
    pub description: Option<String>,
    pub is_public: Option<bool>,
    pub settings: Option<Value>,
}

impl BoardChanges {
    pub fn is_empty(&self) -> bool {
        self.title.is_none()
            && self.description.is_none()
            && self.is_public.is_none()
            && self.settings.is_none()
    }
}

/// Ordering of board lists; ties are broken by id so that pages never overlap.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum BoardSort {
    CreatedAsc,
    CreatedDesc,
    UpdatedAsc,
    #[default]
    UpdatedDesc,
}

/// Which boards of a user `list_for_user` returns.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum BoardRelation {
    /// Owned or member.
    #[default]
    Any,
    Owner,
    /// Member but not owner.
    Member,
}

type BoxedBoards<'a> = boards::BoxedQuery<'a, Pg>;

fn sorted(query: BoxedBoards<'_>, sort: BoardSort) -> BoxedBoards<'_> {
    match sort {
        BoardSort::CreatedAsc => query.order((boards::created_at.asc(), boards::id.asc())),
        BoardSort::CreatedDesc => query.order((boards::created_at.desc(), boards::id.desc())),
        BoardSort::UpdatedAsc => query.order((boards::updated_at.asc(), boards::id.asc())),
        BoardSort::UpdatedDesc => query.order((boards::updated_at.desc(), boards::id.desc())),
    }
}

pub async fn find(conn: &mut AsyncPgConnection, id: Uuid) -> QueryResult<Option<Board>> {
    boards::table
        .find(id)
        .select(Board::as_select())
        .first(conn)
        .await
        .optional()
}

pub async fn find_many(conn: &mut AsyncPgConnection, ids: &[Uuid]) -> QueryResult<Vec<Board>> {
    boards::table
        .filter(boards::id.eq_any(ids))
        .select(Board::as_select())
        .load(conn)
        .await
}

pub async fn insert(conn: &mut AsyncPgConnection, new: &NewBoard) -> QueryResult<Board> {
    diesel::insert_into(boards::table)
        .values(new)
        .returning(Board::as_returning())
        .get_result(conn)
        .await
}

pub async fn update(
    conn: &mut AsyncPgConnection,
    id: Uuid,
    changes: &BoardChanges,
) -> QueryResult<Option<Board>> {
    if changes.is_empty() {
        return find(conn, id).await;
    }
    diesel::update(boards::table.find(id))
        .set(changes)
        .returning(Board::as_returning())
        .get_result(conn)
        .await
        .optional()
}

pub async fn delete(conn: &mut AsyncPgConnection, id: Uuid) -> QueryResult<bool> {
    let n = diesel::delete(boards::table.find(id)).execute(conn).await?;
    Ok(n > 0)
}

pub async fn list_for_user(
    conn: &mut AsyncPgConnection,
    user_id: Uuid,
    relation: BoardRelation,
    sort: BoardSort,
    limit: i64,
    offset: i64,
) -> QueryResult<Vec<Board>> {
    let member_of = board_members::table
        .filter(board_members::user_id.eq(user_id))
        .select(board_members::board_id);
    let query = boards::table.into_boxed();
    let query = match relation {
        BoardRelation::Any => query.filter(
            boards::owner_id
                .eq(user_id)
                .or(boards::id.eq_any(member_of)),
        ),
        BoardRelation::Owner => query.filter(boards::owner_id.eq(user_id)),
        BoardRelation::Member => query
            .filter(boards::id.eq_any(member_of))
            .filter(boards::owner_id.ne(user_id)),
    };
    sorted(query, sort)
        .limit(limit)
        .offset(offset)
        .load::<Board>(conn)
        .await
}

pub async fn list_public(
    conn: &mut AsyncPgConnection,
    sort: BoardSort,
    limit: i64,
    offset: i64,
) -> QueryResult<Vec<Board>> {
    let query = boards::table
        .filter(boards::is_public.eq(true))
        .into_boxed();
    sorted(query, sort)
        .limit(limit)
        .offset(offset)
        .load::<Board>(conn)
        .await
}

/// Escapes `%`, `_` and `\` so that user text matches literally inside a LIKE pattern.
pub fn like_pattern(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('%');
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('%');
    out
}

/// Boards whose title or description contains `text` (case-insensitive, literal), visible to
/// `viewer` (public ones, and for a user also owned and member boards), newest update first.
pub async fn search(
    conn: &mut AsyncPgConnection,
    text: &str,
    viewer: Option<Uuid>,
    limit: i64,
    offset: i64,
) -> QueryResult<Vec<Board>> {
    let pattern = like_pattern(text);
    let mut query = boards::table
        .filter(
            boards::title
                .ilike(pattern.clone())
                .or(boards::description.ilike(pattern)),
        )
        .into_boxed();
    query = match viewer {
        None => query.filter(boards::is_public.eq(true)),
        Some(user_id) => {
            let member_of = board_members::table
                .filter(board_members::user_id.eq(user_id))
                .select(board_members::board_id);
            query.filter(
                boards::is_public
                    .eq(true)
                    .or(boards::owner_id.eq(user_id))
                    .or(boards::id.eq_any(member_of)),
            )
        }
    };
    sorted(query, BoardSort::UpdatedDesc)
        .limit(limit)
        .offset(offset)
        .load::<Board>(conn)
        .await
}

/// Boards owned by `owner_id`, newest first.
/// The newest `limit` boards `owner_id` owns.
pub async fn owned_by(
    conn: &mut AsyncPgConnection,
    owner_id: Uuid,
    limit: i64,
) -> QueryResult<Vec<Board>> {
    let query = boards::table
        .filter(boards::owner_id.eq(owner_id))
        .into_boxed();
    sorted(query, BoardSort::CreatedDesc)
        .limit(limit)
        .load::<Board>(conn)
        .await
}
