//! [`AuthService`]: turns a request's `Authorization` and `X-Tenant` headers into an
//! [`AuthContext`] once per request.

use std::{sync::Arc, time::Duration};

use uuid::Uuid;

use super::{tenant, AdminToken, AuthError, AuthProvider, Principal};
use crate::{
    config::{Config, TenancyConfig},
    db::{
        models::{
            tenant_members::{self, MemberKey},
            tenants, users, TenantRole, TenantStatus, User,
        },
        PgPool,
    },
    domain::text::json_has_nul,
};

/// The caller of one request.
#[derive(Clone, Debug)]
pub struct AuthContext {
    pub tenant_id: Uuid,
    pub tenant_slug: String,
    /// The provisioned user; `None` for anonymous callers.
    pub user: Option<User>,
    pub principal: Option<Principal>,
}

impl AuthContext {
    pub fn user_id(&self) -> Option<Uuid> {
        self.user.as_ref().map(|u| u.id)
    }

    pub fn is_authenticated(&self) -> bool {
        self.user.is_some() && self.principal.is_some()
    }
}

/// A tenant as resolution sees it (cached by slug).
#[derive(Clone, Copy, Debug)]
struct TenantRef {
    id: Uuid,
    status: TenantStatus,
    /// Registered by a user, who chose its slug: joined by membership only.
    self_registered: bool,
}

type IdentityKey = (Uuid, String, String);

/// Shared by all requests: the provider, the pool and small caches of tenants, users and
/// memberships.
pub struct AuthService {
    provider: Arc<dyn AuthProvider>,
    pool: PgPool,
    tenancy: TenancyConfig,
    tenant_claim: Option<String>,
    /// Tenants by slug. Expire after 30 s (renames, deletions and approvals made on another
    /// replica); changes made through this process invalidate them at once.
    tenants: moka::future::Cache<String, TenantRef>,
    /// Provisioned users by (tenant, provider, subject): a verified token needs no query for
    /// the user while it is cached. Entries expire after 30 s so profile fills stay fresh.
    users: moka::future::Cache<IdentityKey, User>,
    /// Tenant roles by (tenant, provider, subject), `None` for a non-member. Expire after 30 s;
    /// changes made through this process invalidate their entry at once.
    members: moka::future::Cache<IdentityKey, Option<TenantRole>>,
    /// Bumped by every membership invalidation, so that a lookup that read the database before
    /// a change cannot leave its stale answer in the cache after the invalidation.
    member_changes: std::sync::atomic::AtomicU64,
    /// The operator's credential, when configured.
    admin_token: Option<AdminToken>,
}

const BEARER: &str = "Bearer ";

/// The bearer token of an `Authorization` header; `None` when the header is absent or empty.
pub(super) fn bearer_token(authorization: Option<&str>) -> Result<Option<String>, AuthError> {
    match authorization.filter(|h| !h.is_empty()) {
        None => Ok(None),
        // HTTP strips the trailing space of a bare "Bearer ".
        Some("Bearer") => Err(AuthError::Unauthenticated("Empty token".into())),
        Some(h) => {
            let token = h.strip_prefix(BEARER).ok_or_else(|| {
                AuthError::Unauthenticated(
                    "Invalid authorization format. Expected: Bearer <token>".into(),
                )
            })?;
            let token = token.trim();
            if token.is_empty() {
                return Err(AuthError::Unauthenticated("Empty token".into()));
            }
            Ok(Some(token.to_string()))
        }
    }
}

impl AuthService {
    pub fn new(config: &Config, provider: Arc<dyn AuthProvider>, pool: PgPool) -> Self {
        Self {
            provider,
            pool,
            tenancy: config.tenancy.clone(),
            tenant_claim: config.auth.jwt_tenant_claim.clone(),
            tenants: moka::future::Cache::builder()
                .max_capacity(10_000)
                .time_to_live(Duration::from_secs(30))
                .build(),
            users: moka::future::Cache::builder()
                .max_capacity(100_000)
                .time_to_live(Duration::from_secs(30))
                .build(),
            members: moka::future::Cache::builder()
                .max_capacity(100_000)
                .time_to_live(Duration::from_secs(30))
                .build(),
            member_changes: Default::default(),
            admin_token: AdminToken::from_config(config.tenancy.admin_token.as_ref()),
        }
    }

