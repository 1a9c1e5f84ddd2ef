//! `boards.tenant_members`: who may act in a tenant, by identity (provider, subject) — `users`
//! rows are per tenant, so they cannot say who belongs to one.

use chrono::{DateTime, Utc};
use diesel::{dsl::count_star, prelude::*};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

use crate::db::tables::tenant_members;

/// A member's role in a tenant (stored lower-case; a CHECK constraint keeps it so).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TenantRole {
    /// Manages the tenant (setup endpoints for it, its members).
    Admin,
    /// Uses the tenant (may select it with `X-Tenant`).
    Member,
}

impl TenantRole {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Admin => "admin",
            Self::Member => "member",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "admin" => Some(Self::Admin),
            "member" => Some(Self::Member),
            _ => None,
        }
    }
}

impl TryFrom<String> for TenantRole {
    type Error = String;

    fn try_from(s: String) -> Result<Self, String> {
        Self::parse(&s).ok_or_else(|| format!("unknown tenant role `{s}`"))
    }
}

#[derive(Clone, Debug, PartialEq, Queryable, Selectable)]
#[diesel(table_name = tenant_members, check_for_backend(diesel::pg::Pg))]
pub struct TenantMember {
    pub tenant_id: Uuid,
    pub auth_provider: String,
    pub auth_subject: String,
    #[diesel(deserialize_as = String)]
    pub role: TenantRole,
    pub created_at: DateTime<Utc>,
}

/// One identity (`provider`, `subject`) in one tenant: the table's primary key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MemberKey<'a> {
    pub tenant_id: Uuid,
    pub provider: &'a str,
    pub subject: &'a str,
}

impl<'a> MemberKey<'a> {
    pub fn new(tenant_id: Uuid, provider: &'a str, subject: &'a str) -> Self {
        Self {
            tenant_id,
            provider,
            subject,
        }
    }

    fn pk(self) -> (Uuid, &'a str, &'a str) {
        (self.tenant_id, self.provider, self.subject)
    }
}

/// The identity's role in the tenant, if it is a member.
pub async fn role_of(
    conn: &mut AsyncPgConnection,
    key: MemberKey<'_>,
) -> QueryResult<Option<TenantRole>> {
    Ok(find(conn, key).await?.map(|m| m.role))
}

pub async fn find(
    conn: &mut AsyncPgConnection,
    key: MemberKey<'_>,
) -> QueryResult<Option<TenantMember>> {
    tenant_members::table
        .find(key.pk())
        .select(TenantMember::as_select())
        .first(conn)
        .await
        .optional()
}

/// Members of a tenant, oldest first.
pub async fn list(conn: &mut AsyncPgConnection, tenant_id: Uuid) -> QueryResult<Vec<TenantMember>> {
    tenant_members::table
        .filter(tenant_members::tenant_id.eq(tenant_id))
        .order((
            tenant_members::created_at.asc(),
            tenant_members::auth_subject.asc(),
        ))
        .select(TenantMember::as_select())
        .load(conn)
        .await
}

/// The tenants where identity (`provider`, `subject`) has `role`.
pub async fn tenants_with_role(
    conn: &mut AsyncPgConnection,
    provider: &str,
    subject: &str,
    role: TenantRole,
) -> QueryResult<Vec<Uuid>> {
    tenant_members::table
        .filter(tenant_members::auth_provider.eq(provider))
        .filter(tenant_members::auth_subject.eq(subject))
        .filter(tenant_members::role.eq(role.as_str()))
        .select(tenant_members::tenant_id)
        .load(conn)
        .await
}

/// Number of admins of a tenant.
pub async fn count_admins(conn: &mut AsyncPgConnection, tenant_id: Uuid) -> QueryResult<i64> {
    tenant_members::table
        .filter(tenant_members::tenant_id.eq(tenant_id))
        .filter(tenant_members::role.eq(TenantRole::Admin.as_str()))
        .select(count_star())
        .first(conn)
        .await
}

/// Adds a member; `None` when the identity already is one (the row is left as it is).
pub async fn insert(
    conn: &mut AsyncPgConnection,
    key: MemberKey<'_>,
    role: TenantRole,
) -> QueryResult<Option<TenantMember>> {
    diesel::insert_into(tenant_members::table)
        .values((
            tenant_members::tenant_id.eq(key.tenant_id),
            tenant_members::auth_provider.eq(key.provider),
            tenant_members::auth_subject.eq(key.subject),
            tenant_members::role.eq(role.as_str()),
        ))
        .on_conflict_do_nothing()
        .returning(TenantMember::as_returning())
        .get_result(conn)
        .await
        .optional()
}

/// Changes a member's role; `None` when the identity is not a member.
pub async fn set_role(
    conn: &mut AsyncPgConnection,
    key: MemberKey<'_>,
    role: TenantRole,
) -> QueryResult<Option<TenantMember>> {
    diesel::update(tenant_members::table.find(key.pk()))
        .set(tenant_members::role.eq(role.as_str()))
        .returning(TenantMember::as_returning())
        .get_result(conn)
        .await
        .optional()
}

/// Removes a member; false when the identity was not one.
pub async fn delete(conn: &mut AsyncPgConnection, key: MemberKey<'_>) -> QueryResult<bool> {
    Ok(diesel::delete(tenant_members::table.find(key.pk()))
        .execute(conn)
        .await?
        > 0)
}
