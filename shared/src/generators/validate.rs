//! Validation of `inputParams` against a generator's input schema (the JSON-Schema subset that
//! Pydantic and schemars emit), with messages that name the offending field, and discovery of
//! the artifact input slots (fields whose schema refers to `*Artifact`).

use serde_json::{Map, Value};

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

struct Checker<'a> {
    defs: Option<&'a Map<String, Value>>,
    errors: Vec<String>,
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

fn type_matches(t: &str, v: &Value) -> bool {
    match t {
        "null" => v.is_null(),
        "boolean" => v.is_boolean(),
        "string" => v.is_string(),
        "array" => v.is_array(),
        "object" => v.is_object(),
        "number" => v.is_number(),
        "integer" => match v {
            Value::Number(n) => {
                n.is_i64() || n.is_u64() || n.as_f64().is_some_and(|f| f.fract() == 0.0)
            }
            _ => false,
        },
        _ => true,
    }
}

fn show(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

impl<'a> Checker<'a> {
    fn resolve(&self, schema: &'a Value) -> Option<&'a Value> {
        let r = schema.get("$ref")?.as_str()?;
        let name = r
            .strip_prefix("#/$defs/")
            .or_else(|| r.strip_prefix("#/definitions/"))?;
        self.defs?.get(name)
    }

    /// Returns whether `value` conforms; records messages only when `record` is set.
    fn check(&mut self, value: &Value, schema: &'a Value, path: &str, record: bool) -> bool {
        let fail = |this: &mut Self, msg: String| {
            if record {
                this.errors.push(format!("{path}: {msg}"));
            }
            false
        };
        if let Some(r) = schema.get("$ref").and_then(Value::as_str) {
            if artifact_kind_of_ref(r).is_some() {
                let ok = value
                    .as_str()
                    .is_some_and(|s| uuid::Uuid::parse_str(s).is_ok());
                let got = match value {
                    Value::String(s) => format!("{:?}", s.chars().take(60).collect::<String>()),
                    other => describe(other).to_string(),
                };
                return ok || fail(self, format!("expected a generation id (UUID), got {got}"));
            }
            return match self.resolve(schema) {
                Some(target) => self.check(value, target, path, record),
                None => true,
            };
        }
        if let Some(branches) = schema
            .get("anyOf")
            .or_else(|| schema.get("oneOf"))
            .and_then(Value::as_array)
        {
            if !branches.iter().any(|b| self.check(value, b, path, false)) {
                // Report against the first non-null branch, which is the informative one.
                let main = branches
                    .iter()
                    .find(|b| b.get("type") != Some(&Value::from("null")));
                return match main {
                    Some(b) if record => {
                        self.check(value, b, path, true);
                        false
                    }
                    _ => fail(self, format!("{} is not allowed here", describe(value))),
                };
            }
        }
        if let Some(all) = schema.get("allOf").and_then(Value::as_array) {
            let mut ok = true;
            for b in all {
                ok &= self.check(value, b, path, record);
            }
            if !ok {
                return false;
            }
        }
        if let Some(allowed) = schema.get("enum").and_then(Value::as_array) {
            if !allowed.contains(value) {
                let list = allowed.iter().map(show).collect::<Vec<_>>().join(", ");
                return fail(self, format!("must be one of {list} (got {})", show(value)));
            }
        }
        if let Some(c) = schema.get("const") {
            if c != value {
                return fail(self, format!("must be {}", show(c)));
            }
        }
        match schema.get("type") {
            Some(Value::String(t)) if !type_matches(t, value) => {
                return fail(
                    self,
                    format!("expected {}, got {}", article(t), describe(value)),
                );
            }
            Some(Value::Array(ts))
                if !ts
                    .iter()
                    .filter_map(Value::as_str)
                    .any(|t| type_matches(t, value)) =>
            {
                return fail(self, format!("{} is not allowed here", describe(value)));
            }
            _ => {}
        }
        let mut ok = true;
        match value {
            Value::String(s) => {
                let n = s.chars().count() as u64;
                if let Some(min) = schema.get("minLength").and_then(Value::as_u64) {
                    if n < min {
                        ok = fail(
                            self,
                            if min == 1 {
                                "must not be empty".into()
                            } else {
                                format!("must be at least {min} characters")
                            },
                        );
                    }
                }
                if let Some(max) = schema.get("maxLength").and_then(Value::as_u64) {
                    if n > max {
                        ok = fail(self, format!("must be at most {max} characters"));
                    }
                }
                if let Some(p) = schema.get("pattern").and_then(Value::as_str) {
                    if let Ok(re) = regex::Regex::new(p) {
                        if !re.is_match(s) {
                            ok = fail(self, format!("must match the pattern {p}"));
                        }
                    }
                }
            }
            Value::Number(n) => {
                let x = n.as_f64().unwrap_or(f64::NAN);
                let num = |k: &str| schema.get(k).and_then(Value::as_f64);
                if let Some(min) = num("minimum") {
                    if x < min {
                        ok = fail(self, format!("must be at least {}", schema["minimum"]));
                    }
                }
                if let Some(max) = num("maximum") {
                    if x > max {
                        ok = fail(self, format!("must be at most {}", schema["maximum"]));
                    }
                }
                if let Some(min) = num("exclusiveMinimum") {
                    if x <= min {
                        ok = fail(
                            self,
                            format!("must be greater than {}", schema["exclusiveMinimum"]),
                        );
                    }
                }
                if let Some(max) = num("exclusiveMaximum") {
                    if x >= max {
                        ok = fail(
                            self,
                            format!("must be less than {}", schema["exclusiveMaximum"]),
                        );
                    }
                }
                if let Some(m) = num("multipleOf").filter(|m| *m > 0.0) {
                    let q = x / m;
                    if (q - q.round()).abs() > 1e-9 {
                        ok = fail(
                            self,
                            format!("must be a multiple of {}", schema["multipleOf"]),
                        );
                    }
                }
            }
            Value::Array(items) => {
                let n = items.len() as u64;
                if let Some(min) = schema.get("minItems").and_then(Value::as_u64) {
                    if n < min {
                        ok = fail(self, format!("must have at least {min} item(s)"));
                    }
                }
                if let Some(max) = schema.get("maxItems").and_then(Value::as_u64) {
                    if n > max {
                        ok = fail(self, format!("must have at most {max} item(s)"));
                    }
                }
                if let Some(item_schema) = schema.get("items") {
                    for (i, item) in items.iter().enumerate() {
                        ok &= self.check(item, item_schema, &format!("{path}[{i}]"), record);
                    }
                }
            }
            Value::Object(map) => {
                ok &= self.check_object(map, schema, path, record);
            }
            _ => {}
        }
        ok
    }

    fn check_object(
        &mut self,
        map: &Map<String, Value>,
        schema: &'a Value,
        path: &str,
        record: bool,
    ) -> bool {
        let mut ok = true;
        let join = |f: &str| {
            if path.is_empty() {
                f.to_string()
            } else {
                format!("{path}.{f}")
            }
        };
        let props = schema.get("properties").and_then(Value::as_object);
        if let Some(required) = schema.get("required").and_then(Value::as_array) {
            for field in required.iter().filter_map(Value::as_str) {
                if !map.contains_key(field) {
                    if record {
                        self.errors.push(format!("{}: is required", join(field)));
                    }
                    ok = false;
                }
            }
        }
        for (key, v) in map {
            match props.and_then(|p| p.get(key)) {
                Some(prop) => ok &= self.check(v, prop, &join(key), record),
                None if schema.get("additionalProperties") == Some(&Value::Bool(false)) => {
                    if record {
                        self.errors
                            .push(format!("{}: is not a known parameter", join(key)));
                    }
                    ok = false;
                }
                None => {}
            }
        }
        ok
    }
}

fn article(t: &str) -> String {
    match t {
        "integer" | "array" | "object" => format!("an {t}"),
        "null" => "null".into(),
        _ => format!("a {t}"),
    }
}

/// Checks `input` against `schema`; on failure returns one message per problem, each starting
/// with the field's path.
pub fn validate(schema: &Value, input: &Value) -> Result<(), Vec<String>> {
    let Some(map) = input.as_object() else {
        return Err(vec![format!(
            "expected a JSON object of parameters, got {}",
            describe(input)
        )]);
    };
    let mut checker = Checker {
        defs: schema
            .get("$defs")
            .or_else(|| schema.get("definitions"))
            .and_then(Value::as_object),
        errors: vec![],
    };
    checker.check_object(map, schema, "", true);
    if checker.errors.is_empty() {
        Ok(())
    } else {
        Err(checker.errors)
    }
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