    pub fn provider(&self) -> &dyn AuthProvider {
        self.provider.as_ref()
    }

    pub fn tenancy(&self) -> &TenancyConfig {
        &self.tenancy
    }

    pub(super) fn admin_token(&self) -> Option<&AdminToken> {
        self.admin_token.as_ref()
    }

    /// Resolves the caller. No `Authorization` header means anonymous (or the development user
    /// with the `none` provider); a header that fails verification is an error, never anonymous.
    pub async fn resolve(
        &self,
        authorization: Option<&str>,
        x_tenant: Option<&str>,
    ) -> Result<AuthContext, AuthError> {
        let header_slug = tenant::header_slug(x_tenant)?;
        let token = match bearer_token(authorization)? {
            Some(token) => Some(token),
            None => self.provider.implicit_token().map(str::to_string),
        };

        let Some(token) = token else {
            // Anonymous callers may name any existing tenant: they only see public data.
            let slug = match header_slug {
                Some(h) if self.tenancy.multi_tenant_mode => h,
                _ => self.tenancy.default_tenant_slug.clone(),
            };
            let tenant = self.usable_tenant(&slug).await?;
            return Ok(AuthContext {
                tenant_id: tenant.id,
                tenant_slug: slug,
                user: None,
                principal: None,
            });
        };

        let principal = self.provider.verify(&token).await?;
        check_storable(&principal)?;
        let (slug, tenant) = self.tenant_of(&principal, header_slug).await?;
        let user = self.provision(tenant.id, &principal).await?;
        Ok(AuthContext {
            tenant_id: tenant.id,
            tenant_slug: slug,
            user: Some(user),
            principal: Some(principal),
        })
    }

    /// The tenant of a verified caller. Single-tenant mode: always the default tenant.
    /// Multi-tenant mode: the tenant the token's claims name (the identity provider is
    /// authoritative for it), else the default tenant; an `X-Tenant` naming another tenant is
    /// honoured only for a member of that tenant (`tenant_members`).
    async fn tenant_of(
        &self,
        principal: &Principal,
        header_slug: Option<String>,
    ) -> Result<(String, TenantRef), AuthError> {
        let tenancy = &self.tenancy;
        if !tenancy.multi_tenant_mode {
            let slug = tenancy.default_tenant_slug.clone();
            let tenant = self.usable_tenant(&slug).await?;
            return Ok((slug, tenant));
        }
        let claim_slug =
            tenant::slug_from_claims(&principal.claims, tenancy, self.tenant_claim.as_deref())?;
        if tenancy.auto_create_tenants {
            // The original's open tenancy: claims, then the header, then the default slug.
            let slug = claim_slug
                .or(header_slug)
                .unwrap_or_else(|| tenancy.default_tenant_slug.clone());
            let tenant = self.usable_tenant(&slug).await?;
            return Ok((slug, tenant));
        }
        let from_claims = claim_slug.is_some();
        let own = claim_slug.unwrap_or_else(|| tenancy.default_tenant_slug.clone());
        match header_slug {
            Some(named) if named != own => {
                let tenant = self.tenant(&named).await?;
                self.require_member(&named, tenant, principal).await?;
                check_active(&named, tenant)?;
                Ok((named, tenant))
            }
            _ => {
                let tenant = self.usable_tenant(&own).await?;
                // A claim proves the identity provider's organisation, not that this tenant is
                // it when a user registered the slug (perhaps before the operator could):
                // self-registered tenants are joined by membership only.
                if from_claims && tenant.self_registered {
                    self.require_member(&own, tenant, principal).await?;
                }
                Ok((own, tenant))
            }
        }
    }

    /// Refuses (403) an identity that is not a member of the tenant `slug`.
    async fn require_member(
        &self,
        slug: &str,
        tenant: TenantRef,
        principal: &Principal,
    ) -> Result<(), AuthError> {
        let key = MemberKey::new(tenant.id, &principal.provider, &principal.subject);
        match self.tenant_role(key).await? {
            Some(_) => Ok(()),
            None => Err(AuthError::Forbidden(format!(
                "You are not a member of tenant '{slug}'"
            ))),
        }
    }

