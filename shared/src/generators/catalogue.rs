//! The catalogue: every provider model as data (`shared/catalogue/*.yaml`, described in that
//! folder's README). An entry says what the model is called, what it makes, which provider runs
//! it, its input form, how inputs become the upstream request and where the outputs are in the
//! answer. The API reads it to list generators and validate inputs; the worker's provider
//! adapters read it to build requests. Nothing here talks to a provider.

use std::{collections::HashMap, fmt, sync::Arc};

use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::ArtifactKind;

/// The upstream services generators run on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Provider {
    Fal,
    Replicate,
    #[serde(rename = "openai")]
    OpenAi,
    Kie,
}

impl Provider {
    pub const ALL: [Provider; 4] = [Self::Fal, Self::Replicate, Self::OpenAi, Self::Kie];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Fal => "fal",
            Self::Replicate => "replicate",
            Self::OpenAi => "openai",
            Self::Kie => "kie",
        }
    }

    /// How users read the provider's name (error messages start with it).
    pub fn label(self) -> &'static str {
        match self {
            Self::Fal => "fal.ai",
            Self::Replicate => "Replicate",
            Self::OpenAi => "OpenAI",
            Self::Kie => "Kie.ai",
        }
    }

    /// The environment variable holding the provider's API key (names kept from the original).
    pub fn key_env(self) -> &'static str {
        match self {
            Self::Fal => "FAL_KEY",
            Self::Replicate => "REPLICATE_API_TOKEN",
            Self::OpenAi => "OPENAI_API_KEY",
            Self::Kie => "KIE_API_KEY",
        }
    }
}

impl fmt::Display for Provider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}

/// Estimated cost of one run, in USD.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Cost {
    pub usd: f64,
    /// The input whose (numeric) value multiplies `usd` (`num_images`, `duration`).
    #[serde(default)]
    pub per: Option<String>,
}

/// How validated inputs become the upstream request body.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RequestMap {
    /// Input name → upstream name.
    #[serde(default)]
    pub rename: HashMap<String, String>,
    /// Inputs not sent.
    #[serde(default)]
    pub omit: Vec<String>,
    /// Constants added to the body (they win over inputs).
    #[serde(default)]
    pub set: Map<String, Value>,
    /// Per input, a translation of values (`{"5": "5s"}`); values not listed pass unchanged.
    #[serde(default)]
    pub values: HashMap<String, Map<String, Value>>,
    /// List slots of which only the first URL is sent, as a string.
    #[serde(default)]
    pub first: Vec<String>,
    /// Input → model used instead of `model` when that input is given (not null, not empty):
    /// Kie's Qwen switches to its edit model when images are given.
    #[serde(default)]
    pub model_when: HashMap<String, String>,
    /// Inputs not sent when empty (`""`, `[]`, `{}`), as the originals' `if inputs.x:`.
    #[serde(default)]
    pub skip_empty: Vec<String>,
    /// Input → another input: not sent when that other one is given (pixverse sends `text`
    /// only without `audio_url`).
    #[serde(default)]
    pub unless: HashMap<String, String>,
    /// Object inputs (a `$ref` to one of `defs`) sent with their nested defaults filled in
    /// when left out, as the originals' default factories do.
    #[serde(default)]
    pub fill_defaults: Vec<String>,
}

/// One path or several tried in order (the first that reaches something wins).
#[derive(Clone, Debug, Deserialize)]
#[serde(untagged)]
pub enum Paths {
    One(String),
    Many(Vec<String>),
}

impl Paths {
    pub fn all(&self) -> &[String] {
        match self {
            Self::One(p) => std::slice::from_ref(p),
            Self::Many(v) => v,
        }
    }
}

/// Where the outputs are in the provider's answer.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutputSpec {
    /// Path to the output URL(s): `images[*].url`, `video.url`, `output`; or a list of
    /// paths tried in order.
    #[serde(default)]
    pub urls: Option<Paths>,
    /// Path to the text of a text model's answer.
    #[serde(default)]
    pub text: Option<String>,
    /// The input naming the output file format, if any (else it is read from the bytes).
    #[serde(default)]
    pub format: Option<String>,
}

