//! `generators.yaml` (runtime.md §3.5): which generators are registered, under which names, in
//! which order. Keys: `strict_mode` (default true), `allow_unlisted`, `generators: [{id | class |
//! import | entrypoint, enabled, name, options, input_defaults, timeout_seconds}]`, and
//! `catalogue: [...]`: provider models added to (or replacing, by name) the built-in catalogue,
//! in its format (`shared/catalogue/README.md`). `class:` takes the original's Python class
//! paths, so its files keep working.

use std::{path::Path, sync::Arc};

use serde::Deserialize;
use serde_json::Value;

use super::{catalogue, definitions, ProviderKeys, Registered, Registry};
use crate::Config;

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
    #[serde(default)]
    catalogue: Vec<Value>,
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

/// Builds the registry of this process from `config`: the provider keys, then
/// `generators.yaml` if one is configured, else the built-ins; generators without a key are
/// hidden when `generators.unavailable` says so. API and worker both call this.
pub fn load(config: &Config) -> Result<Loaded, String> {
    let keys = ProviderKeys::from_config(&config.generators)?;
    let mut loaded = match config
        .generators
        .config_path
        .as_deref()
        .filter(|p| !p.is_empty())
    {
        None => Loaded {
            registry: Registry::builtin_with(&keys)?,
            warnings: vec![],
        },
        Some(path) => {
            let path = Path::new(path);
            let text = std::fs::read_to_string(path)
                .map_err(|e| format!("generators config {}: {e}", path.display()))?;
            parse(&text, &keys).map_err(|e| format!("generators config {}: {e}", path.display()))?
        }
    };
    if config.generators.unavailable == "hide" {
        loaded.registry.hide_unavailable();
    }
    Ok(loaded)
}

/// The catalogue in effect: the built-in entries with the file's replacing those of the same
/// name and new ones appended.
fn catalogue_with(extra: Vec<Value>) -> Result<Vec<Arc<catalogue::Entry>>, String> {
    let mut all: Vec<Arc<catalogue::Entry>> = catalogue::builtin().to_vec();
    for (i, raw) in extra.into_iter().enumerate() {
        let entry: catalogue::Entry =
            serde_json::from_value(raw).map_err(|e| format!("catalogue[{i}]: {e}"))?;
        entry.check().map_err(|e| format!("catalogue[{i}]: {e}"))?;
        match all.iter_mut().find(|e| e.name == entry.name) {
            Some(slot) => *slot = Arc::new(entry),
            None => all.push(Arc::new(entry)),
        }
    }
    Ok(all)
}

pub fn parse(text: &str, keys: &ProviderKeys) -> Result<Loaded, String> {
    let file: File = serde_yaml::from_str(text).map_err(|e| e.to_string())?;
    let defs = definitions();
    let catalogue = catalogue_with(file.catalogue)?;
    let classes = catalogue::classes();
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
        let wanted = match (&entry.id, &entry.class) {
            (Some(id), _) => id.clone(),
            (None, Some(class)) => {
                // `pkg.module:Class` is the same as `pkg.module.Class`.
                let class = class.replace(':', ".");
                classes.get(&class).cloned().unwrap_or(class)
            }
            _ => String::new(),
        };
        let def = defs.iter().find(|d| d.id == wanted);
        let model = catalogue.iter().find(|e| e.name == wanted);
        if def.is_none() && model.is_none() {
            problem(format!(
                "unknown generator `{wanted}` (see the catalogue in shared/catalogue or the local-* generators)"
            ))?;
            continue;
        }
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
        let mut registered = match (def, model) {
            (Some(def), _) => Registered::from_def(def, entry.name)?,
            (None, Some(model)) => Registered::from_entry(model.clone(), entry.name, keys)?,
            (None, None) => continue,
        };
        if let Some(t) = entry.timeout_seconds {
            registered.timeout = Some(std::time::Duration::from_secs(t));
        }
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
            &ProviderKeys::default(),
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
        assert!(parse(text, &ProviderKeys::default())
            .unwrap_err()
            .contains("unknown generator"));
        let loaded = parse(
            &format!("strict_mode: false\n{text}"),
            &ProviderKeys::default(),
        )
        .unwrap();
        assert_eq!(loaded.registry.len(), 1);
        assert_eq!(loaded.warnings.len(), 1);
    }

    #[test]
    fn the_originals_class_paths_and_catalogue_additions_register_provider_models() {
        let keys = ProviderKeys::default().with(super::super::Provider::Fal, "k");
        let text = r#"
generators:
  - class: "boards.generators.implementations.fal.image.nano_banana_pro.FalNanoBananaProGenerator"
  - id: fal-veo3
    name: my-veo
    timeout_seconds: 60
  - id: fal-my-model
catalogue:
  - name: fal-my-model
    artifact_type: image
    provider: fal
    model: someone/my-model
    description: A model the deployment added.
    inputs: {prompt: {type: string}}
    required: [prompt]
    output: {urls: "images[*].url"}
"#;
        let loaded = parse(text, &keys).unwrap();
        let names: Vec<&str> = loaded
            .registry
            .list(None)
            .map(|g| g.name.as_str())
            .collect();
        assert_eq!(names, ["fal-nano-banana-pro", "my-veo", "fal-my-model"]);
        let veo = loaded.registry.get("my-veo").unwrap();
        assert_eq!(veo.timeout, Some(std::time::Duration::from_secs(60)));
        assert!(veo.unavailable.is_none(), "the key is there");
        let mine = loaded.registry.get("fal-my-model").unwrap();
        assert_eq!(mine.entry().unwrap().model, "someone/my-model");
        let bad = text.replace(
            "provider: fal\n    model: someone",
            "provider: kie\n    model: someone",
        );
        assert!(parse(&bad, &keys)
            .unwrap_err()
            .contains("`api` is required"));
    }

    #[test]
    fn duplicate_names_are_refused() {
        let err = parse(
            "generators:\n  - id: local-text\n  - id: local-image\n    name: local-text\n",
            &ProviderKeys::default(),
        )
        .err()
        .unwrap();
        assert!(err.contains("twice"), "{err}");
    }

    #[test]
    fn the_artifact_type_filter_is_lower_case() {
        let r = Registry::builtin();
        let images = r.list(Some("image")).count();
        assert!(images >= 2);
        assert_eq!(
            images,
            r.list(None)
                .filter(|g| g.artifact_type.as_str() == "image")
                .count()
        );
        assert_eq!(r.list(Some("IMAGE")).count(), 0);
        assert_eq!(r.list(Some("")).count(), r.len());
    }
}
