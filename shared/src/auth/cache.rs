//! Verified tokens are remembered until they expire (at most [`MAX_TTL`]), keyed by the
//! SHA-256 of the token: a client sending the same bearer token on every request costs one
//! signature check, not one per request. Refused tokens are not remembered.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use sha2::{Digest, Sha256};

use super::{AuthError, AuthProvider, Principal};

/// Longest a verification is reused, even for a token valid for longer: a key the identity
/// provider withdraws stops being honoured within this time.
pub const MAX_TTL: Duration = Duration::from_secs(600);

#[derive(Clone)]
struct Entry {
    principal: Arc<Principal>,
    until: Instant,
    /// Estimated bytes held: the cache is bounded by memory, not by count, since claims (e.g.
    /// Supabase's user-editable `user_metadata`) can make one token several KiB.
    weight: u32,
}

/// What a cached verification is estimated to hold for a token of `token_len` bytes: the
/// parsed claims (a few times their encoded size) plus fixed overhead.
fn weight_of(token_len: usize) -> u32 {
    u32::try_from(token_len.saturating_mul(3).saturating_add(512)).unwrap_or(u32::MAX)
}

struct UntilExpiry;

impl moka::Expiry<[u8; 32], Entry> for UntilExpiry {
    fn expire_after_create(&self, _: &[u8; 32], entry: &Entry, now: Instant) -> Option<Duration> {
        Some(entry.until.saturating_duration_since(now))
    }
}

pub struct CachedProvider {
    inner: Arc<dyn AuthProvider>,
    cache: moka::future::Cache<[u8; 32], Entry>,
}

impl CachedProvider {
    /// A cache holding at most about `capacity_bytes` of verified principals.
    pub fn new(inner: Arc<dyn AuthProvider>, capacity_bytes: u64) -> Self {
        Self {
            inner,
            cache: moka::future::Cache::builder()
                .max_capacity(capacity_bytes)
                .weigher(|_, entry: &Entry| entry.weight)
                .expire_after(UntilExpiry)
                .build(),
        }
    }
}

#[async_trait::async_trait]
impl AuthProvider for CachedProvider {
    fn name(&self) -> &'static str {
        self.inner.name()
    }

    fn implicit_token(&self) -> Option<&'static str> {
        self.inner.implicit_token()
    }

    async fn verify(&self, token: &str) -> Result<Principal, AuthError> {
        let key: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        let now = Instant::now();
        if let Some(entry) = self.cache.get(&key).await {
            if entry.until > now {
                return Ok(entry.principal.as_ref().clone());
            }
        }
        let (principal, expires_at) = self.inner.verify_until(token).await?;
        let mut ttl = MAX_TTL;
        if let Some(exp) = expires_at {
            let left = exp - chrono::Utc::now().timestamp();
            ttl = ttl.min(Duration::from_secs(left.max(0) as u64));
        }
        if !ttl.is_zero() {
            let entry = Entry {
                principal: Arc::new(principal.clone()),
                until: now + ttl,
                weight: weight_of(token.len()),
            };
            self.cache.insert(key, entry).await;
        }
        Ok(principal)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use serde_json::json;

    use super::*;

    struct Counting {
        calls: AtomicUsize,
        exp: Option<i64>,
    }

    #[async_trait::async_trait]
    impl AuthProvider for Counting {
        fn name(&self) -> &'static str {
            "jwt"
        }
        async fn verify(&self, token: &str) -> Result<Principal, AuthError> {
            Ok(self.verify_until(token).await?.0)
        }
        async fn verify_until(&self, token: &str) -> Result<(Principal, Option<i64>), AuthError> {
            self.calls.fetch_add(1, Ordering::SeqCst);
            if token == "bad" {
                return Err(AuthError::Unauthenticated("Invalid token".into()));
            }
            Ok((
                Principal {
                    provider: "jwt".into(),
                    subject: token.into(),
                    email: None,
                    display_name: None,
                    avatar_url: None,
                    claims: json!({}),
                },
                self.exp,
            ))
        }
    }

    #[tokio::test]
    async fn a_token_is_verified_once_until_it_expires() {
        let inner = Arc::new(Counting {
            calls: AtomicUsize::new(0),
            exp: Some(chrono::Utc::now().timestamp() + 60),
        });
        let cached = CachedProvider::new(inner.clone(), 1 << 20);
        for _ in 0..5 {
            assert_eq!(cached.verify("a").await.unwrap().subject, "a");
        }
        assert_eq!(cached.verify("b").await.unwrap().subject, "b");
        assert_eq!(inner.calls.load(Ordering::SeqCst), 2);
        for _ in 0..3 {
            assert!(cached.verify("bad").await.is_err());
        }
        assert_eq!(
            inner.calls.load(Ordering::SeqCst),
            5,
            "refusals are not cached"
        );
    }

    #[tokio::test]
    async fn an_expired_token_is_not_cached() {
        let inner = Arc::new(Counting {
            calls: AtomicUsize::new(0),
            exp: Some(chrono::Utc::now().timestamp() - 1),
        });
        let cached = CachedProvider::new(inner.clone(), 1 << 20);
        cached.verify("a").await.unwrap();
        cached.verify("a").await.unwrap();
        assert_eq!(inner.calls.load(Ordering::SeqCst), 2);
    }
}
