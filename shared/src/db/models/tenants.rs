//! `boards.tenants`.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use serde_json::Value;
use uuid::Uuid;

use crate::db::tables::tenants;

/// Whether a tenant may be used (our `status` column; the original has no such state).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TenantStatus {
    Active,
    /// Self-registered, waiting for an operator's approval: nobody resolves into it.
    PendingApproval,
}

impl TenantStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::PendingApproval => "pending_approval",
        }
    }
}

impl TryFrom<String> for TenantStatus {
    type Error = String;

    fn try_from(s: String) -> Result<Self, String> {
        match s.as_str() {
            "active" => Ok(Self::Active),
            "pending_approval" => Ok(Self::PendingApproval),
            _ => Err(format!("unknown tenant status `{s}`")),
        }
    }
}

#[derive(Clone, Debug, Queryable, Selectable, Identifiable)]
#[diesel(table_name = tenants, check_for_backend(diesel::pg::Pg))]
pub struct Tenant {
    pub id: Uuid,
    pub name: String,
    pub slug: String,
    pub settings: Value,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    #[diesel(deserialize_as = String)]
    pub status: TenantStatus,
    /// The identity that registered the tenant itself (`POST /api/tenants/register`); `None`
    /// for tenants an operator made.
    pub registered_by_provider: Option<String>,
    pub registered_by_subject: Option<String>,
}

impl Tenant {
    pub fn self_registered(&self) -> bool {
        self.registered_by_provider.is_some()
    }
}

/// The fields of a tenant an administrator may change (`None` leaves a field as it is).
#[derive(Debug, Default, AsChangeset)]
#[diesel(table_name = tenants)]
pub struct TenantChanges {
    pub name: Option<String>,
    pub slug: Option<String>,
    pub settings: Option<Value>,
}

pub async fn find_by_slug(conn: &mut AsyncPgConnection, slug: &str) -> QueryResult<Option<Tenant>> {
    tenants::table
        .filter(tenants::slug.eq(slug))
        .select(Tenant::as_select())
        .first(conn)
        .await
        .optional()
}

pub async fn find(conn: &mut AsyncPgConnection, id: Uuid) -> QueryResult<Option<Tenant>> {
    tenants::table
        .find(id)
        .select(Tenant::as_select())
        .first(conn)
        .await
        .optional()
}

/// Locks the tenant's row until the end of the transaction (serialises member changes).
pub async fn lock(conn: &mut AsyncPgConnection, id: Uuid) -> QueryResult<Option<Tenant>> {
    tenants::table
        .find(id)
        .select(Tenant::as_select())
        .for_update()
        .first(conn)
        .await
        .optional()
}

/// Tenants, newest first; `only` restricts the list to those ids.
pub async fn list(conn: &mut AsyncPgConnection, only: Option<&[Uuid]>) -> QueryResult<Vec<Tenant>> {
    let mut query = tenants::table
        .select(Tenant::as_select())
        .order((tenants::created_at.desc(), tenants::id.desc()))
        .into_boxed();
    if let Some(ids) = only {
        query = query.filter(tenants::id.eq_any(ids));
    }
    query.load(conn).await
}

/// Returns the tenant with `slug`, creating it (race-free) when missing.
pub async fn ensure(conn: &mut AsyncPgConnection, slug: &str, name: &str) -> QueryResult<Tenant> {
    Ok(ensure_with(conn, slug, name, &serde_json::json!({}))
        .await?
        .0)
}

/// Like [`ensure`] with the settings of a new tenant; also says whether it was created.
pub async fn ensure_with(
    conn: &mut AsyncPgConnection,
    slug: &str,
    name: &str,
    settings: &Value,
) -> QueryResult<(Tenant, bool)> {
    if let Some(created) = insert(conn, slug, name, settings, TenantStatus::Active, None).await? {
        return Ok((created, true));
    }
    let existing = tenants::table
        .filter(tenants::slug.eq(slug))
        .select(Tenant::as_select())
        .first(conn)
        .await?;
    Ok((existing, false))
}

/// Inserts a tenant; `None` when the slug is taken (never an error, never a second row).
pub async fn insert(
    conn: &mut AsyncPgConnection,
    slug: &str,
    name: &str,
    settings: &Value,
    status: TenantStatus,
    registrant: Option<(&str, &str)>,
) -> QueryResult<Option<Tenant>> {
    diesel::insert_into(tenants::table)
        .values((
            tenants::slug.eq(slug),
            tenants::name.eq(name),
            tenants::settings.eq(settings),
            tenants::status.eq(status.as_str()),
            tenants::registered_by_provider.eq(registrant.map(|r| r.0)),
            tenants::registered_by_subject.eq(registrant.map(|r| r.1)),
        ))
        .on_conflict(tenants::slug)
        .do_nothing()
        .returning(Tenant::as_returning())
        .get_result(conn)
        .await
        .optional()
}

/// How many existing tenants identity (`provider`, `subject`) registered itself.
pub async fn count_registered_by(
    conn: &mut AsyncPgConnection,
    provider: &str,
    subject: &str,
) -> QueryResult<i64> {
    tenants::table
        .filter(tenants::registered_by_provider.eq(provider))
        .filter(tenants::registered_by_subject.eq(subject))
        .count()
        .get_result(conn)
        .await
}

/// Applies `changes`; `None` when the tenant does not exist.
pub async fn update(
    conn: &mut AsyncPgConnection,
    id: Uuid,
    changes: &TenantChanges,
) -> QueryResult<Option<Tenant>> {
    if changes.name.is_none() && changes.slug.is_none() && changes.settings.is_none() {
        return find(conn, id).await;
    }
    diesel::update(tenants::table.find(id))
        .set(changes)
        .returning(Tenant::as_returning())
        .get_result(conn)
        .await
        .optional()
}

/// Sets the status; `None` when the tenant does not exist.
pub async fn set_status(
    conn: &mut AsyncPgConnection,
    id: Uuid,
    status: TenantStatus,
) -> QueryResult<Option<Tenant>> {
    diesel::update(tenants::table.find(id))
        .set(tenants::status.eq(status.as_str()))
        .returning(Tenant::as_returning())
        .get_result(conn)
        .await
        .optional()
}

/// Deletes the tenant and, through the database's cascades, everything it owns.
pub async fn delete(conn: &mut AsyncPgConnection, id: Uuid) -> QueryResult<bool> {
    Ok(diesel::delete(tenants::table.find(id))
        .execute(conn)
        .await?
        > 0)
}
