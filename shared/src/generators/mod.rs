//! Generators: what can be generated, with which inputs. The [`Registry`] is built once per
//! process from configuration ([`config::load`]: the built-in `local-*` generators, the
//! catalogue of provider models, `generators.yaml`, the provider keys) and shared by the API
//! (listing, input validation at creation) and the worker, whose executors (one per local
//! generator, one adapter per provider) run what the registry describes.

pub mod catalogue;
pub mod config;
pub mod imaging;
pub mod keys;
pub mod local;
pub mod run;
pub mod schema;
pub mod validate;

use std::{collections::HashMap, fmt, sync::Arc};

use serde_json::Value;

pub use catalogue::Provider;
pub use keys::ProviderKeys;
pub use validate::ArtifactSlot;

use crate::AppError;

/// The artifact types generators produce (stored lower-case).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ArtifactKind {
    Image,
    Video,
    Audio,
    Text,
}

impl ArtifactKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Image => "image",
            Self::Video => "video",
            Self::Audio => "audio",
            Self::Text => "text",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "image" => Some(Self::Image),
            "video" => Some(Self::Video),
            "audio" => Some(Self::Audio),
            "text" => Some(Self::Text),
            _ => None,
        }
    }
}

impl fmt::Display for ArtifactKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Deserialises an input as the generator will; the error names the field.
pub type TypedCheck = fn(&Value) -> Result<(), String>;

/// A compiled-in generator: its identity and input contract.
#[derive(Clone, Copy)]
pub struct GeneratorDef {
    /// The built-in id (also the default registry name).
    pub id: &'static str,
    pub description: &'static str,
    pub artifact_type: ArtifactKind,
    pub input_schema: fn() -> Value,
    /// The typed check: deserialises the input exactly as the generator will (the input
    /// struct is the one source of truth); `None` for schema-only generators.
    pub check: Option<TypedCheck>,
    /// Refuse unknown top-level parameters. By default they are accepted and ignored (kept
    /// in `inputParams`), as the original's Pydantic models do: the Boards UI sends `prompt`
    /// to every generator.
    pub strict: bool,
}

/// An executor supplied with a custom definition (tests, extensions); `Debug` for the
/// registry's sake.
#[derive(Clone)]
pub struct Exec(pub Arc<dyn run::Execute>);

impl fmt::Debug for Exec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Exec")
    }
}

/// Where a registered generator comes from, which tells the worker how to run it.
#[derive(Clone, Debug)]
pub enum Source {
    /// A built-in `local-*` generator (its id).
    Local(&'static str),
    /// A provider model.
    Catalogue(Arc<catalogue::Entry>),
    /// Defined in code with its own executor.
    Custom(Exec),
}

/// A generator as registered: possibly renamed by configuration.
#[derive(Clone, Debug)]
pub struct Registered {
    pub name: String,
    pub description: String,
    pub artifact_type: ArtifactKind,
    pub input_schema: Arc<Value>,
    pub slots: Vec<ArtifactSlot>,
    /// See [`GeneratorDef::check`].
    pub check: Option<TypedCheck>,
    validator: Arc<validate::Validator>,
    pub source: Source,
    /// Time limit of one run (from the catalogue or `generators.yaml`).
    pub timeout: Option<std::time::Duration>,
    /// Why it cannot run in this deployment (its provider has no key), if so.
    pub unavailable: Option<String>,
}

impl Registered {
    fn new(
        name: String,
        description: String,
        artifact_type: ArtifactKind,
        schema: Value,
        source: Source,
    ) -> Result<Self, String> {
        let validator =
            validate::Validator::new(&schema).map_err(|e| format!("generator `{name}`: {e}"))?;
        Ok(Self {
            slots: validate::artifact_slots(&schema),
            input_schema: Arc::new(schema),
            validator: Arc::new(validator),
            name,
            description,
            artifact_type,
            check: None,
            source,
            timeout: None,
            unavailable: None,
        })
    }

    fn from_def(def: &GeneratorDef, name: Option<String>) -> Result<Self, String> {
        let mut schema = (def.input_schema)();
        if let Value::Object(root) = &mut schema {
            if def.strict {
                root.insert("additionalProperties".into(), Value::Bool(false));
            } else {
                root.remove("additionalProperties");
            }
        }
        let mut r = Self::new(
            name.unwrap_or_else(|| def.id.to_string()),
            def.description.to_string(),
            def.artifact_type,
            schema,
            Source::Local(def.id),
        )?;
        r.check = def.check;
        Ok(r)
    }

    /// A provider model of the catalogue; unavailable when `keys` has no key for it.
    pub fn from_entry(
        entry: Arc<catalogue::Entry>,
        name: Option<String>,
        keys: &ProviderKeys,
    ) -> Result<Self, String> {
        let mut r = Self::new(
            name.unwrap_or_else(|| entry.name.clone()),
            entry.description.clone(),
            entry.artifact_type,
            entry.input_schema(),
            Source::Catalogue(entry.clone()),
        )?;
        r.timeout = entry.timeout_seconds.map(std::time::Duration::from_secs);
        if !keys.has(entry.provider) {
            r.unavailable = Some(ProviderKeys::missing(entry.provider));
        }
        Ok(r)
    }

