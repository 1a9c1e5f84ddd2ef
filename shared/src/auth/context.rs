//! [`AuthService`]: turns a request's `Authorization` and `X-Tenant` headers into an
//! [`AuthContext`] once per request.

use std::{sync::Arc, time::Duration};

use uuid::Uuid;

use super::{tenant, AuthError, AuthProvider, Principal};
use crate::{
    config::{Config, TenancyConfig},
    db::{
        models::{tenants, users, User},
        PgPool,
    },
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

/// Shared by all requests: the provider, the pool and a small cache of tenant ids by slug.
pub struct AuthService {
    provider: Arc<dyn AuthProvider>,
    pool: PgPool,
    tenancy: TenancyConfig,
    tenant_claim: Option<String>,
    tenants: moka::future::Cache<String, Uuid>,
    /// Provisioned users by (tenant, provider, subject): a verified token needs no query for
    /// the user while it is cached. Entries expire after 30 s so profile fills stay fresh.
    users: moka::future::Cache<(Uuid, String, String), User>,
}

const BEARER: &str = "Bearer ";

impl AuthService {
    pub fn new(config: &Config, provider: Arc<dyn AuthProvider>, pool: PgPool) -> Self {
        Self {
            provider,
            pool,
            tenancy: config.tenancy.clone(),
            tenant_claim: config.auth.jwt_tenant_claim.clone(),
            tenants: moka::future::Cache::builder()
                .max_capacity(10_000)
                .time_to_live(Duration::from_secs(60))
                .build(),
            users: moka::future::Cache::builder()
                .max_capacity(100_000)
                .time_to_live(Duration::from_secs(30))
                .build(),
        }
    }

    pub fn provider(&self) -> &dyn AuthProvider {
        self.provider.as_ref()
    }

    pub fn tenancy(&self) -> &TenancyConfig {
        &self.tenancy
    }

    /// Resolves the caller. No `Authorization` header means anonymous (or the development user
    /// with the `none` provider); a header that fails verification is an error, never anonymous.
    pub async fn resolve(
        &self,
        authorization: Option<&str>,
        x_tenant: Option<&str>,
    ) -> Result<AuthContext, AuthError> {
        let header_slug = tenant::header_slug(x_tenant)?;
        let token = match authorization.filter(|h| !h.is_empty()) {
            None => self.provider.implicit_token().map(str::to_string),
            // HTTP strips the trailing space of a bare "Bearer ".
            Some("Bearer") => return Err(AuthError::Unauthenticated("Empty token".into())),
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
                Some(token.to_string())
            }
        };

        let Some(token) = token else {
            let slug = self.request_slug(None, header_slug)?;
            let tenant_id = self.tenant_id(&slug).await?;
            return Ok(AuthContext {
                tenant_id,
                tenant_slug: slug,
                user: None,
                principal: None,
            });
        };

        let principal = self.provider.verify(&token).await?;
        let claim_slug = if self.tenancy.multi_tenant_mode {
            tenant::slug_from_claims(
                &principal.claims,
                &self.tenancy,
                self.tenant_claim.as_deref(),
            )?
        } else {
            None
        };
        let slug = self.request_slug(claim_slug, header_slug)?;
        let tenant_id = self.tenant_id(&slug).await?;
        let user = self.provision(tenant_id, &principal).await?;
        Ok(AuthContext {
            tenant_id,
            tenant_slug: slug,
            user: Some(user),
            principal: Some(principal),
        })
    }

    /// Single-tenant mode: always the default tenant. Multi-tenant mode: token claims, then
    /// `X-Tenant`, then the default slug.
    fn request_slug(
        &self,
        claim_slug: Option<String>,
        header_slug: Option<String>,
    ) -> Result<String, AuthError> {
        if !self.tenancy.multi_tenant_mode {
            return Ok(self.tenancy.default_tenant_slug.clone());
        }
        Ok(claim_slug
            .or(header_slug)
            .unwrap_or_else(|| self.tenancy.default_tenant_slug.clone()))
    }

    /// The id of the tenant `slug`. Unknown tenants are refused unless auto-creation is on.
    pub async fn tenant_id(&self, slug: &str) -> Result<Uuid, AuthError> {
        if let Some(id) = self.tenants.get(slug).await {
            return Ok(id);
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
        self.tenants.insert(slug.to_string(), tenant.id).await;
        Ok(tenant.id)
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

    /// Forgets cached tenant ids (after tenants are deleted or renamed).
    pub fn invalidate_tenants(&self) {
        self.tenants.invalidate_all();
        self.users.invalidate_all();
    }
}

fn unavailable() -> AuthError {
    AuthError::Unavailable("Authentication is temporarily unavailable".into())
}
