//! The callers of administration endpoints: the operator (`BOARDS_ADMIN_TOKEN`) or a verified
//! identity, whose rights come from `tenant_members`.

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::{context::bearer_token, AuthError, AuthService, Principal};
use crate::config::Secret;

/// The operator's credential, kept only as its SHA-256 digest: comparing digests of equal length
/// in constant time reveals neither the token's content nor its length through timing.
pub struct AdminToken {
    digest: [u8; 32],
}

impl AdminToken {
    /// `None` for an unset or empty token (no operator then).
    pub fn from_config(token: Option<&Secret>) -> Option<Self> {
        token.filter(|t| !t.is_empty()).map(|t| Self {
            digest: Sha256::digest(t.expose().as_bytes()).into(),
        })
    }

    pub fn matches(&self, presented: &str) -> bool {
        let presented: [u8; 32] = Sha256::digest(presented.as_bytes()).into();
        self.digest.ct_eq(&presented).into()
    }
}

impl std::fmt::Debug for AdminToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AdminToken([redacted])")
    }
}

/// Who calls an administration endpoint.
#[derive(Clone, Debug, PartialEq)]
pub enum Caller {
    /// Presented `BOARDS_ADMIN_TOKEN`: may administer every tenant.
    Operator,
    /// A verified token: may administer the tenants where it is an `admin` member.
    Identity(Principal),
}

impl AuthService {
    /// The caller of an administration endpoint. Credentials are required (no anonymous
    /// caller, no implicit development token); a token that is neither the admin token nor
    /// valid for the provider is refused like any bad token. No tenant is resolved and no user
    /// is provisioned: rights come from `tenant_members` alone.
    pub async fn admin_caller(&self, authorization: Option<&str>) -> Result<Caller, AuthError> {
        let Some(token) = bearer_token(authorization)? else {
            return Err(AuthError::Unauthenticated("Authentication required".into()));
        };
        if self.admin_token().is_some_and(|a| a.matches(&token)) {
            return Ok(Caller::Operator);
        }
        let principal = self.provider().verify(&token).await?;
        // The same rules as any caller's: a subject no row could hold is refused here (401),
        // not when a membership query trips over it.
        super::context::check_storable(&principal)?;
        Ok(Caller::Identity(principal))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_admin_token_matches_only_itself() {
        let token = AdminToken::from_config(Some(&Secret::new("s3cret-admin-token-0123"))).unwrap();
        assert!(token.matches("s3cret-admin-token-0123"));
        assert!(!token.matches("s3cret-admin-token-012"));
        assert!(!token.matches("s3cret-admin-token-01234"));
        assert!(!token.matches(""));
        assert!(AdminToken::from_config(Some(&Secret::new(""))).is_none());
        assert!(AdminToken::from_config(None).is_none());
        assert_eq!(format!("{token:?}"), "AdminToken([redacted])");
    }
}
