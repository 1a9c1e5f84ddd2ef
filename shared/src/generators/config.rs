//! `generators.yaml` (runtime.md §3.5): which generators are registered, under which names, in
//! which order. Keys: `strict_mode` (default true), `allow_unlisted`, `generators: [{id | class |
//! import | entrypoint, enabled, name, options, input_defaults}]`.

use std::path::Path;

use serde::Deserialize;
use serde_json::Value;

use super::{definitions, Registered, Registry};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default = "yes")]
    strict_mode: bool,
    #[serde(default)]
    #[allow(dead_code)] // Accepted for compatibility; nothing registers itself here.
    allow_unlisted: bool,
    #[serde(default)]
    generators: Vec<Entry>,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Entry {
    id: Option<String>,
    class: Option<String>,
    import: Option<String>,
    entrypoint: Option<String>,
    #[serde(default = "yes")]
    enabled: bool,
    name: Option<String>,
    #[serde(default)]
    options: Option<Value>,
    #[serde(default)]
    input_defaults: Option<Value>,
    /// Time limit of one run of this generator, in seconds.
    #[serde(default)]
    timeout_seconds: Option<u64>,
}

/// The outcome of loading: the registry plus warnings to log.
#[derive(Debug)]
pub struct Loaded {
    pub registry: Registry,
    pub warnings: Vec<String>,
}

/// Builds the registry from the YAML file at `path`, or the built-ins when `path` is `None`.
pub fn load(path: Option<&Path>) -> Result<Loaded, String> {
    let Some(path) = path else {
        return Ok(Loaded {
            registry: Registry::builtin(),
            warnings: vec![],
        });
    };
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("generators config {}: {e}", path.display()))?;
    parse(&text).map_err(|e| format!("generators config {}: {e}", path.display()))
}

pub fn parse(text: &str) -> Result<Loaded, String> {
    let file: File = serde_yaml::from_str(text).map_err(|e| e.to_string())?;
    let defs = definitions();
    let mut warnings = vec![];
    let mut entries = vec![];
    for (i, entry) in file.generators.into_iter().enumerate() {
        let place = format!("generators[{i}]");
        let mut problem = |msg: String| -> Result<(), String> {
            if file.strict_mode {
                Err(format!("{place}: {msg}"))
            } else {
                warnings.push(format!("{place}: {msg} (skipped)"));
                Ok(())
            }
        };
        if !entry.enabled {
            continue;
        }
        let given = [&entry.id, &entry.class, &entry.import, &entry.entrypoint]
            .iter()
            .filter(|v| v.is_some())
            .count();
        if given != 1 {
            problem("give exactly one of `id`, `class`, `import`, `entrypoint`".into())?;
            continue;
        }
        if let Some(module) = entry.import.as_ref().or(entry.entrypoint.as_ref()) {
            problem(format!(
                "`{module}`: Python imports and entry points do not exist in this build"
            ))?;
            continue;
        }
        let wanted = entry
            .id
            .as_ref()
            .or(entry.class.as_ref())
            .cloned()
            .unwrap_or_default();
        let Some(def) = defs.iter().find(|d| d.id == wanted) else {
            problem(format!(
                "unknown generator `{wanted}` (available: {})",
                defs.iter().map(|d| d.id).collect::<Vec<_>>().join(", ")
            ))?;
            continue;
        };
        if entry
            .options
            .as_ref()
            .is_some_and(|o| o.as_object().is_none_or(|m| !m.is_empty()))
        {
            problem(format!("`{wanted}` takes no options"))?;
            continue;
        }
        if entry.input_defaults.is_some() {
            warnings.push(format!(
                "{place}: `input_defaults` is not supported and was ignored"
            ));
        }
        let mut registered = Registered::from_def(def, entry.name);
        registered.timeout = entry.timeout_seconds.map(std::time::Duration::from_secs);
        entries.push(registered);
    }
    let registry = Registry::from_entries(entries)?;
    Ok(Loaded { registry, warnings })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_names_and_enabled_are_honoured() {
        let loaded = parse(
            "generators:\n  - id: local-text\n  - id: local-image\n    name: my-image\n  - id: local-audio\n    enabled: false\n",
        )
        .unwrap();
        let names: Vec<&str> = loaded
            .registry
            .list(None)
            .map(|g| g.name.as_str())
            .collect();
        assert_eq!(names, ["local-text", "my-image"]);
    }

    #[test]
    fn strict_mode_refuses_unknown_entries_and_lenient_mode_skips_them() {
        let text = "generators:\n  - class: boards.generators.fal.FluxPro\n  - id: local-text\n";
        assert!(parse(text).unwrap_err().contains("unknown generator"));
        let loaded = parse(&format!("strict_mode: false\n{text}")).unwrap();
        assert_eq!(loaded.registry.len(), 1);
        assert_eq!(loaded.warnings.len(), 1);
    }

    #[test]
    fn duplicate_names_are_refused() {
        let err =
            parse("generators:\n  - id: local-text\n  - id: local-image\n    name: local-text\n")
                .err()
                .unwrap();
        assert!(err.contains("twice"), "{err}");
    }

    #[test]
    fn the_artifact_type_filter_is_lower_case() {
        let r = Registry::builtin();
        assert_eq!(r.list(Some("image")).count(), 2);
        assert_eq!(r.list(Some("IMAGE")).count(), 0);
        assert_eq!(r.list(Some("")).count(), r.len());
    }
}
