//! Reading a provider's options: `BOARDS_AUTH_CONFIG` (a JSON object) first, then the
//! environment variables the original read for that provider (`AUTH0_DOMAIN`, ...).

use std::collections::BTreeMap;

use biscuit::jwa::SignatureAlgorithm;
use serde_json::Value;

/// The options of one provider, with the provider name for error messages.
pub struct Options<'a> {
    pub provider: &'static str,
    pub json: &'a Value,
    pub env: &'a BTreeMap<String, String>,
}

/// A configuration mistake, reported at startup (`<path>: <why>`).
#[derive(Debug, thiserror::Error)]
#[error("{path}: {why}")]
pub struct OptionError {
    /// The configuration path, e.g. `auth.config.issuer`.
    pub path: String,
    pub why: String,
}

pub type OptionResult<T> = Result<T, OptionError>;

/// An error in the provider option `key` (`auth.config.<key>`).
pub fn error(key: &str, why: impl Into<String>) -> OptionError {
    error_at(&format!("auth.config.{key}"), why)
}

/// An error at a configuration path.
pub fn error_at(path: &str, why: impl Into<String>) -> OptionError {
    OptionError {
        path: path.to_string(),
        why: why.into(),
    }
}

impl Options<'_> {
    /// A non-empty string option, from the JSON or else from the first set environment variable.
    pub fn text(&self, key: &str, env: &[&str]) -> OptionResult<Option<String>> {
        match self.json.get(key) {
            None | Some(Value::Null) => {}
            Some(Value::String(s)) if s.trim().is_empty() => {}
            Some(Value::String(s)) => return Ok(Some(s.trim().to_string())),
            Some(_) => return Err(error(key, "must be a string")),
        }
        Ok(env
            .iter()
            .find_map(|name| self.env.get(*name))
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty()))
    }

    /// A required string option.
    pub fn required(&self, key: &str, env: &[&str]) -> OptionResult<String> {
        self.text(key, env)?.ok_or_else(|| {
            let from_env = if env.is_empty() {
                String::new()
            } else {
                format!(" (or {})", env.join(" / "))
            };
            error(
                key,
                format!("the `{}` provider needs it{from_env}", self.provider),
            )
        })
    }

    /// An `http(s)` URL option without a trailing slash.
    pub fn url(&self, key: &str, env: &[&str]) -> OptionResult<Option<String>> {
        let Some(value) = self.text(key, env)? else {
            return Ok(None);
        };
        check_url(key, &value)?;
        Ok(Some(value.trim_end_matches('/').to_string()))
    }

    pub fn bool(&self, key: &str, default: bool) -> OptionResult<bool> {
        match self.json.get(key) {
            None | Some(Value::Null) => Ok(default),
            Some(Value::Bool(b)) => Ok(*b),
            Some(_) => Err(error(key, "must be true or false")),
        }
    }

    pub fn seconds(&self, key: &str, default: u64, min: u64, max: u64) -> OptionResult<u64> {
        match self.json.get(key) {
            None | Some(Value::Null) => Ok(default),
            Some(v) => match v.as_u64() {
                Some(n) if (min..=max).contains(&n) => Ok(n),
                _ => Err(error(
                    key,
                    format!("must be a whole number from {min} to {max}"),
                )),
            },
        }
    }

    /// A list of strings (a JSON list, or one string; from the environment: comma-separated).
    pub fn list(&self, key: &str, env: &[&str]) -> OptionResult<Vec<String>> {
        let items: Vec<String> = match self.json.get(key) {
            None | Some(Value::Null) => env
                .iter()
                .find_map(|name| self.env.get(*name))
                .map(|v| v.split(',').map(|s| s.trim().to_string()).collect())
                .unwrap_or_default(),
            Some(Value::String(s)) => vec![s.trim().to_string()],
            Some(Value::Array(items)) => items
                .iter()
                .map(|v| {
                    v.as_str()
                        .map(|s| s.trim().to_string())
                        .ok_or_else(|| error(key, "must be a list of strings"))
                })
                .collect::<OptionResult<_>>()?,
            Some(_) => return Err(error(key, "must be a string or a list of strings")),
        };
        Ok(items.into_iter().filter(|s| !s.is_empty()).collect())
    }

    /// The signature algorithms a token may use: `algorithms` (or the older single
    /// `algorithm`), else `default`; each must be one `allowed` by the key source.
    pub fn algorithms(
        &self,
        default: &[SignatureAlgorithm],
        allowed: &[SignatureAlgorithm],
    ) -> OptionResult<Vec<SignatureAlgorithm>> {
        let mut names = self.list("algorithms", &[])?;
        if names.is_empty() {
            names = self.list("algorithm", &[])?;
        }
        if names.is_empty() {
            return Ok(default.to_vec());
        }
        let key = "algorithms";
        let allowed_names: Vec<String> = allowed.iter().map(|a| alg_name(*a)).collect();
        names
            .iter()
            .map(|name| {
                let alg = parse_alg(name).ok_or_else(|| {
                    error(key, format!("`{name}` is not a JWS signature algorithm"))
                })?;
                if allowed.contains(&alg) {
                    Ok(alg)
                } else {
                    Err(error(
                        key,
                        format!(
                            "`{name}` cannot be used with this key source (allowed: {})",
                            allowed_names.join(", ")
                        ),
                    ))
                }
            })
            .collect()
    }
}