/// One model.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Entry {
    pub name: String,
    pub artifact_type: ArtifactKind,
    pub provider: Provider,
    /// fal: endpoint id; Replicate: `owner/name`; OpenAI: model name; Kie: model id.
    pub model: String,
    /// Replicate: a pinned version id.
    #[serde(default)]
    pub version: Option<String>,
    /// Kie: `market`, `veo`, `aleph`, `suno`, `suno-sounds`; OpenAI: `images`, `edits`,
    /// `transcriptions`.
    #[serde(default)]
    pub api: Option<String>,
    pub description: String,
    /// Registered without `generators.yaml` (the original's baseline configuration).
    #[serde(default = "yes")]
    pub baseline: bool,
    #[serde(default)]
    pub timeout_seconds: Option<u64>,
    #[serde(default)]
    pub cost: Option<Cost>,
    /// The input form, in order: JSON Schema per field, artifact slots in shorthand.
    pub inputs: Map<String, Value>,
    #[serde(default)]
    pub required: Vec<String>,
    /// Other `$defs` the inputs refer to.
    #[serde(default)]
    pub defs: Map<String, Value>,
    #[serde(default)]
    pub request: RequestMap,
    #[serde(default)]
    pub output: OutputSpec,
}

fn yes() -> bool {
    true
}

impl<'de> Deserialize<'de> for ArtifactKind {
    fn deserialize<D: serde::Deserializer<'de>>(de: D) -> Result<Self, D::Error> {
        let s = String::deserialize(de)?;
        ArtifactKind::parse(&s).ok_or_else(|| {
            serde::de::Error::custom(format!(
                "unknown artifact type `{s}` (image, video, audio, text)"
            ))
        })
    }
}

/// An artifact slot in the shorthand of the catalogue files.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SlotShorthand {
    artifact: ArtifactKind,
    #[serde(default)]
    list: bool,
    #[serde(default)]
    optional: bool,
    #[serde(default, rename = "minItems")]
    min_items: Option<u64>,
    #[serde(default, rename = "maxItems")]
    max_items: Option<u64>,
    #[serde(default)]
    description: Option<String>,
}

fn artifact_def(kind: ArtifactKind) -> (&'static str, Value) {
    let opt = |t: &str| json!({"anyOf": [{"type": t}, {"type": "null"}], "default": null});
    let mut props = Map::new();
    for f in ["generation_id", "storage_url", "format"] {
        props.insert(f.into(), json!({"type": "string"}));
    }
    let (name, extra): (&str, Vec<(&str, Value)>) = match kind {
        ArtifactKind::Image => (
            "ImageArtifact",
            vec![("width", opt("integer")), ("height", opt("integer"))],
        ),
        ArtifactKind::Video => (
            "VideoArtifact",
            vec![
                ("duration", opt("number")),
                ("width", opt("integer")),
                ("height", opt("integer")),
                ("fps", opt("number")),
            ],
        ),
        ArtifactKind::Audio => (
            "AudioArtifact",
            vec![
                ("duration", opt("number")),
                ("sample_rate", opt("integer")),
                ("channels", opt("integer")),
            ],
        ),
        ArtifactKind::Text => ("TextArtifact", vec![("content", json!({"type": "string"}))]),
    };
    for (k, v) in extra {
        props.insert(k.into(), v);
    }
    let mut required = vec!["generation_id", "storage_url", "format"];
    if kind == ArtifactKind::Text {
        required.push("content");
    }
    let mut def = json!({"type": "object", "properties": props, "required": required});
    super::schema::add_titles(&mut def);
    def["title"] = json!(name);
    (name, def)
}

/// `fal-nano-banana-pro` → `FalNanoBananaProInput` (the schema's title).
fn title_of_model(name: &str) -> String {
    let mut out: String = name
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(|w| {
            let mut c = w.chars();
            c.next()
                .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
                .unwrap_or_default()
        })
        .collect();
    out.push_str("Input");
    out
}

