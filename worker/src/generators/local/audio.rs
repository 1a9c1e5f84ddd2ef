//! `local-audio`: a WAV melody derived from the prompt.

use serde_json::{json, Value};

use super::meta;
use boards_shared::generators::{
    local::LocalAudioInput,
    run::{parse_input, Body, Context, Execute, GenerateError, Output},
};

/// A WAV file (RIFF, PCM 16-bit mono).
pub fn wav(samples: &[i16], sample_rate: u32) -> Vec<u8> {
    let data_len = (samples.len() * 2) as u32;
    let mut out = Vec::with_capacity(44 + data_len as usize);
    out.extend_from_slice(b"RIFF");
    out.extend_from_slice(&(36 + data_len).to_le_bytes());
    out.extend_from_slice(b"WAVEfmt ");
    out.extend_from_slice(&16u32.to_le_bytes());
    out.extend_from_slice(&1u16.to_le_bytes()); // PCM
    out.extend_from_slice(&1u16.to_le_bytes()); // mono
    out.extend_from_slice(&sample_rate.to_le_bytes());
    out.extend_from_slice(&(sample_rate * 2).to_le_bytes());
    out.extend_from_slice(&2u16.to_le_bytes());
    out.extend_from_slice(&16u16.to_le_bytes());
    out.extend_from_slice(b"data");
    out.extend_from_slice(&data_len.to_le_bytes());
    for s in samples {
        out.extend_from_slice(&s.to_le_bytes());
    }
    out
}

pub struct LocalAudio;

#[async_trait::async_trait]
impl Execute for LocalAudio {
    async fn generate(
        &self,
        input: Value,
        ctx: &Context<'_>,
    ) -> Result<Vec<Output>, GenerateError> {
        let input: LocalAudioInput = parse_input(input)?;
        let rate = input.sample_rate;
        let total = (input.duration * f64::from(rate)).round() as usize;
        let notes: Vec<f64> = input
            .prompt
            .bytes()
            .filter(u8::is_ascii_alphanumeric)
            .map(|b| 220.0 * 2f64.powf(f64::from(b % 24) / 12.0))
            .collect();
        let notes = if notes.is_empty() { vec![440.0] } else { notes };
        let per_note = (total / notes.len()).max(rate as usize / 8);
        let mut samples = Vec::with_capacity(total);
        for i in 0..total {
            if i.is_multiple_of((rate as usize).max(1)) {
                ctx.check_cancelled()?;
                ctx.progress
                    .report(
                        i as f64 / total.max(1) as f64 * 90.0,
                        Some("Synthesising".into()),
                    )
                    .await;
            }
            let f = notes[(i / per_note) % notes.len()];
            let t = i as f64 / f64::from(rate);
            let envelope = 1.0 - ((i % per_note) as f64 / per_note as f64) * 0.7;
            samples.push(((2.0 * std::f64::consts::PI * f * t).sin() * envelope * 12_000.0) as i16);
        }
        let duration = samples.len() as f64 / f64::from(rate);
        Ok(vec![Output {
            body: Body::Bytes(wav(&samples, rate)),
            extension: "wav".into(),
            content_type: "audio/wav".into(),
            metadata: meta(&[
                ("format", json!("wav")),
                ("duration", json!(duration)),
                ("sample_rate", json!(rate)),
                ("channels", json!(1)),
            ]),
            memory: None,
        }])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wav_headers_describe_the_samples() {
        let w = wav(&[0, 1, -1, 2], 8000);
        assert_eq!(&w[0..4], b"RIFF");
        assert_eq!(u32::from_le_bytes([w[24], w[25], w[26], w[27]]), 8000);
        assert_eq!(u32::from_le_bytes([w[40], w[41], w[42], w[43]]), 8);
        assert_eq!(w.len(), 44 + 8);
    }
}
