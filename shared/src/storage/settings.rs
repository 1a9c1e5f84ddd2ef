//! Which stores exist and which one takes what: `storage_config.yaml` (runtime.md §4.2) and the
//! `BOARDS_STORAGE_*` environment, resolved once when the configuration loads.
//!
//! The file keeps the original's format (everything under `storage:`), with three changes:
//! `${VAR}` (and `${VAR:-default}`) in string values are expanded from the environment; an
//! unknown key, provider type or rule field stops startup naming it; a file without the
//! `storage:` key is an error rather than silently ignored.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_yaml::Value;

use super::s3::S3Settings;
use crate::generators::ArtifactKind;

/// The local provider's settings (`providers.<name>.config` of `type: local`).
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct LocalSettings {
    pub base_path: String,
    pub public_url_base: String,
}

#[derive(Clone, Debug)]
pub enum ProviderSpec {
    Local(LocalSettings),
    S3(Box<S3Settings>),
}

/// One routing rule: the first whose condition holds picks the provider.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rule {
    pub artifact_type: Option<ArtifactKind>,
    /// The object must be strictly larger (bytes) for the rule to match.
    pub size_gt: Option<u64>,
    pub provider: String,
}

impl Rule {
    pub fn matches(&self, kind: Option<ArtifactKind>, size: Option<u64>) -> bool {
        let kind_ok = self.artifact_type.is_none_or(|k| Some(k) == kind);
        let size_ok = match (self.size_gt, size) {
            (None, _) => true,
            (Some(limit), Some(size)) => size > limit,
            // Unknown size: a size rule cannot be shown to hold.
            (Some(_), None) => false,
        };
        kind_ok && size_ok
    }
}

/// The providers and rules in effect.
#[derive(Clone, Debug, Default)]
pub struct Layout {
    pub default_provider: String,
    pub providers: BTreeMap<String, ProviderSpec>,
    pub rules: Vec<Rule>,
    /// `allowed_content_types` of the file: narrows the built-in allow-list when given.
    pub allowed_content_types: Option<Vec<String>>,
}