impl Entry {
    /// Checks what serde cannot: slots, required names and request keys refer to inputs, the
    /// provider's own fields are set. Returns the problems, naming the entry.
    pub fn check(&self) -> Result<(), String> {
        let fail = |m: String| Err(format!("catalogue entry `{}`: {m}", self.name));
        for (field, spec) in &self.inputs {
            if spec.get("artifact").is_some() {
                if let Err(e) = SlotShorthand::deserialize(spec) {
                    return fail(format!("input `{field}`: {e}"));
                }
            } else if !spec.is_object() {
                return fail(format!("input `{field}` is not a JSON Schema object"));
            }
        }
        let known = |k: &str| self.inputs.contains_key(k);
        for r in &self.required {
            if !known(r) {
                return fail(format!("required `{r}` is not an input"));
            }
        }
        let request_keys = self
            .request
            .rename
            .keys()
            .chain(self.request.omit.iter())
            .chain(self.request.values.keys())
            .chain(self.request.first.iter())
            .chain(self.request.model_when.keys())
            .chain(self.request.skip_empty.iter())
            .chain(self.request.unless.keys())
            .chain(self.request.unless.values())
            .chain(self.request.fill_defaults.iter());
        for k in request_keys {
            if !known(k) {
                return fail(format!("request refers to `{k}`, which is not an input"));
            }
        }
        if let Some(f) = &self.output.format {
            if !known(f) {
                return fail(format!("output.format `{f}` is not an input"));
            }
        }
        if let Some(c) = &self.cost {
            if let Some(per) = &c.per {
                if !known(per) {
                    return fail(format!("cost.per `{per}` is not an input"));
                }
            }
        }
        match (self.output.urls.is_some(), self.output.text.is_some()) {
            (false, false) => return fail("output needs `urls` or `text`".into()),
            (true, true) => return fail("output takes `urls` or `text`, not both".into()),
            (_, true) if self.artifact_type != ArtifactKind::Text => {
                return fail("only text models read `output.text`".into())
            }
            _ => {}
        }
        let api = self.api.as_deref();
        let apis: &[&str] = match self.provider {
            Provider::Kie => &["market", "veo", "aleph", "suno", "suno-sounds"],
            Provider::OpenAi => &["images", "edits", "transcriptions"],
            Provider::Fal | Provider::Replicate => &[],
        };
        match api {
            None if !apis.is_empty() => {
                return fail(format!("`api` is required: one of {}", apis.join(", ")))
            }
            Some(a) if !apis.contains(&a) => {
                return fail(if apis.is_empty() {
                    format!("`api` means nothing for {}", self.provider)
                } else {
                    format!("unknown api `{a}`: one of {}", apis.join(", "))
                })
            }
            _ => {}
        }
        if self.version.is_some() && self.provider != Provider::Replicate {
            return fail("`version` is for Replicate models".into());
        }
        Ok(())
    }

    /// The input JSON Schema as the UI reads it (Pydantic's `model_json_schema()` shape).
    pub fn input_schema(&self) -> Value {
        let mut props = Map::new();
        let mut defs = Map::new();
        for (field, spec) in &self.inputs {
            let mut prop = match SlotShorthand::deserialize(spec) {
                Ok(slot) if spec.get("artifact").is_some() => {
                    let (name, def) = artifact_def(slot.artifact);
                    defs.insert(name.to_string(), def);
                    let reference = json!({"$ref": format!("#/$defs/{name}")});
                    let mut s = if slot.list {
                        let mut list = json!({"type": "array", "items": reference});
                        if let Some(n) = slot.min_items {
                            list["minItems"] = json!(n);
                        }
                        if let Some(n) = slot.max_items {
                            list["maxItems"] = json!(n);
                        }
                        list
                    } else {
                        reference
                    };
                    if slot.optional {
                        s = json!({"anyOf": [s, {"type": "null"}], "default": null});
                    }
                    if let Some(d) = slot.description {
                        s["description"] = json!(d);
                    }
                    s
                }
                _ => spec.clone(),
            };
            if let Value::Object(p) = &mut prop {
                if !p.contains_key("title") && !p.contains_key("$ref") {
                    p.insert("title".into(), json!(super::schema::title_of(field)));
                }
            }
            props.insert(field.clone(), prop);
        }
        for (name, def) in &self.defs {
            let mut def = def.clone();
            super::schema::add_titles(&mut def);
            if let Value::Object(d) = &mut def {
                d.entry("title").or_insert_with(|| json!(name));
            }
            defs.insert(name.clone(), def);
        }
        let mut schema = json!({
            "type": "object",
            "title": title_of_model(&self.name),
            "properties": props,
        });
        if !self.required.is_empty() {
            schema["required"] = json!(self.required);
        }
        if !defs.is_empty() {
            schema["$defs"] = Value::Object(defs);
        }
        schema
    }

