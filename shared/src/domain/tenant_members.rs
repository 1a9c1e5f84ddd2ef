//! Tenant member administration: the operator or an admin of the tenant lists, adds, re-roles
//! and removes members. A tenant with admins always keeps at least one.

use diesel_async::{AsyncConnection, AsyncPgConnection};
use uuid::Uuid;

use super::tenants::administered;
use crate::{
    auth::Caller,
    db::models::{
        tenant_members::{self, TenantMember, TenantRole},
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

/// Adds identity (`provider`, `subject`) to the tenant; 409 when it already is a member.
pub async fn add(
    conn: &mut AsyncPgConnection,
    caller: &Caller,
    tenant_id: Uuid,
    provider: &str,
    subject: &str,
    role: TenantRole,
) -> AppResult<TenantMember> {
    check_subject(subject)?;
    administered(conn, caller, tenant_id).await?;
    tenant_members::insert(conn, tenant_id, provider, subject, role)
        .await?
        .ok_or_else(|| {
            AppError::conflict(format!("'{subject}' is already a member of this tenant"))
        })
}

/// The member, with the tenant's row locked so that concurrent changes cannot both take away
/// the last admin.
async fn locked_member(
    conn: &mut AsyncPgConnection,
    tenant_id: Uuid,
    provider: &str,
    subject: &str,
) -> AppResult<TenantMember> {
    let not_member = || AppError::not_found(format!("'{subject}' is not a member of this tenant"));
    // A subject no row can hold (from a decoded path) is nobody's.
    if subject.contains('\0') {
        return Err(not_member());
    }
    tenants::lock(conn, tenant_id).await?;
    tenant_members::find(conn, tenant_id, provider, subject)
        .await?
        .ok_or_else(not_member)
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
    tenant_id: Uuid,
    provider: &str,
    subject: &str,
    role: TenantRole,
) -> AppResult<TenantMember> {
    conn.transaction::<_, AppError, _>(async move |conn| {
        administered(conn, caller, tenant_id).await?;
        let member = locked_member(conn, tenant_id, provider, subject).await?;
        if role != TenantRole::Admin {
            keep_an_admin(conn, &member, "demote").await?;
        }
        tenant_members::set_role(conn, tenant_id, provider, subject, role)
            .await?
            .ok_or_else(|| {
                AppError::not_found(format!("'{subject}' is not a member of this tenant"))
            })
    })
    .await
}

/// Removes a member; removing the last admin is 409.
pub async fn remove(
    conn: &mut AsyncPgConnection,
    caller: &Caller,
    tenant_id: Uuid,
    provider: &str,
    subject: &str,
) -> AppResult<TenantMember> {
    conn.transaction::<_, AppError, _>(async move |conn| {
        administered(conn, caller, tenant_id).await?;
        let member = locked_member(conn, tenant_id, provider, subject).await?;
        keep_an_admin(conn, &member, "remove").await?;
        tenant_members::delete(conn, tenant_id, provider, subject).await?;
        Ok(member)
    })
    .await
}
