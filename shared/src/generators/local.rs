//! Built-in generators that need no provider, no key and no network (names `local-*`). They make
//! real artifacts (PNG, WAV, text) for demos, tests and benchmarks.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{
    schema::{input_schema, ImageRef},
    ArtifactKind, GeneratorDef,
};

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
#[serde(deny_unknown_fields)]
#[schemars(title = "LocalImageInput")]
pub struct LocalImageInput {
    /// What to draw: the prompt (with the seed) decides colours and layout; the same inputs
    /// always give the same picture.
    #[schemars(length(min = 1, max = 2000))]
    pub prompt: String,
    /// Width in pixels.
    #[serde(default = "default_side")]
    #[schemars(range(min = 16, max = 2048))]
    pub width: u32,
    /// Height in pixels.
    #[serde(default = "default_side")]
    #[schemars(range(min = 16, max = 2048))]
    pub height: u32,
    /// Pattern to draw.
    #[serde(default)]
    pub style: ImageStyle,
    /// Random seed; empty for one derived from the prompt.
    #[serde(default)]
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
#[serde(deny_unknown_fields)]
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
    #[serde(default = "default_sample_rate")]
    #[schemars(range(min = 8000, max = 48000))]
    pub sample_rate: u32,
}

fn default_words() -> u32 {
    60
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "LocalTextInput")]
pub struct LocalTextInput {
    /// The text starts from the prompt and continues with words drawn from it.
    #[schemars(length(min = 1, max = 2000))]
    pub prompt: String,
    /// Number of words to write.
    #[serde(default = "default_words")]
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
#[serde(deny_unknown_fields)]
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
#[serde(deny_unknown_fields)]
#[schemars(title = "LocalEchoInput")]
pub struct LocalEchoInput {
    /// Text returned as the artifact.
    #[schemars(length(min = 1, max = 10000))]
    pub prompt: String,
    /// Wait this long (reporting progress in ten steps) before answering.
    #[serde(default = "default_delay")]
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
            exec: || std::sync::Arc::new(super::exec::LocalImage),
        },
        GeneratorDef {
            id: "local-image-filter",
            description: "Applies a filter (grayscale, invert, sepia, blur, pixelate) and a resize to another image generation (offline).",
            artifact_type: ArtifactKind::Image,
            input_schema: input_schema::<LocalImageFilterInput>,
            exec: || std::sync::Arc::new(super::exec::LocalImageFilterExec),
        },
        GeneratorDef {
            id: "local-audio",
            description: "Synthesises a WAV melody from the prompt (offline, no API key).",
            artifact_type: ArtifactKind::Audio,
            input_schema: input_schema::<LocalAudioInput>,
            exec: || std::sync::Arc::new(super::exec::LocalAudio),
        },
        GeneratorDef {
            id: "local-text",
            description: "Writes text that continues the prompt (offline, no API key).",
            artifact_type: ArtifactKind::Text,
            input_schema: input_schema::<LocalTextInput>,
            exec: || std::sync::Arc::new(super::exec::LocalText),
        },
        GeneratorDef {
            id: "local-echo",
            description: "Returns the prompt as a text artifact after an optional delay (offline; for checks and benchmarks).",
            artifact_type: ArtifactKind::Text,
            input_schema: input_schema::<LocalEchoInput>,
            exec: || std::sync::Arc::new(super::exec::LocalEcho),
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