    /// `input` with every missing field that has a default filled in (as Pydantic does before
    /// the original's generators read their inputs).
    pub fn with_defaults(&self, input: &Value) -> Map<String, Value> {
        let mut out = input.as_object().cloned().unwrap_or_default();
        for (field, spec) in &self.inputs {
            if let Some(d) = spec.get("default") {
                out.entry(field.clone()).or_insert_with(|| d.clone());
            }
        }
        out
    }

    /// The upstream body: every input under its (renamed) name, artifact slots replaced by
    /// the URLs in `urls` (a string for a single slot, a list for a list slot), nulls and
    /// omitted inputs dropped, values translated, constants set last.
    pub fn request_body(
        &self,
        input: &Map<String, Value>,
        urls: &HashMap<String, Vec<String>>,
    ) -> Map<String, Value> {
        let mut body = Map::new();
        let mut input = input.clone();
        for field in &self.request.fill_defaults {
            if input.get(field).is_none_or(Value::is_null) {
                if let Some(d) = self.nested_defaults(field) {
                    input.insert(field.clone(), d);
                }
            }
        }
        for (field, value) in &input {
            if self.request.omit.contains(field) || !self.inputs.contains_key(field) {
                continue;
            }
            if let Some(other) = self.request.unless.get(field) {
                let given = input.get(other).is_some_and(|v| !empty(v)) || urls.contains_key(other);
                if given {
                    continue;
                }
            }
            let value = match self.slot(field) {
                Some(slot) => match urls.get(field) {
                    Some(list) if slot.list && !self.request.first.contains(field) => json!(list),
                    Some(list) => match list.first() {
                        Some(u) => json!(u),
                        None => continue,
                    },
                    None => continue,
                },
                None => {
                    let translated = value.as_str().and_then(|s| {
                        self.request
                            .values
                            .get(field)
                            .and_then(|t| t.get(s))
                            .cloned()
                    });
                    without_nulls(translated.unwrap_or_else(|| value.clone()))
                }
            };
            if value.is_null() || (self.request.skip_empty.contains(field) && empty(&value)) {
                continue;
            }
            let name = self.request.rename.get(field).unwrap_or(field);
            body.insert(name.clone(), value);
        }
        for (k, v) in &self.request.set {
            body.insert(k.clone(), v.clone());
        }
        body
    }

    /// The defaults of the object `$def` an input refers to, one level deep.
    fn nested_defaults(&self, field: &str) -> Option<Value> {
        let reference = self.inputs.get(field).and_then(|s| {
            s.get("$ref").or_else(|| {
                s.get("anyOf")
                    .and_then(Value::as_array)
                    .and_then(|b| b.iter().find_map(|x| x.get("$ref")))
            })
        })?;
        let name = reference.as_str()?.rsplit('/').next()?;
        let props = self.defs.get(name)?.get("properties")?.as_object()?;
        let defaults: Map<String, Value> = props
            .iter()
            .filter_map(|(k, p)| p.get("default").map(|d| (k.clone(), d.clone())))
            .filter(|(_, d)| !d.is_null())
            .collect();
        Some(Value::Object(defaults))
    }

    /// The upstream model for `input`: `model`, unless a `model_when` input is given.
    pub fn model_for(&self, input: &Map<String, Value>) -> &str {
        let given = |v: &Value| match v {
            Value::Null => false,
            Value::Array(a) => !a.is_empty(),
            Value::String(s) => !s.is_empty(),
            _ => true,
        };
        self.request
            .model_when
            .iter()
            .find(|(field, _)| input.get(*field).is_some_and(given))
            .map_or(self.model.as_str(), |(_, m)| m.as_str())
    }

    /// The output URLs of an answer: the first of the output paths that reaches any.
    pub fn output_urls(&self, doc: &Value) -> Vec<String> {
        self.output
            .urls
            .iter()
            .flat_map(|p| p.all())
            .map(|p| output_urls(p, doc))
            .find(|v| !v.is_empty())
            .unwrap_or_default()
    }