    /// A generator defined outside the built-ins (tests, extensions).
    pub fn custom(
        name: &str,
        description: &str,
        artifact_type: ArtifactKind,
        input_schema: Value,
        exec: Arc<dyn run::Execute>,
    ) -> Self {
        let validator = validate::Validator::new(&input_schema).unwrap_or_else(|_| {
            // An invalid schema accepts nothing but objects; the caller's tests will say so.
            validate::Validator::new(&serde_json::json!({"type": "object"}))
                .unwrap_or_else(|e| unreachable!("the object schema compiles: {e}"))
        });
        Self {
            name: name.to_string(),
            description: description.to_string(),
            artifact_type,
            slots: validate::artifact_slots(&input_schema),
            input_schema: Arc::new(input_schema),
            validator: Arc::new(validator),
            check: None,
            source: Source::Custom(Exec(exec)),
            timeout: None,
            unavailable: None,
        }
    }

    /// The catalogue entry of a provider model.
    pub fn entry(&self) -> Option<&Arc<catalogue::Entry>> {
        match &self.source {
            Source::Catalogue(e) => Some(e),
            _ => None,
        }
    }

    /// Checks `input` against the input schema (the error names every offending field), then
    /// deserialises it as the generator will, so what passes here also runs.
    pub fn validate(&self, input: &Value) -> Result<(), AppError> {
        let invalid = |m: String| AppError::bad_input(format!("Invalid input parameters: {m}"));
        self.validator
            .validate(input)
            .map_err(|errors| invalid(errors.join("; ")))?;
        match self.check {
            Some(check) => check(input).map_err(invalid),
            None => Ok(()),
        }
    }

    /// Fails when the generator cannot run in this deployment (no provider key).
    pub fn ensure_available(&self) -> Result<(), AppError> {
        match &self.unavailable {
            Some(why) => Err(AppError::bad_input(why.clone())),
            None => Ok(()),
        }
    }
}

/// Every built-in generator definition.
pub fn definitions() -> Vec<GeneratorDef> {
    local::builtin()
}

/// The generators of this process, in listing order.
#[derive(Clone, Debug, Default)]
pub struct Registry {
    entries: Vec<Registered>,
    index: HashMap<String, usize>,
}

impl Registry {
    /// The local generators and the catalogue's baseline models under their own names
    /// (provider models without a key in `keys` are listed as unavailable).
    pub fn builtin_with(keys: &ProviderKeys) -> Result<Self, String> {
        let mut entries = definitions()
            .iter()
            .map(|d| Registered::from_def(d, None))
            .collect::<Result<Vec<_>, _>>()?;
        for e in catalogue::builtin().iter().filter(|e| e.baseline) {
            entries.push(Registered::from_entry(e.clone(), None, keys)?);
        }
        Self::from_entries(entries)
    }

    /// [`Registry::builtin_with`] without provider keys.
    pub fn builtin() -> Self {
        Self::builtin_with(&ProviderKeys::default()).unwrap_or_default()
    }

    /// Drops the generators that cannot run here (`generators.unavailable: hide`).
    pub fn hide_unavailable(&mut self) {
        let entries = std::mem::take(&mut self.entries);
        let kept: Vec<Registered> = entries
            .into_iter()
            .filter(|e| e.unavailable.is_none())
            .collect();
        *self = Self::from_entries(kept).unwrap_or_default();
    }

    fn from_entries(entries: Vec<Registered>) -> Result<Self, String> {
        let mut index = HashMap::new();
        for (i, e) in entries.iter().enumerate() {
            if index.insert(e.name.clone(), i).is_some() {
                return Err(format!("generator name `{}` is registered twice", e.name));
            }
        }
        Ok(Self { entries, index })
    }

    /// Adds a generator after the others; fails on a duplicate name.
    pub fn register(&mut self, entry: Registered) -> Result<(), String> {
        if self.index.contains_key(&entry.name) {
            return Err(format!(
                "generator name `{}` is registered twice",
                entry.name
            ));
        }
        self.index.insert(entry.name.clone(), self.entries.len());
        self.entries.push(entry);
        Ok(())
    }

    pub fn get(&self, name: &str) -> Option<&Registered> {
        self.index.get(name).map(|i| &self.entries[*i])
    }

    /// Generators in registration order, optionally only those of a lower-case artifact type
    /// (`"image"`; an empty filter lists everything, `"IMAGE"` matches nothing, as the original).
    pub fn list<'a>(
        &'a self,
        artifact_type: Option<&'a str>,
    ) -> impl Iterator<Item = &'a Registered> + 'a {
        let filter = artifact_type.filter(|t| !t.is_empty());
        self.entries
            .iter()
            .filter(move |e| filter.is_none_or(|t| e.artifact_type.as_str() == t))
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn def(strict: bool) -> GeneratorDef {
        let mut d = local::builtin()
            .into_iter()
            .find(|d| d.id == "local-echo")
            .unwrap();
        d.strict = strict;
        d
    }

    fn reg(d: &GeneratorDef) -> Registered {
        Registered::from_def(d, None).unwrap()
    }

    #[test]
    fn unknown_parameters_are_ignored_unless_the_definition_is_strict() {
        let input = json!({"prompt": "hi", "style": "whatever"});
        reg(&def(false)).validate(&input).unwrap();
        let err = reg(&def(true)).validate(&input).unwrap_err();
        assert!(
            err.to_string().contains("style: is not a known parameter"),
            "{err}"
        );
        // No built-in generator is strict.
        assert!(local::builtin().iter().all(|d| !d.strict));
    }
}
