//! Built-in generators that need no provider, no key and no network (names `local-*`). They make
//! real artifacts (PNG, WAV, text) for demos, tests and benchmarks: placeholder art (patterns,
//! tones, word salad), not pictures of the prompt.
//!
//! Each input struct is the one source of truth for its generator's inputs: the published
//! schema is derived from it, and the API's validation deserialises into it exactly as the
//! worker does (unknown top-level fields are ignored, as Pydantic models do; whole numbers
//! may be written `512` or `512.0`, as JSON Schema's `integer` allows).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{
    schema::{input_schema, ImageRef},
    ArtifactKind, GeneratorDef,
};

/// A whole number as JSON Schema's `integer` means it: `512` and `512.0` alike; anything else
/// (a fraction, a string, out of the type's range) is refused.
fn whole<'de, D, T>(de: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: TryFrom<u64>,
{
    use serde::de::Error;
    let n = serde_json::Number::deserialize(de)?;
    let value = match (n.as_u64(), n.as_f64()) {
        (Some(u), _) => Some(u),
        (None, Some(f)) if f.fract() == 0.0 && f >= 0.0 && f <= u64::MAX as f64 => Some(f as u64),
        _ => None,
    };
    value
        .and_then(|u| T::try_from(u).ok())
        .ok_or_else(|| D::Error::custom(format!("expected a whole number in range, got {n}")))
}