    fn slot(&self, field: &str) -> Option<SlotShorthand> {
        let spec = self.inputs.get(field)?;
        spec.get("artifact")?;
        SlotShorthand::deserialize(spec).ok()
    }

    /// Estimated cost in USD of a run with `input` (defaults filled in).
    pub fn estimate_cost(&self, input: &Map<String, Value>) -> Option<f64> {
        let cost = self.cost.as_ref()?;
        let units = match &cost.per {
            Some(field) => input.get(field).and_then(number)?,
            None => 1.0,
        };
        Some(cost.usd * units)
    }

    /// The file format an input names for the output (`output_format: jpeg` → `jpeg`).
    pub fn output_format(&self, input: &Map<String, Value>) -> Option<String> {
        let field = self.output.format.as_ref()?;
        input.get(field)?.as_str().map(str::to_string)
    }
}

/// `""`, `[]`, `{}`.
fn empty(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
        _ => false,
    }
}

/// Objects without their null members, at every depth (Pydantic's `exclude_none`).
fn without_nulls(v: Value) -> Value {
    match v {
        Value::Object(o) => Value::Object(
            o.into_iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k, without_nulls(v)))
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.into_iter().map(without_nulls).collect()),
        other => other,
    }
}

/// A number, or a string holding one (`duration: "5"`).
fn number(v: &Value) -> Option<f64> {
    v.as_f64().or_else(|| {
        v.as_str()
            .and_then(|s| s.trim_end_matches('s').parse::<f64>().ok())
    })
}

/// The values `path` reaches in `doc`: dot-separated keys, `[*]` for every element, `[N]` for
/// one; an empty path is the document itself.
pub fn select<'a>(path: &str, doc: &'a Value) -> Vec<&'a Value> {
    let mut current = vec![doc];
    for part in path.split('.').filter(|p| !p.is_empty()) {
        let (key, indexes) = match part.find('[') {
            Some(i) => (&part[..i], &part[i..]),
            None => (part, ""),
        };
        if !key.is_empty() {
            current = current.into_iter().filter_map(|v| v.get(key)).collect();
        }
        for index in indexes
            .split(']')
            .filter_map(|s| s.strip_prefix('['))
            .filter(|s| !s.is_empty())
        {
            current = if index == "*" {
                current
                    .into_iter()
                    .flat_map(|v| v.as_array().into_iter().flatten())
                    .collect()
            } else {
                let i: usize = index.parse().unwrap_or(usize::MAX);
                current.into_iter().filter_map(|v| v.get(i)).collect()
            };
        }
    }
    current.retain(|v| !v.is_null());
    current
}

/// The output URLs of an answer: strings (URLs or `data:` URIs) or objects with a `url`.
pub fn output_urls(path: &str, doc: &Value) -> Vec<String> {
    select(path, doc)
        .into_iter()
        .filter_map(|v| match v {
            Value::String(s) => Some(s.clone()),
            Value::Object(o) => o.get("url").and_then(Value::as_str).map(str::to_string),
            _ => None,
        })
        .filter(|s| !s.is_empty())
        .collect()
}

/// The catalogue files compiled in, in listing order.
const FILES: &[(&str, &str)] = &[
    (
        "fal-image.yaml",
        include_str!("../../catalogue/fal-image.yaml"),
    ),
    (
        "fal-video.yaml",
        include_str!("../../catalogue/fal-video.yaml"),
    ),
    (
        "fal-audio.yaml",
        include_str!("../../catalogue/fal-audio.yaml"),
    ),
    ("kie.yaml", include_str!("../../catalogue/kie.yaml")),
    ("openai.yaml", include_str!("../../catalogue/openai.yaml")),
    (
        "replicate.yaml",
        include_str!("../../catalogue/replicate.yaml"),
    ),
];

const CLASSES: &str = include_str!("../../catalogue/classes.yaml");

/// Parses catalogue entries (a YAML list) and checks each.
pub fn parse(text: &str) -> Result<Vec<Entry>, String> {
    if text.trim().is_empty() {
        return Ok(vec![]);
    }
    let entries: Vec<Entry> = serde_yaml::from_str(text).map_err(|e| e.to_string())?;
    for e in &entries {
        e.check()?;
    }
    Ok(entries)
}

