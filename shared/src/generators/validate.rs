//! Validation of `inputParams` against a generator's input schema (JSON Schema 2020-12 with the
//! `jsonschema` crate), with messages that name the offending field, and discovery of
//! the artifact input slots (fields whose schema refers to `*Artifact`).

use serde_json::Value;

use super::ArtifactKind;

/// A field that takes another generation's artifact (by generation id).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ArtifactSlot {
    pub field: String,
    pub kind: ArtifactKind,
    /// A list of ids rather than one.
    pub many: bool,
}

fn artifact_kind_of_ref(r: &str) -> Option<ArtifactKind> {
    let name = r.rsplit('/').next()?;
    match name {
        "ImageArtifact" => Some(ArtifactKind::Image),
        "VideoArtifact" => Some(ArtifactKind::Video),
        "AudioArtifact" => Some(ArtifactKind::Audio),
        "TextArtifact" => Some(ArtifactKind::Text),
        _ => None,
    }
}

/// The artifact kind a (sub)schema refers to, also through `anyOf [.., null]` (optional slots).
fn direct_artifact(schema: &Value) -> Option<ArtifactKind> {
    if let Some(r) = schema.get("$ref").and_then(Value::as_str) {
        return artifact_kind_of_ref(r);
    }
    ["anyOf", "allOf", "oneOf"].iter().find_map(|k| {
        schema
            .get(*k)
            .and_then(Value::as_array)
            .and_then(|branches| branches.iter().find_map(direct_artifact))
    })
}

fn list_artifact(schema: &Value) -> Option<ArtifactKind> {
    if let Some(items) = schema.get("items") {
        return direct_artifact(items);
    }
    ["anyOf", "allOf", "oneOf"].iter().find_map(|k| {
        schema
            .get(*k)
            .and_then(Value::as_array)
            .and_then(|branches| branches.iter().find_map(list_artifact))
    })
}

/// The artifact slots of an input schema, in property order (optional ones included).
pub fn artifact_slots(schema: &Value) -> Vec<ArtifactSlot> {
    let Some(props) = schema.get("properties").and_then(Value::as_object) else {
        return vec![];
    };
    props
        .iter()
        .filter_map(|(field, prop)| {
            if let Some(kind) = direct_artifact(prop) {
                Some(ArtifactSlot {
                    field: field.clone(),
                    kind,
                    many: false,
                })
            } else {
                list_artifact(prop).map(|kind| ArtifactSlot {
                    field: field.clone(),
                    kind,
                    many: true,
                })
            }
        })
        .collect()
}

/// An input schema compiled for validation (with the `jsonschema` crate). Artifact slots take
/// generation ids where the published schema shows the artifact document, so before compiling
/// every artifact `$ref` becomes "a string in UUID format"; messages are rewritten to name the
/// offending field in the words the API has always used.
pub struct Validator {
    inner: jsonschema::Validator,
    /// The schema that was compiled (to tell generation-id fields apart in messages).
    compiled: Value,
}

impl std::fmt::Debug for Validator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Validator")
    }
}

/// What an artifact slot accepts: a generation id.
fn id_schema() -> Value {
    serde_json::json!({"type": "string", "format": "uuid", "x-generation-id": true})
}