fn whole_or_null<'de, D, T>(de: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: TryFrom<u64>,
{
    #[derive(Deserialize)]
    struct Wrapped<T: TryFrom<u64>>(#[serde(deserialize_with = "whole")] T);
    Ok(Option::<Wrapped<T>>::deserialize(de)?.map(|Wrapped(v)| v))
}

/// The typed check of `T`: deserialising exactly as the generator will.
fn typed<T: serde::de::DeserializeOwned>(input: &serde_json::Value) -> Result<(), String> {
    super::run::parse_input::<T>(input.clone())
        .map(|_| ())
        .map_err(|e| match e {
            super::run::GenerateError::Invalid(m) => m,
            other => other.to_string(),
        })
}

fn default_side() -> u32 {
    512
}

/// Pattern drawn by `local-image`.
#[derive(Clone, Copy, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
#[schemars(inline)]
pub enum ImageStyle {
    #[default]
    Gradient,
    Stripes,
    Rings,
    Noise,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[schemars(title = "LocalImageInput")]
pub struct LocalImageInput {
    /// What to draw: the prompt (with the seed) decides colours and layout; the same inputs
    /// always give the same picture.
    #[schemars(length(min = 1, max = 2000))]
    pub prompt: String,
    /// Width in pixels.
    #[serde(default = "default_side", deserialize_with = "whole")]
    #[schemars(range(min = 16, max = 2048))]
    pub width: u32,
    /// Height in pixels.
    #[serde(default = "default_side", deserialize_with = "whole")]
    #[schemars(range(min = 16, max = 2048))]
    pub height: u32,
    /// Pattern to draw.
    #[serde(default)]
    pub style: ImageStyle,
    /// Random seed; empty for one derived from the prompt.
    #[serde(default, deserialize_with = "whole_or_null")]
    #[schemars(range(min = 0))]
    pub seed: Option<u32>,
}

fn default_duration() -> f64 {
    2.0
}

fn default_sample_rate() -> u32 {
    22_050
}

#[derive(Debug, Deserialize, JsonSchema)]
#[schemars(title = "LocalAudioInput")]
pub struct LocalAudioInput {
    /// A melody is derived from the prompt's letters.
    #[schemars(length(min = 1, max = 2000))]
    pub prompt: String,
    /// Length of the clip in seconds.
    #[serde(default = "default_duration")]
    #[schemars(range(min = 0.1, max = 30.0))]
    pub duration: f64,
    /// Samples per second.
    #[serde(default = "default_sample_rate", deserialize_with = "whole")]
    #[schemars(range(min = 8000, max = 48000))]
    pub sample_rate: u32,
}

fn default_words() -> u32 {
    60
}

#[derive(Debug, Deserialize, JsonSchema)]
#[schemars(title = "LocalTextInput")]
pub struct LocalTextInput {
    /// The text starts from the prompt and continues with words drawn from it.
    #[schemars(length(min = 1, max = 2000))]
    pub prompt: String,
    /// Number of words to write.
    #[serde(default = "default_words", deserialize_with = "whole")]
    #[schemars(range(min = 1, max = 2000))]
    pub max_words: u32,
}

/// Operation applied by `local-image-filter`.
#[derive(Clone, Copy, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
#[schemars(inline)]
pub enum ImageFilter {
    #[default]
    Grayscale,
    Invert,
    Sepia,
    Blur,
    Pixelate,
}

fn default_scale() -> f64 {
    1.0
}

#[derive(Debug, Deserialize, JsonSchema)]
#[schemars(title = "LocalImageFilterInput")]
pub struct LocalImageFilterInput {
    /// The image to transform (a completed image generation).
    pub image: ImageRef,
    /// What to do to it.
    #[serde(default)]
    pub filter: ImageFilter,
    /// Resize factor applied after the filter.
    #[serde(default = "default_scale")]
    #[schemars(range(min = 0.1, max = 4.0))]
    pub scale: f64,
}

fn default_delay() -> u64 {
    0
}

#[derive(Debug, Deserialize, JsonSchema)]
#[schemars(title = "LocalEchoInput")]
pub struct LocalEchoInput {
    /// Text returned as the artifact.
    #[schemars(length(min = 1, max = 10000))]
    pub prompt: String,
    /// Wait this long (reporting progress in ten steps) before answering.
    #[serde(default = "default_delay", deserialize_with = "whole")]
    #[schemars(range(min = 0, max = 600000))]
    pub delay_ms: u64,
}

/// The built-in generators, in their default listing order.
pub fn builtin() -> Vec<GeneratorDef> {
    vec![
        GeneratorDef {
            id: "local-image",
            description: "Draws a PNG image from the prompt and seed (offline, no API key).",
            artifact_type: ArtifactKind::Image,
            input_schema: input_schema::<LocalImageInput>,
            check: Some(typed::<LocalImageInput>),
            strict: false,
        },
        GeneratorDef {
            id: "local-image-filter",
            description: "Applies a filter (grayscale, invert, sepia, blur, pixelate) and a resize to another image generation (offline).",
            artifact_type: ArtifactKind::Image,
            input_schema: input_schema::<LocalImageFilterInput>,
            check: Some(typed::<LocalImageFilterInput>),
            strict: false,
        },
        GeneratorDef {
            id: "local-audio",
            description: "Synthesises a WAV melody from the prompt (offline, no API key).",
            artifact_type: ArtifactKind::Audio,
            input_schema: input_schema::<LocalAudioInput>,
            check: Some(typed::<LocalAudioInput>),
            strict: false,
        },
        GeneratorDef {
            id: "local-text",
            description: "Writes text that continues the prompt (offline, no API key).",
            artifact_type: ArtifactKind::Text,
            input_schema: input_schema::<LocalTextInput>,
            check: Some(typed::<LocalTextInput>),
            strict: false,
        },
        GeneratorDef {
            id: "local-echo",
            description: "Returns the prompt as a text artifact after an optional delay (offline; for checks and benchmarks).",
            artifact_type: ArtifactKind::Text,
            input_schema: input_schema::<LocalEchoInput>,
            check: Some(typed::<LocalEchoInput>),
            strict: false,
        },
    ]
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn every_builtin_schema_is_an_object_schema_with_a_prompt_or_artifact() {
        for def in builtin() {
            let s = (def.input_schema)();
            assert_eq!(s["type"], "object", "{}", def.id);
            assert!(s.get("$schema").is_none());
            assert!(!s.to_string().contains("uint32"), "{}", def.id);
        }
    }

    #[test]
    fn enum_defaults_are_published() {
        let s = input_schema::<LocalImageInput>();
        assert_eq!(s["properties"]["style"]["default"], json!("gradient"));
        assert_eq!(s["properties"]["style"]["enum"][0], json!("gradient"));
    }
}
