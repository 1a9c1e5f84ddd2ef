//! Tenant member administration: the operator or an admin of the tenant lists, adds, re-roles
//! and removes members. A tenant with admins always keeps at least one.

use diesel_async::{AsyncConnection, AsyncPgConnection};
use uuid::Uuid;

use super::tenants::administered;
use crate::{
    auth::Caller,
    db::models::{
        tenant_members::{self, MemberKey, TenantMember, TenantRole},
        tenants, users,
    },
    AppError, AppResult,
};

/// Refuses a subject the `users` table could not hold (422).
fn check_subject(subject: &str) -> AppResult<()> {
    let n = subject.chars().count();
    if subject.trim().is_empty() || n > users::MAX_AUTH_SUBJECT_CHARS || subject.contains('\0') {
        return Err(AppError::unprocessable(format!(
            "auth_subject must be 1 to {} characters without NUL characters",
            users::MAX_AUTH_SUBJECT_CHARS
        )));
    }
    Ok(())
}

pub async fn list(
    conn: &mut AsyncPgConnection,
    caller: &Caller,
    tenant_id: Uuid,
) -> AppResult<Vec<TenantMember>> {
    administered(conn, caller, tenant_id).await?;
    Ok(tenant_members::list(conn, tenant_id).await?)
}

/// Adds the identity to the tenant; 409 when it already is a member.
pub async fn add(
    conn: &mut AsyncPgConnection,
    caller: &Caller,
    key: MemberKey<'_>,
    role: TenantRole,
) -> AppResult<TenantMember> {
    check_subject(key.subject)?;
    conn.transaction::<_, AppError, _>(async move |conn| {
        administer(conn, caller, key.tenant_id).await?;
        tenant_members::insert(conn, key, role)
            .await?
            .ok_or_else(|| {
                AppError::conflict(format!(
                    "'{}' is already a member of this tenant",
                    key.subject
                ))
            })
    })
    .await
}

/// Inside a transaction: locks the tenant's row, then checks that `caller` administers it.
/// Membership changes of one tenant thus run one at a time and each sees the others' results:
/// none can take away the last admin, and an admin being demoted cannot act at the same time.
/// (The lock comes first but says nothing: a tenant that does not exist is reported by
/// [`administered`], 403 or 404 as for any caller.)
async fn administer(
    conn: &mut AsyncPgConnection,
    caller: &Caller,
    tenant_id: Uuid,
) -> AppResult<()> {
    tenants::lock(conn, tenant_id).await?;
    administered(conn, caller, tenant_id).await?;
    Ok(())
}

fn not_member(key: MemberKey<'_>) -> AppError {
    AppError::not_found(format!("'{}' is not a member of this tenant", key.subject))
}

/// The member (the tenant's row is locked by [`administer`]).
async fn locked_member(
    conn: &mut AsyncPgConnection,
    key: MemberKey<'_>,
) -> AppResult<TenantMember> {
    // A subject no row can hold (from a decoded path) is nobody's.
    if key.subject.contains('\0') {
        return Err(not_member(key));
    }
    tenant_members::find(conn, key)
        .await?
        .ok_or_else(|| not_member(key))
}

async fn keep_an_admin(
    conn: &mut AsyncPgConnection,
    member: &TenantMember,
    verb: &str,
) -> AppResult<()> {
    if member.role == TenantRole::Admin
        && tenant_members::count_admins(conn, member.tenant_id).await? <= 1
    {
        return Err(AppError::conflict(format!(
            "Cannot {verb} the last admin of the tenant"
        )));
    }
    Ok(())
}

/// Changes a member's role; demoting the last admin is 409.
pub async fn set_role(
    conn: &mut AsyncPgConnection,
    caller: &Caller,
    key: MemberKey<'_>,
    role: TenantRole,
) -> AppResult<TenantMember> {
    conn.transaction::<_, AppError, _>(async move |conn| {
        administer(conn, caller, key.tenant_id).await?;
        let member = locked_member(conn, key).await?;
        if role != TenantRole::Admin {
            keep_an_admin(conn, &member, "demote").await?;
        }
        tenant_members::set_role(conn, key, role)
            .await?
            .ok_or_else(|| not_member(key))
    })
    .await
}

/// Removes a member; removing the last admin is 409.
pub async fn remove(
    conn: &mut AsyncPgConnection,
    caller: &Caller,
    key: MemberKey<'_>,
) -> AppResult<TenantMember> {
    conn.transaction::<_, AppError, _>(async move |conn| {
        administer(conn, caller, key.tenant_id).await?;
        let member = locked_member(conn, key).await?;
        keep_an_admin(conn, &member, "remove").await?;
        tenant_members::delete(conn, key).await?;
        Ok(member)
    })
    .await
}
