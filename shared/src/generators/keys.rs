//! Provider API keys (runtime.md §3.6): from their own environment variables (`FAL_KEY`,
//! `REPLICATE_API_TOKEN`, `OPENAI_API_KEY`, `KIE_API_KEY`) or from the original's
//! `BOARDS_GENERATOR_API_KEYS` JSON object (keyed by those same variable names). The process
//! environment is never written, and keys never reach a log (`Debug` redacts them).

use std::{collections::HashMap, fmt};

use serde_json::Value;

use super::catalogue::Provider;
use crate::config::{GeneratorsConfig, Secret};

#[derive(Clone, Default)]
pub struct ProviderKeys {
    keys: HashMap<Provider, Secret>,
}

impl fmt::Debug for ProviderKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut present: Vec<&str> = self.keys.keys().map(|p| p.as_str()).collect();
        present.sort_unstable();
        write!(f, "ProviderKeys({})", present.join(", "))
    }
}

impl ProviderKeys {
    /// The keys of `config`. A provider's own variable wins over the JSON object; empty values
    /// count as unset. Unknown names in the JSON object are refused (a typo would otherwise
    /// leave a provider silently without its key), as is anything but a string value.
    pub fn from_config(config: &GeneratorsConfig) -> Result<Self, String> {
        let mut keys = HashMap::new();
        if let Some(json) = config.api_keys.as_ref().filter(|s| !s.is_empty()) {
            let map: serde_json::Map<String, Value> =
                serde_json::from_str(json.expose()).map_err(|_| {
                    "BOARDS_GENERATOR_API_KEYS must be a JSON object such as {\"FAL_KEY\": \"...\"}"
                        .to_string()
                })?;
            for (name, value) in map {
                let provider = Provider::ALL
                    .into_iter()
                    .find(|p| p.key_env() == name)
                    .ok_or_else(|| {
                        format!(
                            "BOARDS_GENERATOR_API_KEYS: unknown key `{name}` (expected {})",
                            Provider::ALL.map(|p| p.key_env()).join(", ")
                        )
                    })?;
                let value = value.as_str().ok_or_else(|| {
                    format!("BOARDS_GENERATOR_API_KEYS: `{name}` must be a string")
                })?;
                if !value.trim().is_empty() {
                    keys.insert(provider, Secret::new(value.trim()));
                }
            }
        }
        for (provider, own) in [
            (Provider::Fal, &config.fal_key),
            (Provider::Replicate, &config.replicate_api_token),
            (Provider::OpenAi, &config.openai_api_key),
            (Provider::Kie, &config.kie_api_key),
        ] {
            if let Some(k) = own.as_ref().filter(|k| !k.expose().trim().is_empty()) {
                keys.insert(provider, Secret::new(k.expose().trim()));
            }
        }
        Ok(Self { keys })
    }

    /// Keys given directly (tests).
    pub fn with(mut self, provider: Provider, key: &str) -> Self {
        self.keys.insert(provider, Secret::new(key));
        self
    }

    pub fn get(&self, provider: Provider) -> Option<&Secret> {
        self.keys.get(&provider)
    }

    pub fn has(&self, provider: Provider) -> bool {
        self.keys.contains_key(&provider)
    }

    /// The message users see when `provider` has no key.
    pub fn missing(provider: Provider) -> String {
        format!(
            "{}: no API key is configured (set {} on the API and the workers)",
            provider.label(),
            provider.key_env()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_variables_win_over_the_json_object_and_typos_are_refused() {
        let config = GeneratorsConfig {
            api_keys: Some(Secret::new(
                r#"{"FAL_KEY": "json-fal", "KIE_API_KEY": " "}"#,
            )),
            fal_key: Some(Secret::new("own-fal")),
            openai_api_key: Some(Secret::new("sk-1")),
            ..Default::default()
        };
        let keys = ProviderKeys::from_config(&config).unwrap();
        assert_eq!(keys.get(Provider::Fal).unwrap().expose(), "own-fal");
        assert!(keys.has(Provider::OpenAi));
        assert!(!keys.has(Provider::Kie), "blank values are unset");
        assert!(!keys.has(Provider::Replicate));
        assert!(!format!("{keys:?}").contains("own-fal"));
        let typo = GeneratorsConfig {
            api_keys: Some(Secret::new(r#"{"fal": "x"}"#)),
            ..Default::default()
        };
        assert!(ProviderKeys::from_config(&typo)
            .unwrap_err()
            .contains("unknown key `fal`"));
    }
}