    /// The tenant `slug`, refused while it waits for approval.
    async fn usable_tenant(&self, slug: &str) -> Result<TenantRef, AuthError> {
        let tenant = self.tenant(slug).await?;
        check_active(slug, tenant)?;
        Ok(tenant)
    }

    /// The id of the tenant `slug`. Unknown tenants are refused unless auto-creation is on.
    pub async fn tenant_id(&self, slug: &str) -> Result<Uuid, AuthError> {
        Ok(self.tenant(slug).await?.id)
    }

    /// The tenant `slug`. Unknown tenants are refused (400) unless auto-creation is on; the
    /// default tenant is recreated if it went missing.
    async fn tenant(&self, slug: &str) -> Result<TenantRef, AuthError> {
        if let Some(tenant) = self.tenants.get(slug).await {
            return Ok(tenant);
        }
        let mut conn = self.pool.get().await.map_err(|_| unavailable())?;
        let found = tenants::find_by_slug(&mut conn, slug)
            .await
            .map_err(|_| unavailable())?;
        let tenant = match found {
            Some(t) => t,
            None if self.tenancy.auto_create_tenants
                || slug == self.tenancy.default_tenant_slug =>
            {
                let name = if slug == self.tenancy.default_tenant_slug {
                    self.tenancy.tenant_name.as_str()
                } else {
                    slug
                };
                tenants::ensure(&mut conn, slug, name)
                    .await
                    .map_err(|_| unavailable())?
            }
            None => return Err(AuthError::BadTenant(format!("Unknown tenant '{slug}'"))),
        };
        let tenant = TenantRef {
            id: tenant.id,
            status: tenant.status,
            self_registered: tenant.self_registered(),
        };
        self.tenants.insert(slug.to_string(), tenant).await;
        Ok(tenant)
    }

    /// The role of identity (`provider`, `subject`) in `tenant_id` (cached), `None` for a
    /// non-member.
    pub async fn tenant_role(
        &self,
        member: MemberKey<'_>,
    ) -> Result<Option<TenantRole>, AuthError> {
        use std::sync::atomic::Ordering::SeqCst;
        let key = Self::member_cache_key(member);
        if let Some(role) = self.members.get(&key).await {
            return Ok(role);
        }
        let changes = self.member_changes.load(SeqCst);
        let mut conn = self.pool.get().await.map_err(|_| unavailable())?;
        let role = tenant_members::role_of(&mut conn, member)
            .await
            .map_err(|_| unavailable())?;
        self.members.insert(key.clone(), role).await;
        // A change invalidated while we read: what we stored may predate it. (An invalidation
        // that comes after this check also comes after the insert, and removes it.)
        if self.member_changes.load(SeqCst) != changes {
            self.members.invalidate(&key).await;
        }
        Ok(role)
    }

    /// Forgets the cached role of one identity in one tenant (after it changed).
    pub async fn invalidate_member(&self, member: MemberKey<'_>) {
        self.member_changes
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        self.members
            .invalidate(&Self::member_cache_key(member))
            .await;
    }

    fn member_cache_key(member: MemberKey<'_>) -> (Uuid, String, String) {
        (
            member.tenant_id,
            member.provider.to_string(),
            member.subject.to_string(),
        )
    }

    async fn provision(&self, tenant_id: Uuid, principal: &Principal) -> Result<User, AuthError> {
        let key = (
            tenant_id,
            principal.provider.clone(),
            principal.subject.clone(),
        );
        if let Some(user) = self.users.get(&key).await {
            if !users::needs_fill(&user, principal) {
                return Ok(user);
            }
        }
        let user = self.provision_in_db(tenant_id, principal).await?;
        self.users.insert(key, user.clone()).await;
        Ok(user)
    }

    async fn provision_in_db(
        &self,
        tenant_id: Uuid,
        principal: &Principal,
    ) -> Result<User, AuthError> {
        let mut conn = self.pool.get().await.map_err(|_| unavailable())?;
        let existing = users::find_by_identity(
            &mut conn,
            tenant_id,
            &principal.provider,
            &principal.subject,
        )
        .await
        .map_err(|_| unavailable())?;
        match existing {
            Some(user) if !users::needs_fill(&user, principal) => Ok(user),
            _ => users::provision(&mut conn, tenant_id, principal)
                .await
                .map_err(|_| unavailable()),
        }
    }