pub fn check_url(key: &str, value: &str) -> OptionResult<()> {
    match url::Url::parse(value) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => Ok(()),
        _ => Err(error(key, format!("`{value}` is not an http(s) URL"))),
    }
}

/// HMAC algorithms: a shared secret.
pub const HMAC: &[SignatureAlgorithm] = &[
    SignatureAlgorithm::HS256,
    SignatureAlgorithm::HS384,
    SignatureAlgorithm::HS512,
];

/// Public-key algorithms biscuit (ring) verifies with keys from a JWKS. ES512 is not among
/// them: ring has no P-521.
pub const ASYMMETRIC: &[SignatureAlgorithm] = &[
    SignatureAlgorithm::RS256,
    SignatureAlgorithm::RS384,
    SignatureAlgorithm::RS512,
    SignatureAlgorithm::PS256,
    SignatureAlgorithm::PS384,
    SignatureAlgorithm::PS512,
    SignatureAlgorithm::ES256,
    SignatureAlgorithm::ES384,
];

pub fn parse_alg(name: &str) -> Option<SignatureAlgorithm> {
    let alg: SignatureAlgorithm = serde_json::from_value(Value::String(name.into())).ok()?;
    (HMAC.contains(&alg) || ASYMMETRIC.contains(&alg)).then_some(alg)
}

pub fn alg_name(alg: SignatureAlgorithm) -> String {
    serde_json::to_value(alg)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_else(|| format!("{alg:?}"))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn algorithms_are_checked_against_the_key_source() {
        let env = BTreeMap::new();
        let json = json!({"algorithms": ["RS256", "ES256"]});
        let o = Options {
            provider: "oidc",
            json: &json,
            env: &env,
        };
        assert_eq!(
            o.algorithms(&[SignatureAlgorithm::RS256], ASYMMETRIC)
                .unwrap(),
            vec![SignatureAlgorithm::RS256, SignatureAlgorithm::ES256]
        );
        let e = o.algorithms(&[], HMAC).unwrap_err().to_string();
        assert!(e.contains("cannot be used with this key source"), "{e}");
        for bad in ["none", "ES512", "XX1"] {
            let json = json!({ "algorithm": bad });
            let o = Options {
                provider: "jwt",
                json: &json,
                env: &env,
            };
            assert!(o.algorithms(&[], HMAC).is_err(), "{bad}");
        }
        assert_eq!(alg_name(SignatureAlgorithm::PS256), "PS256");
    }

    #[test]
    fn text_falls_back_to_the_environment() {
        let env = BTreeMap::from([("AUTH0_DOMAIN".to_string(), "x.auth0.com".to_string())]);
        let json = json!({});
        let o = Options {
            provider: "auth0",
            json: &json,
            env: &env,
        };
        assert_eq!(
            o.required("domain", &["AUTH0_DOMAIN"]).unwrap(),
            "x.auth0.com"
        );
        let e = o.required("audience", &["AUTH0_AUDIENCE"]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "auth.config.audience: the `auth0` provider needs it (or AUTH0_AUDIENCE)"
        );
        assert!(o.url("x", &["AUTH0_DOMAIN"]).is_err());
    }
}
