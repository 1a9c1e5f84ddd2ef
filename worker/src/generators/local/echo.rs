//! `local-echo`: the prompt back as text after an optional delay (checks, benchmarks).

use std::time::Duration;

use serde_json::{json, Value};

use super::meta;
use boards_shared::generators::{
    local::LocalEchoInput,
    run::{parse_input, Body, Context, Execute, GenerateError, Output},
};

pub struct LocalEcho;

#[async_trait::async_trait]
impl Execute for LocalEcho {
    async fn generate(
        &self,
        input: Value,
        ctx: &Context<'_>,
    ) -> Result<Vec<Output>, GenerateError> {
        let input: LocalEchoInput = parse_input(input)?;
        let steps = 10u64;
        if input.delay_ms > 0 {
            for i in 1..=steps {
                tokio::select! {
                    _ = ctx.cancel.cancelled() => return Err(GenerateError::Cancelled),
                    _ = tokio::time::sleep(Duration::from_millis(input.delay_ms / steps)) => {}
                }
                ctx.progress
                    .report(
                        i as f64 * 100.0 / steps as f64 * 0.9,
                        Some(format!("Step {i} of {steps}")),
                    )
                    .await;
            }
        }
        Ok(vec![Output {
            body: Body::Bytes(input.prompt.clone().into_bytes()),
            extension: "txt".into(),
            content_type: "text/plain".into(),
            metadata: meta(&[("format", json!("plain")), ("content", json!(input.prompt))]),
            memory: None,
        }])
    }
}
