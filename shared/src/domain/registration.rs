//! Self-service tenant registration (`POST /api/tenants/register`, contract §3.8) with the
//! fixes of runtime §5.5: an existing slug is refused (never handed to a stranger), the
//! per-identity limit is enforced, approval really holds the tenant back, and the caller becomes
//! the new tenant's `admin` member.

use diesel::sql_types;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use serde_json::{json, Value};
use uuid::Uuid;

use super::tenants::{check_name, check_settings, check_slug};
use crate::{
    auth::Principal,
    config::TenancyConfig,
    db::models::{
        tenant_members::{self, MemberKey, TenantRole},
        tenants::{self, TenantStatus},
        Tenant,
    },
    AppError, AppResult,
};

/// `organization_size` values (stored lower-case).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OrganizationSize {
    Small,
    Medium,
    Large,
    Enterprise,
}

impl OrganizationSize {
    /// Case-insensitive, as the original.
    pub fn parse(s: &str) -> Option<Self> {
        match s.to_ascii_lowercase().as_str() {
            "small" => Some(Self::Small),
            "medium" => Some(Self::Medium),
            "large" => Some(Self::Large),
            "enterprise" => Some(Self::Enterprise),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Small => "small",
            Self::Medium => "medium",
            Self::Large => "large",
            Self::Enterprise => "enterprise",
        }
    }
}

/// A registration request, shaped by the endpoint; checked here.
pub struct Registration {
    pub organization_name: String,
    pub organization_slug: Option<String>,
    pub admin_email: String,
    pub admin_name: Option<String>,
    pub use_case: Option<String>,
    pub organization_size: Option<String>,
    pub metadata: Value,
}

/// Longest `use_case`.
const MAX_USE_CASE_CHARS: usize = 500;

/// `^[^@]+@[^@]+\.[^@]+$`, as the original.
fn valid_email(email: &str) -> bool {
    let Some((local, domain)) = email.split_once('@') else {
        return false;
    };
    // Some dot with text on both sides.
    let dotted = domain
        .char_indices()
        .any(|(i, c)| c == '.' && i > 0 && i + 1 < domain.len());
    !local.is_empty() && !domain.contains('@') && dotted
}

/// The slug of an organization name: lower-case, runs of other characters as one `-`, trimmed;
/// shorter than 3 → `org-<8 hex>`, longer than 50 → 47 characters, `-` and 2 hex.
pub fn slug_of(name: &str) -> String {
    let mut slug = String::new();
    for c in name.to_lowercase().chars() {
        if c.is_ascii_lowercase() || c.is_ascii_digit() {
            slug.push(c);
        } else if !slug.ends_with('-') {
            slug.push('-');
        }
    }
    let slug = slug.trim_matches('-').to_string();
    let hex = Uuid::new_v4().simple().to_string();
    if slug.len() < 3 {
        format!("org-{}", &hex[..8])
    } else if slug.len() > 50 {
        format!("{}-{}", slug[..47].trim_end_matches('-'), &hex[..2])
    } else {
        slug
    }
}

/// Settings checks that come before any database access, in the contract's order.
fn checked(tenancy: &TenancyConfig, r: &Registration) -> AppResult<(String, Value)> {
    check_name("organization_name", &r.organization_name)?;
    if let Some(slug) = &r.organization_slug {
        check_slug("organization_slug", slug)?;
    }
    let email = r.admin_email.trim().to_lowercase();
    if !valid_email(&email) || email.chars().count() > 255 || email.contains('\0') {
        return Err(AppError::unprocessable(
            "admin_email must be an e-mail address",
        ));
    }
    if let Some(name) = &r.admin_name {
        if name.chars().count() > 255 || name.contains('\0') {
            return Err(AppError::unprocessable(
                "admin_name must be at most 255 characters without NUL characters",
            ));
        }
    }
    if let Some(use_case) = &r.use_case {
        if use_case.chars().count() > MAX_USE_CASE_CHARS || use_case.contains('\0') {
            return Err(AppError::unprocessable(format!(
                "use_case must be at most {MAX_USE_CASE_CHARS} characters"
            )));
        }
    }
    let size = match r.organization_size.as_deref() {
        None => None,
        Some(s) => Some(OrganizationSize::parse(s).ok_or_else(|| {
            AppError::unprocessable(
                "organization_size must be one of small, medium, large, enterprise",
            )
        })?),
    };
    check_settings("metadata", &r.metadata)?;
    let domain = email.rsplit_once('@').map_or("", |(_, d)| d).to_string();
    let allowed = &tenancy.registration_allowed_domains;
    if !allowed.is_empty()
        && !allowed
            .iter()
            .any(|d| d.trim().eq_ignore_ascii_case(&domain))
    {
        return Err(AppError::bad_input(format!(
            "Email domain '{domain}' is not allowed for registration"
        )));
    }
    let slug = r
        .organization_slug
        .clone()
        .unwrap_or_else(|| slug_of(&r.organization_name));
    let settings = json!({
        "admin_email": email,
        "admin_name": r.admin_name,
        "use_case": r.use_case,
        "organization_size": size.map(OrganizationSize::as_str),
        "registration_metadata": r.metadata,
    });
    Ok((slug, settings))
}

