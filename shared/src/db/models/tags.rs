//! `boards.tags` and `boards.generation_tags`.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use serde_json::Value;
use uuid::Uuid;

use crate::db::tables::{generation_tags, tags};

#[derive(Clone, Debug, PartialEq, Queryable, Selectable, Identifiable)]
#[diesel(table_name = tags, check_for_backend(diesel::pg::Pg))]
pub struct Tag {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub name: String,
    pub slug: String,
    pub description: Option<String>,
    pub metadata: Value,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Insertable)]
#[diesel(table_name = tags)]
pub struct NewTag {
    pub tenant_id: Uuid,
    pub name: String,
    pub slug: String,
    pub description: Option<String>,
    pub metadata: Value,
}

#[derive(Debug, Default, AsChangeset)]
#[diesel(table_name = tags)]
pub struct TagChanges {
    pub name: Option<String>,
    pub slug: Option<String>,
    pub description: Option<String>,
    pub metadata: Option<Value>,
}

pub async fn find_in_tenant(
    conn: &mut AsyncPgConnection,
    tenant_id: Uuid,
    id: Uuid,
) -> QueryResult<Option<Tag>> {
    tags::table
        .find(id)
        .filter(tags::tenant_id.eq(tenant_id))
        .select(Tag::as_select())
        .first(conn)
        .await
        .optional()
}

pub async fn find_by_slug(
    conn: &mut AsyncPgConnection,
    tenant_id: Uuid,
    slug: &str,
) -> QueryResult<Option<Tag>> {
    tags::table
        .filter(tags::tenant_id.eq(tenant_id))
        .filter(tags::slug.eq(slug))
        .select(Tag::as_select())
        .first(conn)
        .await
        .optional()
}

/// Whether another tag of the tenant (not `except`) uses `slug`.
pub async fn slug_taken(
    conn: &mut AsyncPgConnection,
    tenant_id: Uuid,
    slug: &str,
    except: Option<Uuid>,
) -> QueryResult<bool> {
    let mut q = tags::table
        .filter(tags::tenant_id.eq(tenant_id))
        .filter(tags::slug.eq(slug))
        .into_boxed();
    if let Some(id) = except {
        q = q.filter(tags::id.ne(id));
    }
    Ok(q.count().get_result::<i64>(conn).await? > 0)
}

pub async fn list(
    conn: &mut AsyncPgConnection,
    tenant_id: Uuid,
    limit: i64,
    offset: i64,
) -> QueryResult<Vec<Tag>> {
    tags::table
        .filter(tags::tenant_id.eq(tenant_id))
        .order((tags::name.asc(), tags::id.asc()))
        .limit(limit)
        .offset(offset)
        .select(Tag::as_select())
        .load(conn)
        .await
}

pub async fn insert(conn: &mut AsyncPgConnection, new: &NewTag) -> QueryResult<Tag> {
    diesel::insert_into(tags::table)
        .values(new)
        .returning(Tag::as_returning())
        .get_result(conn)
        .await
}

pub async fn update(
    conn: &mut AsyncPgConnection,
    id: Uuid,
    changes: &TagChanges,
) -> QueryResult<Tag> {
    if changes.name.is_none()
        && changes.slug.is_none()
        && changes.description.is_none()
        && changes.metadata.is_none()
    {
        return tags::table
            .find(id)
            .select(Tag::as_select())
            .first(conn)
            .await;
    }
    diesel::update(tags::table.find(id))
        .set(changes)
        .returning(Tag::as_returning())
        .get_result(conn)
        .await
}

pub async fn delete(conn: &mut AsyncPgConnection, id: Uuid) -> QueryResult<bool> {
    Ok(diesel::delete(tags::table.find(id)).execute(conn).await? > 0)
}

/// `(generation_id, tag)` for each of `generation_ids`, tags ordered by name.
pub async fn for_generations(
    conn: &mut AsyncPgConnection,
    generation_ids: &[Uuid],
) -> QueryResult<Vec<(Uuid, Tag)>> {
    generation_tags::table
        .inner_join(tags::table)
        .filter(generation_tags::generation_id.eq_any(generation_ids))
        .order((tags::name.asc(), tags::id.asc()))
        .select((generation_tags::generation_id, Tag::as_select()))
        .load(conn)
        .await
}

/// Links a tag to a generation; `false` when the link already existed.
pub async fn link(
    conn: &mut AsyncPgConnection,
    generation_id: Uuid,
    tag_id: Uuid,
) -> QueryResult<bool> {
    let n = diesel::insert_into(generation_tags::table)
        .values((
            generation_tags::generation_id.eq(generation_id),
            generation_tags::tag_id.eq(tag_id),
        ))
        .on_conflict((generation_tags::generation_id, generation_tags::tag_id))
        .do_nothing()
        .execute(conn)
        .await?;
    Ok(n > 0)
}

/// Removes a link; `false` when there was none.
pub async fn unlink(
    conn: &mut AsyncPgConnection,
    generation_id: Uuid,
    tag_id: Uuid,
) -> QueryResult<bool> {
    let n = diesel::delete(
        generation_tags::table
            .filter(generation_tags::generation_id.eq(generation_id))
            .filter(generation_tags::tag_id.eq(tag_id)),
    )
    .execute(conn)
    .await?;
    Ok(n > 0)
}