/// Every model of the compiled-in catalogue, in listing order.
pub fn builtin() -> &'static [Arc<Entry>] {
    static ENTRIES: std::sync::OnceLock<Vec<Arc<Entry>>> = std::sync::OnceLock::new();
    ENTRIES.get_or_init(|| {
        let mut all = vec![];
        for (file, text) in FILES {
            // The files are part of the build and checked by its tests: a broken one is a
            // programming error, reported with the file's name.
            match parse(text) {
                Ok(entries) => all.extend(entries.into_iter().map(Arc::new)),
                Err(e) => panic!("catalogue/{file}: {e}"),
            }
        }
        all
    })
}

/// The original's Python class paths (`generators.yaml`'s `class:`) → generator names.
pub fn classes() -> &'static HashMap<String, String> {
    static MAP: std::sync::OnceLock<HashMap<String, String>> = std::sync::OnceLock::new();
    MAP.get_or_init(|| serde_yaml::from_str(CLASSES).unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry() -> Entry {
        let text = r#"
- name: fal-test-edit
  artifact_type: image
  provider: fal
  model: fal-ai/test/edit
  description: Test.
  cost: {usd: 0.04, per: num_images}
  inputs:
    prompt: {type: string, minLength: 3}
    image_sources: {artifact: image, list: true, minItems: 1, maxItems: 4}
    mask: {artifact: image, optional: true}
    num_images: {type: integer, minimum: 1, maximum: 4, default: 1}
    duration: {type: string, enum: ["5", "10"], default: "5"}
    seed: {anyOf: [{type: integer}, {type: "null"}], default: null}
    output_format: {type: string, enum: [png, jpeg], default: png}
  required: [prompt, image_sources]
  request:
    rename: {image_sources: image_urls, mask: mask_url}
    values: {duration: {"5": "5s"}}
    set: {sync_mode: true}
  output: {urls: "images[*].url", format: output_format}
"#;
        parse(text).unwrap().remove(0)
    }

    #[test]
    fn schemas_expand_artifact_shorthand_in_the_pydantic_shape() {
        let s = entry().input_schema();
        assert_eq!(s["title"], "FalTestEditInput");
        assert_eq!(
            s["properties"]["image_sources"],
            json!({"type": "array", "items": {"$ref": "#/$defs/ImageArtifact"}, "minItems": 1, "maxItems": 4, "title": "Image Sources"})
        );
        assert_eq!(
            s["properties"]["mask"]["anyOf"][0]["$ref"],
            "#/$defs/ImageArtifact"
        );
        assert_eq!(s["properties"]["mask"]["default"], Value::Null);
        assert_eq!(s["properties"]["prompt"]["title"], "Prompt");
        assert_eq!(s["$defs"]["ImageArtifact"]["required"][0], "generation_id");
        let keys: Vec<&String> = s["properties"].as_object().unwrap().keys().collect();
        assert_eq!(keys[0], "prompt");
        assert_eq!(keys[1], "image_sources");
    }

    #[test]
    fn request_bodies_rename_translate_drop_nulls_and_set_constants() {
        let e = entry();
        let input = e.with_defaults(&json!({"prompt": "a cat", "image_sources": ["x"]}));
        let urls = HashMap::from([("image_sources".to_string(), vec!["https://a/1.png".into()])]);
        let body = e.request_body(&input, &urls);
        assert_eq!(
            Value::Object(body),
            json!({"prompt": "a cat", "image_urls": ["https://a/1.png"], "num_images": 1, "duration": "5s", "output_format": "png", "sync_mode": true})
        );
        assert_eq!(e.estimate_cost(&input), Some(0.04));
        assert_eq!(e.output_format(&input).as_deref(), Some("png"));
    }

    #[test]
    fn empty_inputs_exclusive_inputs_and_nested_defaults_follow_the_originals() {
        let e = parse(
            r##"
- name: fal-x
  artifact_type: audio
  provider: fal
  model: fal-ai/x
  description: X.
  inputs:
    text: {anyOf: [{type: string}, {type: "null"}], default: null}
    audio_url: {artifact: audio, optional: true}
    negative_prompt: {type: string, default: ""}
    voice: {"$ref": "#/$defs/Voice"}
  defs:
    Voice: {type: object, properties: {speed: {type: number, default: 1.0}, emotion: {anyOf: [{type: string}, {type: "null"}], default: null}}}
  request: {skip_empty: [negative_prompt], unless: {text: audio_url}, fill_defaults: [voice]}
  output: {urls: audio.url}
"##,
        )
        .unwrap()
        .remove(0);
        let input = e.with_defaults(&json!({"text": "hello"}));
        let body = e.request_body(&input, &HashMap::new());
        assert_eq!(
            Value::Object(body),
            json!({"text": "hello", "voice": {"speed": 1.0}})
        );
        let urls = HashMap::from([("audio_url".to_string(), vec!["https://a/1.wav".into()])]);
        let input = e.with_defaults(
            &json!({"text": "hello", "audio_url": "x", "voice": {"speed": 2, "emotion": null}}),
        );
        let body = e.request_body(&input, &urls);
        assert_eq!(
            Value::Object(body),
            json!({"audio_url": "https://a/1.wav", "voice": {"speed": 2}})
        );
    }

    #[test]
    fn paths_select_urls() {
        let doc = json!({"images": [{"url": "a"}, {"url": "b"}], "video": {"url": "v"}, "output": "o", "list": ["x", "y"]});
        assert_eq!(output_urls("images[*].url", &doc), ["a", "b"]);
        assert_eq!(output_urls("images[*]", &doc), ["a", "b"]);
        assert_eq!(output_urls("images[1].url", &doc), ["b"]);
        assert_eq!(output_urls("video", &doc), ["v"]);
        assert_eq!(output_urls("output", &doc), ["o"]);
        assert_eq!(output_urls("list[*]", &doc), ["x", "y"]);
        assert!(output_urls("missing[*].url", &doc).is_empty());
    }

    #[test]
    fn bad_entries_are_refused_with_the_entry_named() {
        let base = "- name: x\n  artifact_type: image\n  provider: kie\n  model: m\n  description: d\n  inputs: {prompt: {type: string}}\n  output: {urls: a}\n";
        assert!(parse(base).unwrap_err().contains("`api` is required"));
        let e = parse(&base.replace("provider: kie", "provider: fal").replace(
            "output: {urls: a}",
            "output: {urls: a}\n  request: {omit: [nope]}",
        ))
        .unwrap_err();
        assert!(e.contains("`nope`"), "{e}");
        assert!(parse(&base.replace("image", "hologram")).is_err());
    }
}

