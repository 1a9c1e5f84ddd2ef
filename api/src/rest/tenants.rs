//! `/api/tenants`: self-service registration (contract §3.8) and member administration (ours):
//! `GET|POST /api/tenants/{tenant_id}/members`, `PUT|DELETE .../members/{subject}`, for the
//! operator (admin token) or an `admin` member of that tenant.

use actix_web::{web, HttpRequest, HttpResponse};
use boards_shared::{
    db::models::{tenant_members::MemberKey, TenantMember, TenantRole, TenantStatus},
    domain::{
        registration::{self, Registration},
        tenant_members,
    },
    AppError, AppResult,
};
use serde::Deserialize;
use serde_json::{json, Value};

use super::{as_admin, error_response, failure, json_body, path_uuid};
use crate::{graphql::scalars::isoformat, state::AppState};

/// `GET /api/tenants/registration/status`
pub async fn registration_status(state: web::Data<AppState>) -> HttpResponse {
    let t = &state.config.tenancy;
    HttpResponse::Ok().json(json!({
        "enabled": t.multi_tenant_mode,
        "requires_approval": t.registration_requires_approval,
        "max_tenants_per_user": t.registration_max_per_user,
        "allowed_domains": (!t.registration_allowed_domains.is_empty())
            .then_some(&t.registration_allowed_domains),
    }))
}

#[derive(Deserialize)]
struct RegisterBody {
    organization_name: String,
    organization_slug: Option<String>,
    admin_email: String,
    admin_name: Option<String>,
    use_case: Option<String>,
    organization_size: Option<String>,
    #[serde(default = "super::empty_object")]
    metadata: Value,
    /// Accepted for compatibility; there is no sample data to create.
    #[serde(default)]
    #[allow(dead_code)]
    include_sample_data: Option<bool>,
}

/// `POST /api/tenants/register`: creates a tenant with the caller as its admin.
pub async fn register(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: web::Bytes,
) -> HttpResponse {
    let tenancy = &state.config.tenancy;
    if let Err(e) = registration::ensure_enabled(tenancy) {
        return error_response(&e);
    }
    let auth = match crate::caller::authenticate(&state, &req).await {
        Ok(auth) => auth,
        Err(e) => return failure(&state, &req, &e),
    };
    let (Some(user_id), Some(principal)) = (auth.user_id(), auth.principal.as_ref()) else {
        return error_response(&AppError::unauthenticated(
            "Authentication required for tenant registration",
        ));
    };
    let result = async {
        let body: RegisterBody = json_body(&body)?;
        let mut conn = state.pool.get().await?;
        let registration = Registration {
            organization_name: body.organization_name,
            organization_slug: body.organization_slug,
            admin_email: body.admin_email,
            admin_name: body.admin_name,
            use_case: body.use_case,
            organization_size: body.organization_size,
            metadata: body.metadata,
        };
        let tenant =
            registration::register(&mut conn, tenancy, principal, user_id, registration).await?;
        state
            .auth
            .invalidate_member(MemberKey::new(
                tenant.id,
                &principal.provider,
                &principal.subject,
            ))
            .await;
        Ok::<_, AppError>(tenant)
    }
    .await;
    let tenant = match result {
        Ok(t) => t,
        Err(e) => return failure(&state, &req, &e),
    };
    let pending = tenant.status == TenantStatus::PendingApproval;
    let instructions = if pending {
        "Your organization is registered and waits for an administrator's approval. Once it is approved, send the X-Tenant header below with every request.".to_string()
    } else {
        format!(
            "Your organization is ready and you are its admin. Send 'X-Tenant: {}' with every request; add members with POST /api/tenants/{}/members.",
            tenant.slug, tenant.id
        )
    };
    let dashboard_url = tenancy
        .frontend_base_url
        .as_deref()
        .filter(|u| !u.is_empty())
        .map(|u| format!("{}/?tenant={}", u.trim_end_matches('/'), tenant.slug));
    HttpResponse::Ok().json(json!({
        "tenant_id": tenant.id,
        "organization_name": tenant.name,
        "tenant_slug": tenant.slug,
        "status": tenant.status.as_str(),
        "admin_instructions": instructions,
        "dashboard_url": dashboard_url,
        "api_access": {
            "tenant_header": format!("X-Tenant: {}", tenant.slug),
            "graphql_endpoint": "/graphql",
            "api_base_url": "/api",
            "authentication_required": true,
        },
    }))
}