fn rewrite_artifacts(value: &mut Value) {
    match value {
        Value::Object(obj) => {
            if obj
                .get("$ref")
                .and_then(Value::as_str)
                .and_then(artifact_kind_of_ref)
                .is_some()
            {
                *value = id_schema();
                return;
            }
            for (k, v) in obj.iter_mut() {
                if k != "$defs" {
                    rewrite_artifacts(v);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(rewrite_artifacts),
        _ => {}
    }
}

impl Validator {
    /// Compiles `schema`; fails when it is not a valid JSON Schema (2020-12) or refers to
    /// something it does not define (nothing is ever fetched).
    pub fn new(schema: &Value) -> Result<Self, String> {
        let mut compiled = schema.clone();
        rewrite_artifacts(&mut compiled);
        let inner = jsonschema::options()
            .with_draft(jsonschema::Draft::Draft202012)
            .should_validate_formats(true)
            .build(&compiled)
            .map_err(|e| format!("invalid input schema: {e}"))?;
        Ok(Self { inner, compiled })
    }

    /// Checks `input`; on failure returns one message per problem, each starting with the
    /// field's path (`prompt`, `images[0]`, `voice.speed`).
    pub fn validate(&self, input: &Value) -> Result<(), Vec<String>> {
        if !input.is_object() {
            return Err(vec![format!(
                "expected a JSON object of parameters, got {}",
                describe(input)
            )]);
        }
        let mut errors = vec![];
        for e in self.inner.iter_errors(input) {
            self.explain(&e, &mut errors);
        }
        errors.dedup();
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors)
        }
    }

    /// Whether the schema at `schema_path` (the failing keyword's parent) is a generation id.
    fn is_id_slot(&self, schema_path: &str) -> bool {
        let parent = schema_path.rsplit_once('/').map_or("", |(p, _)| p);
        self.compiled
            .pointer(parent)
            .is_some_and(|s| s.get("x-generation-id").is_some())
    }

    fn explain(&self, e: &jsonschema::ValidationError<'_>, out: &mut Vec<String>) {
        use jsonschema::error::ValidationErrorKind as K;
        let path = field_path(e.instance_path().as_str());
        let at = |msg: String| {
            if path.is_empty() {
                msg
            } else {
                format!("{path}: {msg}")
            }
        };
        let value = e.instance().as_ref();
        let msg = match e.kind() {
            K::Required { property } => {
                let name = show(property);
                out.push(format!("{}: is required", join(&path, &name)));
                return;
            }
            K::AdditionalProperties { unexpected } => {
                for key in unexpected {
                    out.push(format!("{}: is not a known parameter", join(&path, key)));
                }
                return;
            }
            K::AnyOf { context } | K::OneOfNotValid { context } => {
                // `anyOf [X, null]` (an optional value): explain X, the branch that was meant.
                let branch = if value.is_null() {
                    None
                } else {
                    context.iter().find(|errors| {
                        !errors
                            .iter()
                            .all(|e| matches!(e.kind(), K::Type { .. }) && null_only(e))
                    })
                };
                match branch {
                    Some(errors) if !errors.is_empty() => {
                        for inner in errors {
                            self.explain(inner, out);
                        }
                        return;
                    }
                    _ => "does not match any of the allowed forms".to_string(),
                }
            }
            K::Format { format } if format == "uuid" => {
                format!("expected a generation id (UUID), got {}", short(value))
            }
            K::Type { kind } => {
                if self.is_id_slot(e.schema_path().as_str()) {
                    format!("expected a generation id (UUID), got {}", describe(value))
                } else {
                    let wanted = match kind {
                        jsonschema::error::TypeKind::Single(t) => article(&t.to_string()),
                        jsonschema::error::TypeKind::Multiple(set) => set
                            .iter()
                            .map(|t| article(&t.to_string()))
                            .collect::<Vec<_>>()
                            .join(" or "),
                    };
                    format!("expected {wanted}, got {}", describe(value))
                }
            }
            K::Enum { options } => {
                let list = options
                    .as_array()
                    .map(|o| o.iter().map(show).collect::<Vec<_>>().join(", "))
                    .unwrap_or_else(|| options.to_string());
                format!("must be one of {list} (got {})", show(value))
            }
            K::Constant { expected_value } => format!("must be {}", show(expected_value)),
            K::MinLength { limit } => {
                if value.as_str() == Some("") {
                    "must not be empty".to_string()
                } else {
                    format!("must be at least {limit} characters")
                }
            }
            K::MaxLength { limit } => format!("must be at most {limit} characters"),
            K::Pattern { pattern } => format!("must match the pattern {pattern}"),
            K::Minimum { limit } => format!("must be at least {limit}"),
            K::Maximum { limit } => format!("must be at most {limit}"),
            K::ExclusiveMinimum { limit } => format!("must be greater than {limit}"),
            K::ExclusiveMaximum { limit } => format!("must be less than {limit}"),
            K::MultipleOf { multiple_of, .. } => format!("must be a multiple of {multiple_of}"),
            K::MinItems { limit } => format!("must have at least {limit} item(s)"),
            K::MaxItems { limit } => format!("must have at most {limit} item(s)"),
            K::UniqueItems => "must not repeat items".to_string(),
            K::FalseSchema => "is not allowed here".to_string(),
            _ => e.to_string(),
        };
        out.push(at(msg));
    }
}

/// A `type` error whose wanted type is only `null` (the null branch of an optional value).
fn null_only(e: &jsonschema::ValidationError<'_>) -> bool {
    matches!(
        e.kind(),
        jsonschema::error::ValidationErrorKind::Type {
            kind: jsonschema::error::TypeKind::Single(jsonschema::JsonType::Null)
        }
    )
}

/// `/images/0/url` → `images[0].url`.
fn field_path(pointer: &str) -> String {
    let mut out = String::new();
    for seg in pointer.split('/').skip(1) {
        let seg = seg.replace("~1", "/").replace("~0", "~");
        if seg.parse::<usize>().is_ok() && !out.is_empty() {
            out.push_str(&format!("[{seg}]"));
        } else {
            if !out.is_empty() {
                out.push('.');
            }
            out.push_str(&seg);
        }
    }
    out
}

fn join(path: &str, field: &str) -> String {
    if path.is_empty() {
        field.to_string()
    } else {
        format!("{path}.{field}")
    }
}

fn describe(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "an integer",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

/// A value as a message shows it: strings quoted and cut at 60 characters.
fn short(v: &Value) -> String {
    match v {
        Value::String(s) => format!("{:?}", s.chars().take(60).collect::<String>()),
        other => describe(other).to_string(),
    }
}

fn show(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn article(t: &str) -> String {
    match t {
        "integer" | "array" | "object" => format!("an {t}"),
        "null" => "null".into(),
        _ => format!("a {t}"),
    }
}

/// Checks `input` against `schema` (compiling it each time: hot paths keep a [`Validator`]).
pub fn validate(schema: &Value, input: &Value) -> Result<(), Vec<String>> {
    Validator::new(schema).map_err(|e| vec![e])?.validate(input)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn schema() -> Value {
        json!({
            "type": "object",
            "properties": {
                "prompt": {"type": "string", "minLength": 1, "maxLength": 10},
                "width": {"type": "integer", "minimum": 64, "maximum": 2048, "multipleOf": 8},
                "style": {"$ref": "#/$defs/Style"},
                "seed": {"anyOf": [{"type": "integer", "minimum": 0}, {"type": "null"}], "default": null},
                "image": {"$ref": "#/$defs/ImageArtifact"},
                "refs": {"type": "array", "items": {"$ref": "#/$defs/VideoArtifact"}, "maxItems": 2},
                "mask": {"anyOf": [{"$ref": "#/$defs/ImageArtifact"}, {"type": "null"}]}
            },
            "required": ["prompt"],
            "additionalProperties": false,
            "$defs": {"Style": {"type": "string", "enum": ["a", "b"]}, "ImageArtifact": {}, "VideoArtifact": {}}
        })
    }

    #[test]
    fn valid_input_passes() {
        let id = uuid::Uuid::new_v4().to_string();
        let input = json!({"prompt": "hi", "width": 512, "style": "a", "seed": null, "image": id, "refs": [id], "mask": null});
        assert_eq!(validate(&schema(), &input), Ok(()));
    }

    #[test]
    fn every_problem_is_named() {
        let input = json!({"width": 65, "style": "c", "seed": -1, "image": "nope", "refs": [1, 2, 3], "extra": 1});
        let errors = validate(&schema(), &input).unwrap_err();
        let text = errors.join("\n");
        for expected in [
            "prompt: is required",
            "width: must be a multiple of 8",
            "style: must be one of a, b (got c)",
            "seed: must be at least 0",
            "image: expected a generation id (UUID), got \"nope\"",
            "refs: must have at most 2 item(s)",
            "refs[0]: expected a generation id (UUID), got an integer",
            "extra: is not a known parameter",
        ] {
            assert!(text.contains(expected), "missing {expected:?} in\n{text}");
        }
        assert!(validate(&schema(), &json!("x")).is_err());
        let errors = validate(&schema(), &json!({"prompt": ""})).unwrap_err();
        assert_eq!(errors, vec!["prompt: must not be empty"]);
    }

    #[test]
    fn artifact_slots_include_lists_and_optional_fields() {
        let slots = artifact_slots(&schema());
        assert_eq!(
            slots,
            vec![
                ArtifactSlot {
                    field: "image".into(),
                    kind: ArtifactKind::Image,
                    many: false
                },
                ArtifactSlot {
                    field: "refs".into(),
                    kind: ArtifactKind::Video,
                    many: true
                },
                ArtifactSlot {
                    field: "mask".into(),
                    kind: ArtifactKind::Image,
                    many: false
                },
            ]
        );
    }
}