#[cfg(test)]
mod catalogue_tests {
    use std::collections::HashSet;

    use super::*;
    use crate::generators::{ProviderKeys, Registry};

    /// The published input schemas of the released original (74 generators; titles and
    /// descriptions stripped), from `spec/generators.reference.json`.
    const REFERENCE: &str = include_str!("../../catalogue/reference/generators.reference.json");

    /// Drops what the reference leaves out (titles, descriptions) and what the catalogue
    /// does not keep (examples).
    fn strip(v: &mut Value) {
        match v {
            Value::Object(o) => {
                o.remove("title");
                o.remove("description");
                o.remove("examples");
                o.values_mut().for_each(strip);
            }
            Value::Array(a) => a.iter_mut().for_each(strip),
            _ => {}
        }
    }

    #[test]
    fn the_catalogue_has_every_model_of_the_original_once() {
        let all = builtin();
        assert_eq!(all.len(), 98, "runtime.md §3.10 lists 98 models");
        let names: HashSet<&str> = all.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(names.len(), all.len(), "names are unique");
        assert_eq!(all.iter().filter(|e| !e.baseline).count(), 5);
        for (class, name) in classes() {
            assert!(names.contains(name.as_str()), "{class} → {name}");
        }
        let registry = Registry::builtin_with(&ProviderKeys::default()).unwrap();
        assert_eq!(registry.len(), 5 + 93, "local generators + the baseline");
        assert!(registry
            .list(None)
            .filter(|g| g.entry().is_some())
            .all(|g| g.unavailable.is_some()));
    }