/// What the file may set besides providers.
#[derive(Debug, Default)]
pub struct FileValues {
    pub default_provider: Option<String>,
    pub max_file_size: Option<u64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    storage: FileStorage,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileStorage {
    default_provider: Option<String>,
    max_file_size: Option<u64>,
    allowed_content_types: Option<Vec<String>>,
    #[serde(default)]
    providers: BTreeMap<String, RawProvider>,
    #[serde(default)]
    routing_rules: Vec<RawRule>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawProvider {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    config: Value,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    condition: Option<RawCondition>,
    provider: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCondition {
    artifact_type: Option<String>,
    size_gt: Option<Value>,
}

/// Parses `"100MB"`, `"50KB"`, `"1GB"`, `"10 MiB"` or a plain number of bytes (1024-based).
pub fn parse_size(value: &Value) -> Result<u64, String> {
    if let Some(n) = value.as_u64() {
        return Ok(n);
    }
    let text = value
        .as_str()
        .ok_or_else(|| "expected a size such as 100MB or a number of bytes".to_string())?
        .trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: f64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a size such as 100MB"))?;
    let factor: u64 = match unit.trim().to_ascii_uppercase().as_str() {
        "" | "B" => 1,
        "KB" | "KIB" | "K" => 1 << 10,
        "MB" | "MIB" | "M" => 1 << 20,
        "GB" | "GIB" | "G" => 1 << 30,
        "TB" | "TIB" | "T" => 1 << 40,
        other => {
            return Err(format!(
                "unknown size unit {other:?} (use B, KB, MB, GB, TB)"
            ))
        }
    };
    Ok((number * factor as f64) as u64)
}

/// Replaces `${VAR}` and `${VAR:-default}` in every string of `value`; an unset variable
/// without a default is an error naming it and where it is used.
fn expand(value: &mut Value, env: &BTreeMap<String, String>, path: &str) -> Result<(), String> {
    match value {
        Value::String(s) if s.contains("${") => {
            *s = expand_str(s, env).map_err(|e| format!("{path}: {e}"))?;
        }
        Value::Sequence(items) => {
            for (i, item) in items.iter_mut().enumerate() {
                expand(item, env, &format!("{path}[{i}]"))?;
            }
        }
        Value::Mapping(map) => {
            for (k, v) in map.iter_mut() {
                let name = k.as_str().map(str::to_string).unwrap_or_default();
                let child = if path.is_empty() {
                    name
                } else {
                    format!("{path}.{name}")
                };
                expand(v, env, &child)?;
            }
        }
        _ => {}
    }
    Ok(())
}

fn expand_str(s: &str, env: &BTreeMap<String, String>) -> Result<String, String> {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after
            .find('}')
            .ok_or_else(|| format!("unclosed ${{ in {s:?}"))?;
        let inner = &after[..end];
        let (name, default) = match inner.split_once(":-") {
            Some((n, d)) => (n, Some(d)),
            None => (inner, None),
        };
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(format!("${{{inner}}} is not a variable name"));
        }
        match (env.get(name), default) {
            (Some(v), _) => out.push_str(v),
            (None, Some(d)) => out.push_str(d),
            (None, None) => {
                return Err(format!(
                "environment variable {name} is not set (use ${{{name}:-default}} for a default)"
            ))
            }
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

fn typed<T: serde::de::DeserializeOwned>(value: Value, path: &str) -> Result<T, String> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        let inner = e.path().to_string();
        let at = if inner == "." || inner.is_empty() {
            path.to_string()
        } else {
            format!("{path}.{inner}")
        };
        format!("{at}: {}", e.inner())
    })
}

/// Reads `storage_config.yaml`. Errors name the file and the key.
pub fn load_file(
    path: &std::path::Path,
    env: &BTreeMap<String, String>,
) -> Result<(Layout, FileValues), String> {
    let shown = path.display();
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read {shown}: {e}"))?;
    parse_file(&text, env).map_err(|e| format!("{shown}: {e}"))
}

pub fn parse_file(
    text: &str,
    env: &BTreeMap<String, String>,
) -> Result<(Layout, FileValues), String> {
    let mut value: Value = serde_yaml::from_str(text).map_err(|e| e.to_string())?;
    expand(&mut value, env, "")?;
    let file: File = typed(value, "")
        .map_err(|e| e.trim_start_matches(": ").to_string())
        .map_err(|e| {
            if e.contains("missing field `storage`") {
                "the file must put everything under a top-level `storage:` key".to_string()
            } else {
                e
            }
        })?;
    let storage = file.storage;
    if let Some(types) = &storage.allowed_content_types {
        for (i, t) in types.iter().enumerate() {
            if crate::media::allowed_type(t).is_none() {
                return Err(format!(
                    "storage.allowed_content_types[{i}]: {t:?} is not a content type this \
                     server accepts (see docs/compat.md, Uploads)"
                ));
            }
        }
    }
    let mut layout = Layout {
        allowed_content_types: storage.allowed_content_types,
        ..Layout::default()
    };
    for (name, raw) in storage.providers {
        let at = format!("storage.providers.{name}.config");
        let config = if raw.config.is_null() {
            Value::Mapping(Default::default())
        } else {
            raw.config
        };
        let spec = match raw.kind.as_str() {
            "local" => ProviderSpec::Local(typed(config, &at)?),
            "s3" => ProviderSpec::S3(Box::new(typed(config, &at)?)),
            "gcs" | "supabase" => {
                return Err(format!(
                    "storage.providers.{name}.type: `{}` is not a provider of this server; \
                     use `s3` with the store's S3-compatible endpoint (Supabase Storage and \
                     Google Cloud Storage both offer one)",
                    raw.kind
                ))
            }
            other => {
                return Err(format!(
                    "storage.providers.{name}.type: unknown provider type `{other}` (expected \
                     local or s3)"
                ))
            }
        };
        layout.providers.insert(name, spec);
    }
    for (i, rule) in storage.routing_rules.into_iter().enumerate() {
        let at = format!("storage.routing_rules[{i}]");
        let (artifact_type, size_gt) = match rule.condition {
            None => (None, None),
            Some(c) => (
                c.artifact_type
                    .map(|t| {
                        ArtifactKind::parse(&t).ok_or_else(|| {
                            format!(
                                "{at}.condition.artifact_type: unknown type {t:?} (expected \
                                 image, video, audio or text)"
                            )
                        })
                    })
                    .transpose()?,
                c.size_gt
                    .map(|v| parse_size(&v).map_err(|e| format!("{at}.condition.size_gt: {e}")))
                    .transpose()?,
            ),
        };
        layout.rules.push(Rule {
            artifact_type,
            size_gt,
            provider: rule.provider,
        });
    }
    Ok((
        layout,
        FileValues {
            default_provider: storage.default_provider,
            max_file_size: storage.max_file_size,
        },
    ))
}

impl Layout {
    /// Checks that the default and every rule name a provider.
    pub fn check(&self) -> Result<(), String> {
        if self.providers.is_empty() {
            return Err("storage: no provider is configured".into());
        }
        if !self.providers.contains_key(&self.default_provider) {
            return Err(format!(
                "storage.default_provider: no provider named `{}` (configured: {})",
                self.default_provider,
                self.providers
                    .keys()
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        for (i, rule) in self.rules.iter().enumerate() {
            if !self.providers.contains_key(&rule.provider) {
                return Err(format!(
                    "storage.routing_rules[{i}].provider: no provider named `{}`",
                    rule.provider
                ));
            }
        }
        for (name, spec) in &self.providers {
            if let ProviderSpec::S3(s3) = spec {
                s3.validate()
                    .map_err(|e| format!("storage.providers.{name}.config: {e}"))?;
            }
        }
        Ok(())
    }

    /// The provider for an object of `kind` and `size` (when known).
    pub fn route(&self, kind: Option<ArtifactKind>, size: Option<u64>) -> &str {
        self.rules
            .iter()
            .find(|r| r.matches(kind, size))
            .map(|r| r.provider.as_str())
            .unwrap_or(&self.default_provider)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn sizes_parse_1024_based() {
        let v = |s: &str| Value::String(s.into());
        assert_eq!(parse_size(&v("100MB")), Ok(100 << 20));
        assert_eq!(parse_size(&v("50KB")), Ok(50 << 10));
        assert_eq!(parse_size(&v("1GB")), Ok(1 << 30));
        assert_eq!(parse_size(&v("1.5 MiB")), Ok(3 << 19));
        assert_eq!(parse_size(&Value::Number(42.into())), Ok(42));
        assert!(parse_size(&v("12 parsecs")).is_err());
        assert!(parse_size(&v("MB")).is_err());
    }

    #[test]
    fn variables_expand_and_unset_ones_are_named() {
        let e = env(&[("BUCKET", "art"), ("EMPTY", "")]);
        assert_eq!(
            expand_str("s3://${BUCKET}/x", &e).as_deref(),
            Ok("s3://art/x")
        );
        assert_eq!(expand_str("${MISSING:-dflt}", &e).as_deref(), Ok("dflt"));
        assert_eq!(expand_str("${EMPTY:-dflt}", &e).as_deref(), Ok(""));
        let err = expand_str("${MISSING}", &e).unwrap_err();
        assert!(err.contains("MISSING"), "{err}");
        assert!(expand_str("${bad name}", &e).is_err());
        assert!(expand_str("${OPEN", &e).is_err());
    }

    #[test]
    fn the_original_format_loads_with_rules() {
        let text = r#"
storage:
  default_provider: local
  max_file_size: 1048576
  providers:
    local:
      type: local
      config: { base_path: "${DATA:-/tmp/b}", public_url_base: "http://x/api/storage" }
    s3:
      type: s3
      config: { bucket: "${BUCKET}", region: eu-west-1 }
  routing_rules:
    - condition: { artifact_type: video, size_gt: "100MB" }
      provider: s3
    - provider: local
"#;
        let (layout, values) = parse_file(text, &env(&[("BUCKET", "art")])).unwrap();
        assert_eq!(values.default_provider.as_deref(), Some("local"));
        assert_eq!(values.max_file_size, Some(1 << 20));
        match &layout.providers["local"] {
            ProviderSpec::Local(l) => assert_eq!(l.base_path, "/tmp/b"),
            other => panic!("{other:?}"),
        }
        match &layout.providers["s3"] {
            ProviderSpec::S3(s) => assert_eq!(s.bucket, "art"),
            other => panic!("{other:?}"),
        }
        let layout = Layout {
            default_provider: "local".into(),
            ..layout
        };
        layout.check().unwrap();
        assert_eq!(
            layout.route(Some(ArtifactKind::Video), Some(200 << 20)),
            "s3"
        );
        assert_eq!(
            layout.route(Some(ArtifactKind::Video), Some(100 << 20)),
            "local"
        );
        assert_eq!(layout.route(Some(ArtifactKind::Video), None), "local");
        assert_eq!(
            layout.route(Some(ArtifactKind::Image), Some(200 << 20)),
            "local"
        );
    }

    #[test]
    fn unknown_keys_and_types_are_named() {
        let cases = [
            ("storage:\n  providers: {}\n  colour: red\n", "colour"),
            (
                "storage:\n  providers:\n    a: { type: local, config: { base_pth: x } }\n",
                "base_pth",
            ),
            (
                "storage:\n  providers:\n    a: { type: s3, config: { bucket: b, regon: x } }\n",
                "regon",
            ),
            (
                "storage:\n  providers:\n    a: { type: ftp }\n",
                "unknown provider type `ftp`",
            ),
            ("storage:\n  providers:\n    a: { type: gcs }\n", "S3-compatible"),
            (
                "storage:\n  routing_rules:\n    - { condition: { artifact_typ: video }, provider: a }\n",
                "artifact_typ",
            ),
            (
                "storage:\n  routing_rules:\n    - { condition: { artifact_type: model }, provider: a }\n",
                "unknown type",
            ),
            ("providers: {}\n", "storage"),
        ];
        for (text, named) in cases {
            let err = parse_file(text, &env(&[])).unwrap_err();
            assert!(err.contains(named), "{text:?}: {err}");
        }
    }

    #[test]
    fn rules_and_default_must_name_providers() {
        let (mut layout, _) = parse_file(
            "storage:\n  providers:\n    a: { type: local }\n  routing_rules:\n    - provider: b\n",
            &env(&[]),
        )
        .unwrap();
        layout.default_provider = "a".into();
        assert!(layout.check().unwrap_err().contains("`b`"));
        layout.rules.clear();
        layout.default_provider = "zz".into();
        assert!(layout.check().unwrap_err().contains("`zz`"));
    }
}
