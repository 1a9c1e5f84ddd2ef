//! Tenant slug resolution from token claims and headers (contract §0.3 step 6).

use serde_json::Value;

use super::AuthError;
use crate::config::{valid_slug, TenancyConfig};

const PUBLIC_EMAIL_DOMAINS: &[&str] = &[
    "gmail.com",
    "yahoo.com",
    "outlook.com",
    "hotmail.com",
    "icloud.com",
    "protonmail.com",
    "aol.com",
];

/// Lower-case, map every char outside `[a-z0-9-]` to `-`, collapse and trim dashes,
/// `unknown` when empty, at most 50 chars.
pub fn normalize(value: &str) -> String {
    let mut out = String::new();
    for c in value.trim().to_lowercase().chars() {
        let c = if c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' {
            c
        } else {
            '-'
        };
        if c == '-' && out.ends_with('-') {
            continue;
        }
        out.push(c);
    }
    let trimmed: String = out.trim_matches('-').chars().take(50).collect();
    let trimmed = trimmed.trim_end_matches('-').to_string();
    if trimmed.is_empty() {
        "unknown".into()
    } else {
        trimmed
    }
}

fn claim_text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) if !s.trim().is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Object(map) => ["slug", "id", "name"]
            .iter()
            .find_map(|k| map.get(*k).and_then(claim_text)),
        _ => None,
    }
}

/// The tenant slug a verified token's claims select, if any.
pub fn slug_from_claims(
    claims: &Value,
    config: &TenancyConfig,
    custom_claim: Option<&str>,
) -> Result<Option<String>, AuthError> {
    if !claims.is_object() {
        return Ok(None);
    }
    if let Some(tenant) = claims.get("tenant").filter(|v| !v.is_null()) {
        return match tenant.as_str() {
            Some(s) if valid_slug(s) => Ok(Some(s.to_string())),
            _ => Err(AuthError::Unauthenticated("Authentication failed".into())),
        };
    }
    let first = |keys: &[&str]| {
        keys.iter()
            .find_map(|k| claims.get(*k).and_then(claim_text))
            .map(|v| normalize(&v))
    };
    if let Some(slug) = first(&["org", "organization", "org_slug", "org_name"]) {
        return Ok(Some(slug));
    }
    if let Some(slug) = custom_claim.and_then(|c| first(&[c])) {
        return Ok(Some(slug));
    }
    // The e-mail domain is a guess, not a statement by the identity provider: it only picks a
    // tenant where unknown tenants are created on first sight (the original's behaviour).
    if config.multi_tenant_mode && config.auto_create_tenants {
        let domain = claims
            .get("email")
            .and_then(Value::as_str)
            .and_then(|e| e.rsplit_once('@'))
            .map(|(_, d)| d.to_lowercase());
        if let Some(domain) = domain.filter(|d| !PUBLIC_EMAIL_DOMAINS.contains(&d.as_str())) {
            if let Some(label) = domain.split('.').next().filter(|l| !l.is_empty()) {
                return Ok(Some(normalize(label)));
            }
        }
    }
    Ok(first(&["namespace", "group", "team", "workspace"]))
}

/// Checks an `X-Tenant` header value; `Ok(None)` for an absent or empty header.
pub fn header_slug(header: Option<&str>) -> Result<Option<String>, AuthError> {
    match header.map(str::trim).filter(|h| !h.is_empty()) {
        None => Ok(None),
        Some(h) if valid_slug(h) => Ok(Some(h.to_string())),
        Some(h) => Err(AuthError::BadTenant(format!(
            "Invalid X-Tenant header format: '{}' must match ^[a-z0-9-]+$, be at most 255 characters and not start or end with '-'",
            h.chars().take(80).collect::<String>()
        ))),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn tenancy(multi: bool) -> TenancyConfig {
        TenancyConfig {
            multi_tenant_mode: multi,
            auto_create_tenants: multi,
            ..crate::Config::default().tenancy
        }
    }

    #[test]
    fn normalisation_follows_the_original() {
        assert_eq!(normalize("  Acme Corp!  "), "acme-corp");
        assert_eq!(normalize("---"), "unknown");
        assert_eq!(normalize(&"a".repeat(80)).len(), 50);
    }

    #[test]
    fn claims_are_searched_in_order() {
        let c = tenancy(false);
        assert_eq!(
            slug_from_claims(&json!({"tenant": "t1", "org": "o"}), &c, None).unwrap(),
            Some("t1".into())
        );
        assert!(slug_from_claims(&json!({"tenant": "Bad Slug"}), &c, None).is_err());
        assert_eq!(
            slug_from_claims(&json!({"org": {"slug": "Big Co"}}), &c, None).unwrap(),
            Some("big-co".into())
        );
        assert_eq!(
            slug_from_claims(&json!({"acct": "X"}), &c, Some("acct")).unwrap(),
            Some("x".into())
        );
        assert_eq!(
            slug_from_claims(&json!({"email": "a@acme.io"}), &c, None).unwrap(),
            None
        );
        assert_eq!(
            slug_from_claims(&json!({"email": "a@acme.io"}), &tenancy(true), None).unwrap(),
            Some("acme".into())
        );
        assert_eq!(
            slug_from_claims(&json!({"email": "a@gmail.com"}), &tenancy(true), None).unwrap(),
            None
        );
        assert_eq!(
            slug_from_claims(&json!({"team": "Blue"}), &c, None).unwrap(),
            Some("blue".into())
        );
    }

    #[test]
    fn header_values_are_checked() {
        assert_eq!(header_slug(None).unwrap(), None);
        assert_eq!(header_slug(Some("")).unwrap(), None);
        assert_eq!(header_slug(Some("acme")).unwrap(), Some("acme".into()));
        assert!(header_slug(Some("-acme")).is_err());
        assert!(header_slug(Some("ACME")).is_err());
    }
}