    fn model(name: &str) -> Arc<Entry> {
        builtin()
            .iter()
            .find(|e| e.name == name)
            .cloned()
            .unwrap_or_else(|| panic!("{name} is in the catalogue"))
    }

    /// runtime.md §3.9.2 and the fal adapters' request shapes, field by field.
    #[test]
    fn fal_request_bodies_match_the_originals() {
        let pro = model("fal-nano-banana-pro");
        let input = pro.with_defaults(&json!({"prompt": "a red fox"}));
        assert_eq!(
            Value::Object(pro.request_body(&input, &HashMap::new())),
            json!({"prompt": "a red fox", "aspect_ratio": "1:1", "num_images": 1,
                   "resolution": "1K", "output_format": "png", "sync_mode": true})
        );
        assert_eq!(pro.estimate_cost(&input), Some(0.039));
        let edit = model("fal-nano-banana-edit");
        let input = edit.with_defaults(&json!({"prompt": "bluer", "image_sources": ["a", "b"]}));
        let urls = HashMap::from([(
            "image_sources".to_string(),
            vec![
                "https://cdn/1.png".to_string(),
                "https://cdn/2.png".to_string(),
            ],
        )]);
        assert_eq!(
            Value::Object(edit.request_body(&input, &urls)),
            json!({"prompt": "bluer", "image_urls": ["https://cdn/1.png", "https://cdn/2.png"],
                   "num_images": 1, "output_format": "jpeg", "sync_mode": false,
                   "limit_generations": false})
        );
        let video = model("fal-veo31-image-to-video");
        let input = video.with_defaults(&json!({"prompt": "it moves", "image": "a"}));
        let urls = HashMap::from([("image".to_string(), vec!["https://cdn/1.png".to_string()])]);
        assert_eq!(
            Value::Object(video.request_body(&input, &urls)),
            json!({"prompt": "it moves", "image_url": "https://cdn/1.png", "aspect_ratio": "16:9",
                   "duration": "8s", "generate_audio": true, "resolution": "720p"})
        );
    }

    #[test]
    fn every_reference_generator_keeps_its_name_and_input_schema() {
        let reference: Vec<Value> = serde_json::from_str(REFERENCE).unwrap();
        assert_eq!(reference.len(), 74);
        let mut differences = vec![];
        for r in &reference {
            let name = r["name"].as_str().unwrap();
            let Some(entry) = builtin().iter().find(|e| e.name == name) else {
                differences.push(format!("{name}: missing"));
                continue;
            };
            let kind = r["artifactType"].as_str().unwrap().to_ascii_lowercase();
            if entry.artifact_type.as_str() != kind {
                differences.push(format!("{name}: artifact type {kind}"));
            }
            let mut ours = entry.input_schema();
            strip(&mut ours);
            let mut theirs = r["inputSchema"].clone();
            strip(&mut theirs);
            let theirs = &theirs;
            let keys = |s: &Value| -> Vec<String> {
                s["properties"]
                    .as_object()
                    .map(|p| p.keys().cloned().collect())
                    .unwrap_or_default()
            };
            if keys(&ours) != keys(theirs) {
                differences.push(format!(
                    "{name}: properties {:?} vs {:?}",
                    keys(&ours),
                    keys(theirs)
                ));
            }
            for (field, prop) in theirs["properties"].as_object().into_iter().flatten() {
                if ours["properties"].get(field) != Some(prop) {
                    differences.push(format!(
                        "{name}.{field}: {} vs {prop}",
                        ours["properties"].get(field).unwrap_or(&Value::Null)
                    ));
                }
            }
            let required = |s: &Value| s.get("required").cloned().unwrap_or(json!([]));
            if required(&ours) != required(theirs) {
                differences.push(format!(
                    "{name}: required {} vs {}",
                    required(&ours),
                    required(theirs)
                ));
            }
            for (def, schema) in theirs
                .get("$defs")
                .and_then(Value::as_object)
                .into_iter()
                .flatten()
            {
                if ours["$defs"].get(def) != Some(schema) {
                    differences.push(format!("{name}: $defs.{def} differs"));
                }
            }
        }
        assert!(
            differences.is_empty(),
            "{} differences:\n{}",
            differences.len(),
            differences.join("\n")
        );
    }
}
