//! Input schemas in the shape the Boards UI reads (Pydantic v2's `model_json_schema()`, contract
//! §1.4): derived from Rust input structs with schemars, then normalised — no `$schema`, a
//! `title` on every property, `anyOf [.., {"type":"null"}]` for optional values, and artifact
//! inputs as `{"$ref": "#/$defs/ImageArtifact"}` (or Video/Audio/Text).

use std::borrow::Cow;

use schemars::{generate::SchemaSettings, json_schema, JsonSchema, Schema, SchemaGenerator};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};
use uuid::Uuid;

use super::ArtifactKind;

/// The JSON Schema of `T` in the Pydantic-compatible shape.
pub fn input_schema<T: JsonSchema>() -> Value {
    let generator = SchemaSettings::draft2020_12().into_generator();
    let schema = generator.into_root_schema_for::<T>();
    let mut value = schema.to_value();
    if let Value::Object(root) = &mut value {
        root.remove("$schema");
    }
    normalise(&mut value);
    value
}

/// `image_sources` → `Image Sources` (Pydantic's generated titles).
pub fn title_of(field: &str) -> String {
    field
        .split('_')
        .filter(|w| !w.is_empty())
        .map(|w| {
            let mut c = w.chars();
            c.next()
                .map(|f| f.to_uppercase().collect::<String>() + c.as_str())
                .unwrap_or_default()
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn normalise(value: &mut Value) {
    let Value::Object(obj) = value else {
        if let Value::Array(items) = value {
            items.iter_mut().for_each(normalise);
        }
        return;
    };
    // `"type": ["integer", "null"]` → `anyOf: [{"type": "integer", ...}, {"type": "null"}]`.
    if let Some(Value::Array(types)) = obj.get("type") {
        if types.len() == 2 && types.iter().any(|t| t == "null") {
            let non_null = types
                .iter()
                .find(|t| *t != "null")
                .cloned()
                .unwrap_or(Value::Null);
            let mut inner = Map::new();
            inner.insert("type".into(), non_null);
            for key in [
                "minimum",
                "maximum",
                "multipleOf",
                "minLength",
                "maxLength",
                "pattern",
                "enum",
                "items",
                "format",
            ] {
                if let Some(v) = obj.remove(key) {
                    inner.insert(key.into(), v);
                }
            }
            obj.remove("type");
            obj.insert(
                "anyOf".into(),
                Value::Array(vec![
                    Value::Object(inner),
                    serde_json::json!({"type": "null"}),
                ]),
            );
        }
    }
    // schemars adds `"format": "uint32"` and the like; Pydantic does not. The range a format
    // stands for becomes explicit bounds, so that validation refuses what the input struct
    // cannot hold (a `u32` seed of 4294967296).
    let range = match obj.get("format").and_then(Value::as_str) {
        Some("uint8") => Some((0.0, f64::from(u8::MAX))),
        Some("uint16") => Some((0.0, f64::from(u16::MAX))),
        Some("uint32" | "uint") => Some((0.0, f64::from(u32::MAX))),
        Some("uint64") => Some((0.0, u64::MAX as f64)),
        Some("int32") => Some((f64::from(i32::MIN), f64::from(i32::MAX))),
        Some("int64") => Some((i64::MIN as f64, i64::MAX as f64)),
        Some("double" | "float") => None,
        _ => return normalise_children(obj),
    };
    obj.remove("format");
    if let Some((min, max)) = range {
        if !obj.contains_key("minimum") {
            obj.insert("minimum".into(), number(min));
        }
        if !obj.contains_key("maximum") {
            obj.insert("maximum".into(), number(max));
        }
    }
    normalise_children(obj);
}

/// `4294967295.0` → `4294967295` (bounds print as the integers they are).
fn number(x: f64) -> Value {
    if x.fract() == 0.0 && x >= 0.0 && x <= u64::MAX as f64 {
        Value::from(x as u64)
    } else if x.fract() == 0.0 && x >= i64::MIN as f64 && x < 0.0 {
        Value::from(x as i64)
    } else {
        Value::from(x)
    }
}

/// Adds a generated title to every property of `schema` that has none (nested objects too).
pub fn add_titles(schema: &mut Value) {
    let Value::Object(obj) = schema else { return };
    if let Some(Value::Object(props)) = obj.get_mut("properties") {
        for (name, prop) in props.iter_mut() {
            if let Value::Object(p) = prop {
                if !p.contains_key("title") && !p.contains_key("$ref") {
                    p.insert("title".into(), Value::String(title_of(name)));
                }
            }
            add_titles(prop);
        }
    }
}

fn normalise_children(obj: &mut Map<String, Value>) {
    if let Some(Value::Object(props)) = obj.get_mut("properties") {
        for (name, prop) in props.iter_mut() {
            if let Value::Object(p) = prop {
                if !p.contains_key("title") && !p.contains_key("$ref") {
                    p.insert("title".into(), Value::String(title_of(name)));
                }
            }
        }
    }
    for v in obj.values_mut() {
        normalise(v);
    }
}

/// The artifact document a generation produces (`output_metadata`), as the `$defs` entries.
#[derive(JsonSchema)]
#[allow(dead_code)] // Schema only: the fields document the shape.
struct ArtifactBase {
    generation_id: String,
    storage_url: String,
    format: String,
}

macro_rules! artifact_def {
    ($def:ident, $name:literal, { $($field:ident : $ty:ty),* $(,)? }) => {
        #[derive(JsonSchema)]
        #[schemars(rename = $name)]
        #[allow(dead_code)] // Schema only.
        struct $def {
            generation_id: String,
            storage_url: String,
            format: String,
            $($field: $ty,)*
        }
    };
}

artifact_def!(ImageArtifactDef, "ImageArtifact", { width: Option<u32>, height: Option<u32> });
artifact_def!(VideoArtifactDef, "VideoArtifact", {
    duration: Option<f64>, width: Option<u32>, height: Option<u32>, fps: Option<f64>
});
artifact_def!(AudioArtifactDef, "AudioArtifact", {
    duration: Option<f64>, sample_rate: Option<u32>, channels: Option<u32>
});
artifact_def!(TextArtifactDef, "TextArtifact", { content: String });

/// An input that names another generation by id; its schema is a `$ref` to the artifact type.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct ArtifactRef<const KIND: u8>(pub Uuid);

pub const IMAGE: u8 = 0;
pub const VIDEO: u8 = 1;
pub const AUDIO: u8 = 2;
pub const TEXT: u8 = 3;

pub type ImageRef = ArtifactRef<IMAGE>;
pub type VideoRef = ArtifactRef<VIDEO>;
pub type AudioRef = ArtifactRef<AUDIO>;
pub type TextRef = ArtifactRef<TEXT>;

impl<const KIND: u8> ArtifactRef<KIND> {
    pub fn kind() -> ArtifactKind {
        match KIND {
            IMAGE => ArtifactKind::Image,
            VIDEO => ArtifactKind::Video,
            AUDIO => ArtifactKind::Audio,
            _ => ArtifactKind::Text,
        }
    }
}

impl<'de, const KIND: u8> Deserialize<'de> for ArtifactRef<KIND> {
    fn deserialize<D: Deserializer<'de>>(de: D) -> Result<Self, D::Error> {
        let s = String::deserialize(de)?;
        Uuid::parse_str(&s)
            .map(Self)
            .map_err(|_| serde::de::Error::custom("expected a generation id (UUID)"))
    }
}

impl<const KIND: u8> JsonSchema for ArtifactRef<KIND> {
    fn schema_name() -> Cow<'static, str> {
        Cow::Borrowed(match KIND {
            IMAGE => "ImageArtifact",
            VIDEO => "VideoArtifact",
            AUDIO => "AudioArtifact",
            _ => "TextArtifact",
        })
    }

    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        match KIND {
            IMAGE => ImageArtifactDef::json_schema(generator),
            VIDEO => VideoArtifactDef::json_schema(generator),
            AUDIO => AudioArtifactDef::json_schema(generator),
            _ => TextArtifactDef::json_schema(generator),
        }
    }
}

