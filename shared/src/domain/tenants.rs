//! Tenant administration (`/api/setup`, contract §3.7) with the fixes of runtime §5.5: the
//! operator (admin token) administers every tenant, an identity only the tenants where it is an
//! `admin` member; only the operator creates and approves tenants.

use diesel::sql_types;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use serde_json::Value;
use uuid::Uuid;

use super::text::{check_json_size, check_text, json_has_nul};
use crate::{
    auth::Caller,
    config::{valid_slug, TenancyConfig},
    db::models::{
        tenant_members::{self, MemberKey, TenantRole},
        tenants::{self, TenantChanges, TenantStatus},
        Tenant,
    },
    AppError, AppResult,
};

/// Longest tenant name and slug (`varchar(255)`).
pub const MAX_NAME_CHARS: usize = 255;

/// Refuses a tenant name that is empty or longer than 255 characters (422).
pub fn check_name(field: &str, name: &str) -> AppResult<()> {
    check_text(field, name).map_err(|e| AppError::unprocessable(e.to_string()))?;
    let n = name.chars().count();
    if n == 0 || n > MAX_NAME_CHARS {
        return Err(AppError::unprocessable(format!(
            "{field} must be 1 to {MAX_NAME_CHARS} characters"
        )));
    }
    Ok(())
}

/// Refuses a slug that could never be named in `X-Tenant` (422).
pub fn check_slug(field: &str, slug: &str) -> AppResult<()> {
    if !valid_slug(slug) {
        return Err(AppError::unprocessable(format!(
            "{field} must match ^[a-z0-9-]+$, be 1 to 255 characters and not start or end with '-'"
        )));
    }
    Ok(())
}

/// Refuses settings that are not a JSON object jsonb can hold, or that are too large (422).
pub fn check_settings(field: &str, settings: &Value) -> AppResult<()> {
    if !settings.is_object() {
        return Err(AppError::unprocessable(format!(
            "{field} must be a JSON object"
        )));
    }
    if json_has_nul(settings) {
        return Err(AppError::unprocessable(format!(
            "{field} must not contain NUL characters"
        )));
    }
    check_json_size(field, settings).map_err(|e| AppError::unprocessable(e.to_string()))
}

fn operator_only(caller: &Caller, what: &str) -> AppResult<()> {
    match caller {
        Caller::Operator => Ok(()),
        Caller::Identity(_) => Err(AppError::forbidden(format!(
            "{what} requires the admin token"
        ))),
    }
}

/// The tenant `id` when `caller` may administer it: 403 for an identity that is not one of its
/// admins (whether or not it exists), 404 for the operator when it does not exist.
pub async fn administered(
    conn: &mut AsyncPgConnection,
    caller: &Caller,
    id: Uuid,
) -> AppResult<Tenant> {
    if let Caller::Identity(p) = caller {
        let role =
            tenant_members::role_of(conn, MemberKey::new(id, &p.provider, &p.subject)).await?;
        if role != Some(TenantRole::Admin) {
            return Err(AppError::forbidden("You are not an admin of this tenant"));
        }
    }
    tenants::find(conn, id)
        .await?
        .ok_or_else(|| AppError::not_found(format!("Tenant with ID {id} not found")))
}

/// Tenants `caller` administers (all of them for the operator), newest first.
pub async fn list(conn: &mut AsyncPgConnection, caller: &Caller) -> AppResult<Vec<Tenant>> {
    match caller {
        Caller::Operator => Ok(tenants::list(conn, None).await?),
        Caller::Identity(p) => {
            let ids =
                tenant_members::tenants_with_role(conn, &p.provider, &p.subject, TenantRole::Admin)
                    .await?;
            Ok(tenants::list(conn, Some(ids.as_slice())).await?)
        }
    }
}

/// What `POST /api/setup/tenant` asks for (already shaped; checked here).
pub struct NewTenant {
    pub name: String,
    pub slug: String,
    pub settings: Value,
}