    /// Forgets cached tenants, users and memberships (after tenants are deleted, renamed or
    /// approved).
    pub fn invalidate_tenants(&self) {
        self.tenants.invalidate_all();
        self.users.invalidate_all();
        self.members.invalidate_all();
    }
}

/// Refuses a verified principal that the `users` row could not hold — an over-long subject,
/// e-mail or display name, or a NUL character in any claim (PostgreSQL text and jsonb cannot
/// store one) — before the database is touched, so a signed but unusable token is
/// `UNAUTHENTICATED`, not a failed insert.
pub(super) fn check_storable(principal: &Principal) -> Result<(), AuthError> {
    let refuse = |why: String| Err(AuthError::Unauthenticated(format!("Invalid token: {why}")));
    let texts = [
        Some(principal.provider.as_str()),
        Some(principal.subject.as_str()),
        principal.email.as_deref(),
        principal.display_name.as_deref(),
        principal.avatar_url.as_deref(),
    ];
    if texts.iter().flatten().any(|t| t.contains('\0')) || json_has_nul(&principal.claims) {
        return refuse("claims must not contain NUL characters".into());
    }
    for (what, value, max) in [
        (
            "subject",
            Some(&principal.subject),
            users::MAX_AUTH_SUBJECT_CHARS,
        ),
        (
            "e-mail address",
            principal.email.as_ref(),
            users::MAX_EMAIL_CHARS,
        ),
        (
            "display name",
            principal.display_name.as_ref(),
            users::MAX_DISPLAY_NAME_CHARS,
        ),
    ] {
        if value.is_some_and(|v| v.chars().count() > max) {
            return refuse(format!("the {what} is longer than {max} characters"));
        }
    }
    Ok(())
}

fn check_active(slug: &str, tenant: TenantRef) -> Result<(), AuthError> {
    match tenant.status {
        TenantStatus::Active => Ok(()),
        TenantStatus::PendingApproval => Err(AuthError::Forbidden(format!(
            "Tenant '{slug}' is pending approval and cannot be used yet"
        ))),
    }
}

fn unavailable() -> AuthError {
    AuthError::Unavailable("Authentication is temporarily unavailable".into())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn principal() -> Principal {
        Principal {
            provider: "jwt".into(),
            subject: "alice".into(),
            email: Some("alice@example.com".into()),
            display_name: Some("Alice".into()),
            avatar_url: None,
            claims: json!({"sub": "alice"}),
        }
    }

    #[test]
    fn principals_the_users_table_cannot_hold_are_refused() {
        assert!(check_storable(&principal()).is_ok());
        let long = "x".repeat(256);
        let at_limit = "é".repeat(255);
        let cases: Vec<(Principal, Option<&str>)> = vec![
            (
                Principal {
                    subject: long.clone(),
                    ..principal()
                },
                Some("the subject is longer than 255 characters"),
            ),
            (
                Principal {
                    subject: at_limit.clone(),
                    ..principal()
                },
                None,
            ),
            (
                Principal {
                    email: Some(long.clone()),
                    ..principal()
                },
                Some("the e-mail address is longer than 255 characters"),
            ),
            (
                Principal {
                    display_name: Some(long.clone()),
                    ..principal()
                },
                Some("the display name is longer than 255 characters"),
            ),
            (
                Principal {
                    avatar_url: Some(long.clone()),
                    ..principal()
                },
                None,
            ),
            (
                Principal {
                    subject: "a\0b".into(),
                    ..principal()
                },
                Some("claims must not contain NUL characters"),
            ),
            (
                Principal {
                    email: Some("a\0@b".into()),
                    ..principal()
                },
                Some("claims must not contain NUL characters"),
            ),
            (
                Principal {
                    claims: json!({"team": {"name": "x\0"}}),
                    ..principal()
                },
                Some("claims must not contain NUL characters"),
            ),
        ];
        for (p, refused) in cases {
            let got = check_storable(&p);
            match refused {
                None => assert!(got.is_ok(), "{p:?}"),
                Some(why) => assert_eq!(
                    got,
                    Err(AuthError::Unauthenticated(format!("Invalid token: {why}"))),
                    "{p:?}"
                ),
            }
        }
    }
}
