//! Signed, expiring URLs for private deployments (`BOARDS_STORAGE_PUBLIC=false`): the local
//! provider's URLs carry `expires` (Unix seconds) and `signature` (HMAC-SHA256 of the key and
//! the expiry), and `/api/storage/{key}` serves only what a valid, unexpired signature covers.
//! Expiries are rounded up to a whole window so that one object keeps one URL for a while and
//! browsers can cache it.

use std::time::Duration;

use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// Why a signed URL is refused.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("this URL needs a signature")]
    Missing,
    #[error("this URL has expired")]
    Expired,
    #[error("this URL's signature is not valid")]
    Invalid,
}

#[derive(Clone)]
pub struct UrlSigner {
    key: Vec<u8>,
    ttl: Duration,
}

impl std::fmt::Debug for UrlSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UrlSigner")
            .field("ttl", &self.ttl)
            .finish_non_exhaustive()
    }
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

impl UrlSigner {
    pub fn new(key: &[u8], ttl: Duration) -> Self {
        Self {
            key: key.to_vec(),
            ttl: ttl.max(Duration::from_secs(1)),
        }
    }

    fn mac(&self, key: &str, expires: i64) -> HmacSha256 {
        // Infallible: HMAC takes keys of any length.
        let mut mac = <HmacSha256 as Mac>::new_from_slice(&self.key)
            .unwrap_or_else(|_| unreachable!("HMAC accepts any key length"));
        mac.update(key.as_bytes());
        mac.update(b"\n");
        mac.update(expires.to_string().as_bytes());
        mac
    }

    /// The query string (`expires=…&signature=…`) that makes a URL of `key` valid for at least
    /// the configured lifetime.
    pub fn sign(&self, key: &str) -> String {
        self.sign_at(key, now())
    }

    fn sign_at(&self, key: &str, now: i64) -> String {
        let ttl = self.ttl.as_secs() as i64;
        let window = (ttl / 4).max(1);
        let expires = (now + ttl + window - 1) / window * window;
        let tag = self.mac(key, expires).finalize().into_bytes();
        let hex: String = tag.iter().map(|b| format!("{b:02x}")).collect();
        format!("expires={expires}&signature={hex}")
    }

    /// Checks the `expires` and `signature` query values for `key`.
    pub fn verify(
        &self,
        key: &str,
        expires: Option<&str>,
        signature: Option<&str>,
    ) -> Result<(), SignatureError> {
        self.verify_at(key, expires, signature, now())
    }

    fn verify_at(
        &self,
        key: &str,
        expires: Option<&str>,
        signature: Option<&str>,
        now: i64,
    ) -> Result<(), SignatureError> {
        let (Some(expires), Some(signature)) = (expires, signature) else {
            return Err(SignatureError::Missing);
        };
        let expires: i64 = expires.parse().map_err(|_| SignatureError::Invalid)?;
        let bytes = decode_hex(signature).ok_or(SignatureError::Invalid)?;
        // Constant-time comparison.
        self.mac(key, expires)
            .verify_slice(&bytes)
            .map_err(|_| SignatureError::Invalid)?;
        if expires < now {
            return Err(SignatureError::Expired);
        }
        Ok(())
    }
}

fn decode_hex(s: &str) -> Option<Vec<u8>> {
    if s.len() != 64 || !s.is_ascii() {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(q: &str) -> (String, String) {
        let mut e = String::new();
        let mut s = String::new();
        for pair in q.split('&') {
            match pair.split_once('=') {
                Some(("expires", v)) => e = v.into(),
                Some(("signature", v)) => s = v.into(),
                _ => {}
            }
        }
        (e, s)
    }

    #[test]
    fn a_signature_covers_its_key_until_it_expires() {
        let signer = UrlSigner::new(
            b"0123456789abcdef0123456789abcdef",
            Duration::from_secs(3600),
        );
        let t = 1_800_000_000;
        let (e, s) = parts(&signer.sign_at("t/b/g/upload/original.png", t));
        let exp: i64 = e.parse().unwrap();
        assert!(exp >= t + 3600 && exp < t + 3600 + 900, "{exp}");
        let ok = |key: &str, e: &str, s: &str, at: i64| signer.verify_at(key, Some(e), Some(s), at);
        assert_eq!(ok("t/b/g/upload/original.png", &e, &s, t), Ok(()));
        assert_eq!(
            ok("t/b/g/upload/original.png", &e, &s, exp + 1),
            Err(SignatureError::Expired)
        );
        assert_eq!(
            ok("t/b/other/upload/original.png", &e, &s, t),
            Err(SignatureError::Invalid)
        );
        let later = (exp + 100).to_string();
        assert_eq!(
            ok("t/b/g/upload/original.png", &later, &s, t),
            Err(SignatureError::Invalid)
        );
        assert_eq!(
            ok("t/b/g/upload/original.png", &e, "zz", t),
            Err(SignatureError::Invalid)
        );
        assert_eq!(
            signer.verify_at("k", None, Some(&s), t),
            Err(SignatureError::Missing)
        );
        let other = UrlSigner::new(
            b"another key another key another!",
            Duration::from_secs(3600),
        );
        assert_eq!(
            other.verify_at("t/b/g/upload/original.png", Some(&e), Some(&s), t),
            Err(SignatureError::Invalid)
        );
    }

    #[test]
    fn urls_are_stable_within_a_window() {
        let signer = UrlSigner::new(b"k", Duration::from_secs(3600));
        assert_eq!(
            signer.sign_at("a", 1_800_000_001),
            signer.sign_at("a", 1_800_000_010)
        );
        assert_ne!(
            signer.sign_at("a", 1_800_000_001),
            signer.sign_at("a", 1_800_001_000)
        );
    }
}