/// Ensures the tenant `slug` (operator only): an existing tenant is returned unchanged. Says
/// whether it was created.
pub async fn ensure(
    conn: &mut AsyncPgConnection,
    caller: &Caller,
    new: NewTenant,
) -> AppResult<(Tenant, bool)> {
    operator_only(caller, "Creating tenants")?;
    check_name("name", &new.name)?;
    check_slug("slug", &new.slug)?;
    check_settings("settings", &new.settings)?;
    Ok(tenants::ensure_with(conn, &new.slug, &new.name, &new.settings).await?)
}

/// Applies the provided fields; a slug another tenant has is 409. The default tenant keeps its
/// slug: callers without a tenant claim resolve to it by that slug, and a renamed default would
/// be replaced by a new, empty one at the next request.
pub async fn update(
    conn: &mut AsyncPgConnection,
    caller: &Caller,
    tenancy: &TenancyConfig,
    id: Uuid,
    changes: TenantChanges,
) -> AppResult<Tenant> {
    if let Some(name) = &changes.name {
        check_name("name", name)?;
    }
    if let Some(slug) = &changes.slug {
        check_slug("slug", slug)?;
    }
    if let Some(settings) = &changes.settings {
        check_settings("settings", settings)?;
    }
    let current = administered(conn, caller, id).await?;
    let taken =
        |slug: &str| AppError::conflict(format!("A tenant with slug '{slug}' already exists"));
    if let Some(slug) = changes.slug.as_deref().filter(|s| *s != current.slug) {
        // A slug is what an identity provider's tenant claim may name, and a claim puts its
        // users into the tenant with that slug: only the operator chooses slugs.
        operator_only(caller, "Changing a tenant's slug")?;
        if current.slug == tenancy.default_tenant_slug {
            return Err(AppError::bad_input(format!(
                "The default tenant's slug '{}' cannot be changed (BOARDS_DEFAULT_TENANT_SLUG names it)",
                current.slug
            )));
        }
        if tenants::find_by_slug(conn, slug).await?.is_some() {
            return Err(taken(slug));
        }
    }
    match tenants::update(conn, id, &changes).await {
        Ok(Some(t)) => Ok(t),
        Ok(None) => Err(AppError::not_found(format!(
            "Tenant with ID {id} not found"
        ))),
        // Another request took the slug between the check and the update.
        Err(diesel::result::Error::DatabaseError(
            diesel::result::DatabaseErrorKind::UniqueViolation,
            _,
        )) => Err(taken(changes.slug.as_deref().unwrap_or_default())),
        Err(e) => Err(e.into()),
    }
}

/// Deletes a tenant and everything it owns (database cascades). The default tenant cannot be
/// deleted in single-tenant mode (everything resolves to it).
pub async fn delete(
    conn: &mut AsyncPgConnection,
    caller: &Caller,
    tenancy: &TenancyConfig,
    id: Uuid,
) -> AppResult<Tenant> {
    let tenant = administered(conn, caller, id).await?;
    if !tenancy.multi_tenant_mode && tenant.slug == tenancy.default_tenant_slug {
        return Err(AppError::bad_input(
            "Cannot delete the default tenant in single-tenant mode",
        ));
    }
    conn.transaction::<_, AppError, _>(async move |conn| {
        // `board_members.invited_by` has no cascade (contract §4): invitations by this
        // tenant's users on other tenants' boards would otherwise block the delete.
        diesel::sql_query(
            "UPDATE boards.board_members SET invited_by = NULL
             WHERE invited_by IN (SELECT id FROM boards.users WHERE tenant_id = $1)",
        )
        .bind::<sql_types::Uuid, _>(id)
        .execute(conn)
        .await?;
        if !tenants::delete(conn, id).await? {
            return Err(AppError::not_found(format!(
                "Tenant with ID {id} not found"
            )));
        }
        Ok(())
    })
    .await?;
    Ok(tenant)
}

/// Makes a tenant pending approval usable (operator only); approving an active tenant is a
/// no-op.
pub async fn approve(conn: &mut AsyncPgConnection, caller: &Caller, id: Uuid) -> AppResult<Tenant> {
    operator_only(caller, "Approving tenants")?;
    tenants::set_status(conn, id, TenantStatus::Active)
        .await?
        .ok_or_else(|| AppError::not_found(format!("Tenant with ID {id} not found")))
}
