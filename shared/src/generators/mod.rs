//! Generators: what can be generated, with which inputs. The [`Registry`] is built once per
//! process from `generators.yaml` (or the built-ins) and shared by the API (listing, input
//! validation at creation) and the worker (execution).

pub mod config;
pub mod exec;
pub mod imaging;
pub mod local;
pub mod run;
pub mod schema;
pub mod validate;

use std::{collections::HashMap, fmt, sync::Arc};

use serde_json::Value;

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
    pub exec: fn() -> Arc<dyn run::Execute>,
}

/// A generator's executable half, shared (`Debug` for the registry's sake).
#[derive(Clone)]
pub struct Exec(pub Arc<dyn run::Execute>);

impl fmt::Debug for Exec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Exec")
    }
}

/// A generator as registered: possibly renamed by configuration.
#[derive(Clone, Debug)]
pub struct Registered {
    pub name: String,
    pub id: &'static str,
    pub description: String,
    pub artifact_type: ArtifactKind,
    pub input_schema: Arc<Value>,
    pub slots: Vec<ArtifactSlot>,
    /// See [`GeneratorDef::check`].
    pub check: Option<TypedCheck>,
    pub exec: Exec,
    /// Time limit of one run (from the generator or `generators.yaml`).
    pub timeout: Option<std::time::Duration>,
}

impl Registered {
    fn from_def(def: &GeneratorDef, name: Option<String>) -> Self {
        let mut schema = (def.input_schema)();
        if let Value::Object(root) = &mut schema {
            if def.strict {
                root.insert("additionalProperties".into(), Value::Bool(false));
            } else {
                root.remove("additionalProperties");
            }
        }
        Self {
            name: name.unwrap_or_else(|| def.id.to_string()),
            id: def.id,
            description: def.description.to_string(),
            artifact_type: def.artifact_type,
            slots: validate::artifact_slots(&schema),
            input_schema: Arc::new(schema),
            check: def.check,
            exec: Exec((def.exec)()),
            timeout: None,
        }
    }

    /// A generator defined outside the built-ins (tests, extensions).
    pub fn custom(
        name: &str,
        description: &str,
        artifact_type: ArtifactKind,
        input_schema: Value,
        exec: Arc<dyn run::Execute>,
    ) -> Self {
        Self {
            name: name.to_string(),
            id: "custom",
            description: description.to_string(),
            artifact_type,
            slots: validate::artifact_slots(&input_schema),
            input_schema: Arc::new(input_schema),
            check: None,
            exec: Exec(exec),
            timeout: None,
        }
    }

    /// Checks `input` against the input schema (the error names every offending field), then
    /// deserialises it as the generator will, so what passes here also runs.
    pub fn validate(&self, input: &Value) -> Result<(), AppError> {
        let invalid = |m: String| AppError::bad_input(format!("Invalid input parameters: {m}"));
        validate::validate(&self.input_schema, input)
            .map_err(|errors| invalid(errors.join("; ")))?;
        match self.check {
            Some(check) => check(input).map_err(invalid),
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
    /// All built-in generators under their own names.
    pub fn builtin() -> Self {
        Self::from_entries(
            definitions()
                .iter()
                .map(|d| Registered::from_def(d, None))
                .collect(),
        )
        .unwrap_or_default()
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

    #[test]
    fn unknown_parameters_are_ignored_unless_the_definition_is_strict() {
        let input = json!({"prompt": "hi", "style": "whatever"});
        Registered::from_def(&def(false), None)
            .validate(&input)
            .unwrap();
        let err = Registered::from_def(&def(true), None)
            .validate(&input)
            .unwrap_err();
        assert!(
            err.to_string().contains("style: is not a known parameter"),
            "{err}"
        );
        // No built-in generator is strict.
        assert!(local::builtin().iter().all(|d| !d.strict));
    }
}
