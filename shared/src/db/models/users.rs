//! `boards.users`: one row per (tenant, auth provider, subject).

use chrono::{DateTime, Utc};
use diesel::{dsl::sql, prelude::*, sql_types};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use serde_json::{json, Value};
use uuid::Uuid;

use crate::{auth::Principal, db::tables::users};

/// Column sizes (`varchar(n)`, in characters) of `auth_subject`, `email` and `display_name`.
pub const MAX_AUTH_SUBJECT_CHARS: usize = 255;
pub const MAX_EMAIL_CHARS: usize = 255;
pub const MAX_DISPLAY_NAME_CHARS: usize = 255;

#[derive(Clone, Debug, PartialEq, Queryable, Selectable, Identifiable)]
#[diesel(table_name = users, check_for_backend(diesel::pg::Pg))]
pub struct User {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub auth_provider: String,
    pub auth_subject: String,
    pub email: Option<String>,
    pub display_name: Option<String>,
    pub avatar_url: Option<String>,
    pub metadata: Value,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Insertable)]
#[diesel(table_name = users)]
pub struct NewUser<'a> {
    pub tenant_id: Uuid,
    pub auth_provider: &'a str,
    pub auth_subject: &'a str,
    pub email: Option<&'a str>,
    pub display_name: Option<&'a str>,
    pub avatar_url: Option<&'a str>,
    pub metadata: Value,
}

pub async fn find(conn: &mut AsyncPgConnection, id: Uuid) -> QueryResult<Option<User>> {
    users::table
        .find(id)
        .select(User::as_select())
        .first(conn)
        .await
        .optional()
}

pub async fn find_many(conn: &mut AsyncPgConnection, ids: &[Uuid]) -> QueryResult<Vec<User>> {
    users::table
        .filter(users::id.eq_any(ids))
        .select(User::as_select())
        .load(conn)
        .await
}

pub async fn find_by_identity(
    conn: &mut AsyncPgConnection,
    tenant_id: Uuid,
    provider: &str,
    subject: &str,
) -> QueryResult<Option<User>> {
    users::table
        .filter(users::tenant_id.eq(tenant_id))
        .filter(users::auth_provider.eq(provider))
        .filter(users::auth_subject.eq(subject))
        .select(User::as_select())
        .first(conn)
        .await
        .optional()
}

/// Users of `tenant_id` whose e-mail matches case-insensitively, oldest first.
pub async fn find_by_email(
    conn: &mut AsyncPgConnection,
    tenant_id: Uuid,
    email: &str,
) -> QueryResult<Vec<User>> {
    users::table
        .filter(users::tenant_id.eq(tenant_id))
        .filter(
            sql::<sql_types::Bool>("lower(email) = lower(")
                .bind::<sql_types::Text, _>(email)
                .sql(")"),
        )
        .order((users::created_at.asc(), users::id.asc()))
        .select(User::as_select())
        .load(conn)
        .await
}

fn non_empty(v: &Option<String>) -> Option<&str> {
    v.as_deref().filter(|s| !s.is_empty())
}

/// True when provisioning would fill a blank profile field of `user` from `principal`.
pub fn needs_fill(user: &User, principal: &Principal) -> bool {
    (non_empty(&user.email).is_none() && non_empty(&principal.email).is_some())
        || (non_empty(&user.display_name).is_none() && non_empty(&principal.display_name).is_some())
        || (non_empty(&user.avatar_url).is_none() && non_empty(&principal.avatar_url).is_some())
}

/// Just-in-time provisioning in one statement: inserts the user, or, when it exists, fills
/// blank profile fields (never overwriting). Concurrent first requests cannot both insert.
pub async fn provision(
    conn: &mut AsyncPgConnection,
    tenant_id: Uuid,
    principal: &Principal,
) -> QueryResult<User> {
    let new = NewUser {
        tenant_id,
        auth_provider: &principal.provider,
        auth_subject: &principal.subject,
        email: non_empty(&principal.email),
        display_name: non_empty(&principal.display_name),
        avatar_url: non_empty(&principal.avatar_url),
        metadata: json!({"created_via": "jit_provisioning", "provider_claims": principal.claims}),
    };
    diesel::insert_into(users::table)
        .values(&new)
        .on_conflict((users::tenant_id, users::auth_provider, users::auth_subject))
        .do_update()
        .set((
            users::email.eq(sql::<sql_types::Nullable<sql_types::Varchar>>(
                "COALESCE(NULLIF(boards.users.email, ''), excluded.email)",
            )),
            users::display_name.eq(sql::<sql_types::Nullable<sql_types::Varchar>>(
                "COALESCE(NULLIF(boards.users.display_name, ''), excluded.display_name)",
            )),
            users::avatar_url.eq(sql::<sql_types::Nullable<sql_types::Text>>(
                "COALESCE(NULLIF(boards.users.avatar_url, ''), excluded.avatar_url)",
            )),
        ))
        .returning(User::as_returning())
        .get_result(conn)
        .await
}