/// Registration exists only in multi-tenant mode (400 otherwise).
pub fn ensure_enabled(tenancy: &TenancyConfig) -> AppResult<()> {
    if !tenancy.multi_tenant_mode {
        return Err(AppError::bad_input(
            "Tenant registration is only available in multi-tenant mode",
        ));
    }
    Ok(())
}

/// Creates the tenant (pending approval when the deployment requires it) with the caller as its
/// `admin` member. `user_id` is the caller's user (recorded as `registered_by`).
pub async fn register(
    conn: &mut AsyncPgConnection,
    tenancy: &TenancyConfig,
    caller: &Principal,
    user_id: Uuid,
    registration: Registration,
) -> AppResult<Tenant> {
    ensure_enabled(tenancy)?;
    let (slug, mut settings) = checked(tenancy, &registration)?;
    if let Some(s) = settings.as_object_mut() {
        s.insert("registered_by".into(), json!(user_id));
    }
    let status = if tenancy.registration_requires_approval {
        TenantStatus::PendingApproval
    } else {
        TenantStatus::Active
    };
    let limit = tenancy.registration_max_per_user;
    let name = registration.organization_name;
    conn.transaction::<_, AppError, _>(async move |conn| {
        // One registration per identity at a time, so the limit holds under concurrency.
        diesel::sql_query("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))")
            .bind::<sql_types::Text, _>(format!(
                "tenant-registration:{}:{}",
                caller.provider, caller.subject
            ))
            .execute(conn)
            .await?;
        if let Some(limit) = limit {
            // Registrations, not admin roles: handing the tenant to another admin and stepping
            // down does not free the quota.
            let registered =
                tenants::count_registered_by(conn, &caller.provider, &caller.subject).await?;
            if registered >= i64::from(limit) {
                return Err(AppError::forbidden(format!(
                    "You have already registered {registered} tenant(s); the limit per user is {limit}"
                )));
            }
        }
        let registrant = Some((caller.provider.as_str(), caller.subject.as_str()));
        let tenant = tenants::insert(conn, &slug, &name, &settings, status, registrant)
            .await?
            .ok_or_else(|| {
                AppError::conflict(format!("A tenant with slug '{slug}' already exists"))
            })?;
        let key = MemberKey::new(tenant.id, &caller.provider, &caller.subject);
        tenant_members::insert(conn, key, TenantRole::Admin).await?;
        Ok(tenant)
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs_follow_the_original() {
        assert_eq!(slug_of("Acme Corp!"), "acme-corp");
        assert_eq!(slug_of("  Ünïcode  Ltd "), "n-code-ltd");
        let short = slug_of("A");
        assert!(short.starts_with("org-") && short.len() == 12, "{short}");
        let long = slug_of(&"abc ".repeat(30));
        assert_eq!(long.len(), 50, "{long}");
        assert!(crate::config::valid_slug(&long), "{long}");
    }

    #[test]
    fn emails_follow_the_original_pattern() {
        assert!(valid_email("a@b.c"));
        assert!(!valid_email("a@b"));
        assert!(!valid_email("@b.c"));
        assert!(!valid_email("a@@b.c"));
        assert!(!valid_email("a@b@c.d"));
        assert!(valid_email("a@b.c."));
        assert!(!valid_email("a@.c"));
    }
}
