//! `/api/setup` (contract §3.7): tenant administration. Every route except `GET /status` needs
//! the admin token, or, for reading, changing and deleting one tenant (and listing), an `admin`
//! member of that tenant; creating and approving need the admin token.

use actix_web::{web, HttpRequest, HttpResponse};
use boards_shared::{
    db::models::{tenants as tenant_rows, tenants::TenantChanges, Tenant},
    domain::tenants::{self, NewTenant},
    AppError,
};
use serde::Deserialize;
use serde_json::{json, Value};

use super::{as_admin, failure, json_body, path_uuid};
use crate::{graphql::scalars::isoformat, state::AppState};

/// `TenantResponse`, plus our `status` (`active` or `pending_approval`).
pub fn tenant_json(t: &Tenant) -> Value {
    json!({
        "tenant_id": t.id,
        "name": t.name,
        "slug": t.slug,
        "settings": t.settings,
        "status": t.status.as_str(),
        "created_at": isoformat(&t.created_at),
        "updated_at": isoformat(&t.updated_at),
    })
}

/// `GET /api/setup/status`: public, and read-only (the original created the default tenant).
pub async fn status(state: web::Data<AppState>, req: HttpRequest) -> HttpResponse {
    let tenancy = &state.config.tenancy;
    let found = async {
        let mut conn = state.pool.get().await?;
        Ok::<_, AppError>(tenant_rows::find_by_slug(&mut conn, &tenancy.default_tenant_slug).await?)
    }
    .await;
    let default = match found {
        Ok(t) => t,
        Err(e) => return failure(&state, &req, &e),
    };
    let mut recommendations = Vec::new();
    if default.is_none() {
        recommendations.push(format!(
            "Create the default tenant '{}': restart the API (it ensures the default tenant) or POST /api/setup/tenant with the admin token",
            tenancy.default_tenant_slug
        ));
    }
    if state.config.auth.provider == "none" {
        recommendations.push(
            "Configure an authentication provider (BOARDS_AUTH_PROVIDER) before going to production"
                .to_string(),
        );
    }
    if tenancy.admin_token.as_ref().is_none_or(|t| t.is_empty()) {
        recommendations.push(
            "Set BOARDS_ADMIN_TOKEN to create and approve tenants through /api/setup".to_string(),
        );
    }
    HttpResponse::Ok().json(json!({
        "setup_needed": default.is_none(),
        "has_default_tenant": default.is_some(),
        "default_tenant_id": default.as_ref().map(|t| t.id.to_string()),
        "default_tenant_slug": tenancy.default_tenant_slug,
        "multi_tenant_mode": tenancy.multi_tenant_mode,
        "auth_provider": state.config.auth.provider,
        "recommendations": recommendations,
    }))
}

#[derive(Deserialize)]
struct CreateBody {
    name: String,
    slug: String,
    #[serde(default = "super::empty_object")]
    settings: Value,
    /// Accepted for compatibility; there is no sample data to create.
    #[serde(default)]
    #[allow(dead_code)]
    include_sample_data: bool,
}

/// `POST /api/setup/tenant`: ensures a tenant by slug (admin token only); an existing tenant is
/// returned unchanged.
pub async fn create(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: web::Bytes,
) -> HttpResponse {
    as_admin(&state, &req, async |conn, caller| {
        let body: CreateBody = json_body(&body)?;
        let new = NewTenant {
            name: body.name,
            slug: body.slug,
            settings: body.settings,
        };
        let (tenant, created) = tenants::ensure(conn, &caller, new).await?;
        Ok(HttpResponse::Ok().json(json!({
            "tenant_id": tenant.id,
            "name": tenant.name,
            "slug": tenant.slug,
            "message": if created { "Tenant created successfully" } else { "Tenant configured successfully" },
            "existing": !created,
        })))
    })
    .await
}

/// `GET /api/setup/tenants`: the tenants the caller administers, newest first.
pub async fn list(state: web::Data<AppState>, req: HttpRequest) -> HttpResponse {
    as_admin(&state, &req, async |conn, caller| {
        let list = tenants::list(conn, &caller).await?;
        Ok(HttpResponse::Ok().json(json!({
            "tenants": list.iter().map(tenant_json).collect::<Vec<_>>(),
            "total_count": list.len(),
        })))
    })
    .await
}

/// `GET /api/setup/tenant/{tenant_id}`
pub async fn get(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<String>,
) -> HttpResponse {
    as_admin(&state, &req, async |conn, caller| {
        let id = path_uuid(&path, "tenant_id")?;
        let tenant = tenants::administered(conn, &caller, id).await?;
        Ok(HttpResponse::Ok().json(tenant_json(&tenant)))
    })
    .await
}

#[derive(Deserialize)]
struct UpdateBody {
    name: Option<String>,
    slug: Option<String>,
    settings: Option<Value>,
}

/// `PUT /api/setup/tenant/{tenant_id}`: changes the provided fields (settings replaced).
pub async fn update(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Bytes,
) -> HttpResponse {
    let auth = state.auth.clone();
    let tenancy = state.config.tenancy.clone();
    as_admin(&state, &req, async |conn, caller| {
        let id = path_uuid(&path, "tenant_id")?;
        let body: UpdateBody = json_body(&body)?;
        let changes = TenantChanges {
            name: body.name,
            slug: body.slug,
            settings: body.settings,
        };
        let tenant = tenants::update(conn, &caller, &tenancy, id, changes).await?;
        // A renamed slug must stop resolving to this tenant at once.
        auth.invalidate_tenants();
        Ok(HttpResponse::Ok().json(tenant_json(&tenant)))
    })
    .await
}

/// `DELETE /api/setup/tenant/{tenant_id}`: deletes the tenant and all its data.
pub async fn delete(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<String>,
) -> HttpResponse {
    let auth = state.auth.clone();
    let tenancy = state.config.tenancy.clone();
    as_admin(&state, &req, async |conn, caller| {
        let id = path_uuid(&path, "tenant_id")?;
        let tenant = tenants::delete(conn, &caller, &tenancy, id).await?;
        auth.invalidate_tenants();
        Ok(HttpResponse::Ok().json(json!({
            "message": format!("Tenant '{}' ({}) deleted successfully", tenant.name, tenant.slug),
            "tenant_id": tenant.id,
            "warning": "All related data (users, boards, generations, etc.) has been permanently deleted",
        })))
    })
    .await
}

/// `POST /api/setup/tenant/{tenant_id}/approve` (ours): makes a registration pending approval
/// usable; admin token only.
pub async fn approve(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<String>,
) -> HttpResponse {
    let auth = state.auth.clone();
    as_admin(&state, &req, async |conn, caller| {
        let id = path_uuid(&path, "tenant_id")?;
        let tenant = tenants::approve(conn, &caller, id).await?;
        auth.invalidate_tenants();
        Ok(HttpResponse::Ok().json(tenant_json(&tenant)))
    })
    .await
}