/// A schema with no properties (for generators without inputs).
pub fn empty_object() -> Schema {
    json_schema!({"type": "object", "properties": {}})
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[derive(JsonSchema, Deserialize)]
    #[schemars(title = "DemoInput")]
    #[allow(dead_code)]
    struct Demo {
        /// What to draw.
        prompt: String,
        #[schemars(range(min = 1, max = 10))]
        #[serde(default = "three")]
        count: u32,
        seed: Option<u32>,
        image: ImageRef,
        images: Vec<AudioRef>,
    }

    fn three() -> u32 {
        3
    }

    #[test]
    fn schemas_follow_the_pydantic_conventions() {
        let s = input_schema::<Demo>();
        assert!(s.get("$schema").is_none());
        assert_eq!(s["type"], "object");
        assert_eq!(s["title"], "DemoInput");
        assert_eq!(s["properties"]["prompt"]["title"], "Prompt");
        assert_eq!(s["properties"]["prompt"]["description"], "What to draw.");
        assert_eq!(s["properties"]["count"]["minimum"], 1);
        assert_eq!(s["properties"]["count"]["maximum"], 10);
        assert_eq!(s["properties"]["count"]["default"], 3);
        assert_eq!(s["properties"]["seed"]["anyOf"][1], json!({"type": "null"}));
        assert_eq!(s["properties"]["image"]["$ref"], "#/$defs/ImageArtifact");
        assert_eq!(
            s["properties"]["images"]["items"]["$ref"],
            "#/$defs/AudioArtifact"
        );
        assert!(s["$defs"]["ImageArtifact"]["properties"]["width"].is_object());
        let required: Vec<&str> = s["required"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        assert!(required.contains(&"prompt") && required.contains(&"image"));
        assert!(!required.contains(&"count"));
    }
}
