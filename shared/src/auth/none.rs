//! The `none` provider: every request is the development user (contract §0.3).

use serde_json::{json, Value};

use super::{
    options::{error_at, OptionResult, Options},
    AuthError, AuthProvider, Principal,
};

pub struct NoneProvider {
    default_user_id: String,
}

impl NoneProvider {
    /// Refuses to build in production (`BOARDS_ENVIRONMENT` or the original's `ENVIRONMENT`).
    pub fn build(options: &Options, environment: &str) -> OptionResult<Self> {
        let prod = |v: &str| matches!(v.to_ascii_lowercase().as_str(), "production" | "prod");
        if prod(environment) || options.env.get("ENVIRONMENT").is_some_and(|v| prod(v)) {
            return Err(error_at(
                "auth.provider",
                "the `none` auth provider is for development and refuses to run in production",
            ));
        }
        Ok(Self::from_config(options.json))
    }

    pub fn from_config(config: &Value) -> Self {
        let default_user_id = config
            .get("default_user_id")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .unwrap_or("dev-user")
            .to_string();
        Self { default_user_id }
    }
}

#[async_trait::async_trait]
impl AuthProvider for NoneProvider {
    fn name(&self) -> &'static str {
        "none"
    }

    fn implicit_token(&self) -> Option<&'static str> {
        Some("dev-token")
    }

    async fn verify(&self, token: &str) -> Result<Principal, AuthError> {
        if token.is_empty() {
            return Err(AuthError::Unauthenticated("Token required".into()));
        }
        let preview = if token.chars().count() > 20 {
            format!("{}...", token.chars().take(20).collect::<String>())
        } else {
            token.to_string()
        };
        Ok(Principal {
            provider: "none".into(),
            subject: self.default_user_id.clone(),
            email: Some("dev@example.com".into()),
            display_name: Some("Development User".into()),
            avatar_url: None,
            claims: json!({"mode": "development", "token": preview}),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn any_token_is_the_development_user() {
        let p = NoneProvider::from_config(&json!({}));
        let principal = p.verify("abcdefghijklmnopqrstuvwxyz").await.unwrap();
        assert_eq!(principal.subject, "dev-user");
        assert_eq!(principal.claims["token"], "abcdefghijklmnopqrst...");
        assert!(p.verify("").await.is_err());
    }

    #[tokio::test]
    async fn default_user_id_is_configurable() {
        let p = NoneProvider::from_config(&json!({"default_user_id": "alice"}));
        assert_eq!(p.verify("x").await.unwrap().subject, "alice");
    }
}