fn member_json(m: &TenantMember) -> Value {
    json!({
        "tenant_id": m.tenant_id,
        "auth_provider": m.auth_provider,
        "auth_subject": m.auth_subject,
        "role": m.role.as_str(),
        "created_at": isoformat(&m.created_at),
    })
}

fn role(value: &str) -> AppResult<TenantRole> {
    TenantRole::parse(&value.trim().to_ascii_lowercase())
        .ok_or_else(|| AppError::unprocessable("role must be 'admin' or 'member'"))
}

/// `GET /api/tenants/{tenant_id}/members`
pub async fn list_members(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<String>,
) -> HttpResponse {
    as_admin(&state, &req, async |conn, caller| {
        let tenant_id = path_uuid(&path, "tenant_id")?;
        let members = tenant_members::list(conn, &caller, tenant_id).await?;
        Ok(HttpResponse::Ok().json(json!({
            "members": members.iter().map(member_json).collect::<Vec<_>>(),
            "total_count": members.len(),
        })))
    })
    .await
}

#[derive(Deserialize)]
struct AddBody {
    auth_subject: String,
    role: String,
}

/// `POST /api/tenants/{tenant_id}/members` `{"auth_subject", "role"}` → 201: the identity of the
/// configured provider with that subject becomes a member.
pub async fn add_member(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Bytes,
) -> HttpResponse {
    let auth = state.auth.clone();
    as_admin(&state, &req, async |conn, caller| {
        let tenant_id = path_uuid(&path, "tenant_id")?;
        let body: AddBody = json_body(&body)?;
        let role = role(&body.role)?;
        let key = MemberKey::new(tenant_id, auth.provider().name(), &body.auth_subject);
        let member = tenant_members::add(conn, &caller, key, role).await?;
        auth.invalidate_member(key).await;
        Ok(HttpResponse::Created().json(member_json(&member)))
    })
    .await
}

#[derive(Deserialize)]
struct RoleBody {
    role: String,
}

/// `PUT /api/tenants/{tenant_id}/members/{subject}` `{"role"}`
pub async fn update_member(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<(String, String)>,
    body: web::Bytes,
) -> HttpResponse {
    let auth = state.auth.clone();
    as_admin(&state, &req, async |conn, caller| {
        let tenant_id = path_uuid(&path.0, "tenant_id")?;
        let body: RoleBody = json_body(&body)?;
        let role = role(&body.role)?;
        let key = MemberKey::new(tenant_id, auth.provider().name(), &path.1);
        let member = tenant_members::set_role(conn, &caller, key, role).await?;
        auth.invalidate_member(key).await;
        Ok(HttpResponse::Ok().json(member_json(&member)))
    })
    .await
}

/// `DELETE /api/tenants/{tenant_id}/members/{subject}`
pub async fn remove_member(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<(String, String)>,
) -> HttpResponse {
    let auth = state.auth.clone();
    as_admin(&state, &req, async |conn, caller| {
        let tenant_id = path_uuid(&path.0, "tenant_id")?;
        let key = MemberKey::new(tenant_id, auth.provider().name(), &path.1);
        let member = tenant_members::remove(conn, &caller, key).await?;
        auth.invalidate_member(key).await;
        Ok(HttpResponse::Ok().json(json!({
            "message": format!("'{}' is no longer a member of the tenant", member.auth_subject),
            "member": member_json(&member),
        })))
    })
    .await
}
