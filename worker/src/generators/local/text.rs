//! `local-text`: text that continues the prompt.

use serde_json::{json, Value};

use super::{fnv, meta, Rng};
use boards_shared::generators::{
    local::LocalTextInput,
    run::{parse_input, Body, Context, Execute, GenerateError, Output},
};

const WORDS: &[&str] = &[
    "light", "colour", "board", "image", "sound", "quiet", "bright", "river", "stone", "glass",
    "morning", "shadow", "paper", "signal", "garden", "window", "thread", "echo", "field", "frame",
];

pub struct LocalText;

#[async_trait::async_trait]
impl Execute for LocalText {
    async fn generate(
        &self,
        input: Value,
        ctx: &Context<'_>,
    ) -> Result<Vec<Output>, GenerateError> {
        let input: LocalTextInput = parse_input(input)?;
        let own: Vec<&str> = input.prompt.split_whitespace().collect();
        let mut rng = Rng(fnv(&input.prompt, 7));
        let mut words: Vec<String> = own.iter().map(|w| w.to_string()).collect();
        while words.len() < input.max_words as usize {
            let pick = rng.next() as usize;
            let w = if !own.is_empty() && pick.is_multiple_of(3) {
                own[pick % own.len()]
            } else {
                WORDS[pick % WORDS.len()]
            };
            words.push(w.to_string());
            if words.len().is_multiple_of(100) {
                ctx.check_cancelled()?;
                ctx.progress
                    .report(words.len() as f64 / f64::from(input.max_words) * 90.0, None)
                    .await;
            }
        }
        words.truncate(input.max_words as usize);
        let mut content = words.join(" ");
        content.push('.');
        Ok(vec![Output {
            body: Body::Bytes(content.clone().into_bytes()),
            extension: "txt".into(),
            content_type: "text/plain".into(),
            metadata: meta(&[("format", json!("plain")), ("content", json!(content))]),
            memory: None,
        }])
    }
}
